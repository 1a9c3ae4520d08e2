"""The PyTorch integration on real, tiny, seeded CPU training runs."""

from __future__ import annotations

import itertools
import logging
import os
from collections.abc import Callable

import numpy as np
import pytest

try:
    import torch
    from torch import nn
except ImportError:  # pragma: no cover - depends on the environment
    if os.environ.get("CI") == "true":
        pytest.fail("torch is required in CI (pip install hindsight[torch])", pytrace=False)
    pytest.skip("torch is not installed", allow_module_level=True)

from hindsight.errors import ConfigError, DataQualityError
from hindsight.training import Symptom, TrainingGuard, Verdict
from hindsight.training.integrations.torch import TorchWatch, watch

LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


@pytest.fixture(autouse=True)
def _quiet_logs(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.CRITICAL, logger="hindsight.training")


# -- data and models -------------------------------------------------------------------
def two_moons(n: int, seed: int, noise: float = 0.1) -> tuple[torch.Tensor, torch.Tensor]:
    """The two-moons data set, as float tensors (x: (n, 2), y: (n, 1) in {0, 1})."""
    rng = np.random.default_rng(seed)
    half = n // 2
    t = rng.uniform(0.0, np.pi, size=n)
    upper = np.c_[np.cos(t[:half]), np.sin(t[:half])]
    lower = np.c_[1.0 - np.cos(t[half:]), 0.5 - np.sin(t[half:])]
    x = np.r_[upper, lower] + rng.normal(scale=noise, size=(n, 2))
    y = np.r_[np.zeros(half), np.ones(n - half)]
    order = rng.permutation(n)
    x = (x[order] - x.mean(axis=0)) / x.std(axis=0)
    return (
        torch.tensor(x, dtype=torch.float32),
        torch.tensor(y[order, None], dtype=torch.float32),
    )


def linear_regression(n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 4))
    y = x @ np.array([1.5, -2.0, 0.5, 3.0]) + 0.1 * rng.normal(size=n)
    return torch.tensor(x, dtype=torch.float32), torch.tensor(y[:, None], dtype=torch.float32)


def mlp(sizes: list[int], act: type[nn.Module] = nn.ReLU, seed: int = 0) -> nn.Sequential:
    torch.manual_seed(seed)
    layers: list[nn.Module] = []
    for a, b in itertools.pairwise(sizes):
        layers += [nn.Linear(a, b), act()]
    return nn.Sequential(*layers[:-1])


def train(
    model: nn.Module,
    guard: TrainingGuard,
    opt: torch.optim.Optimizer,
    x: torch.Tensor,
    y: torch.Tensor,
    steps: int,
    loss_fn: LossFn,
    *,
    val: tuple[torch.Tensor, torch.Tensor] | None = None,
    val_every: int = 10,
    every: int = 1,
) -> tuple[TorchWatch, list[Verdict]]:
    """Full-batch training fed to the guard; stops at the first stopping verdict."""
    verdicts = []
    with watch(model, guard, optimizer=opt, every=every) as w:
        for step in range(steps):
            model.train()
            opt.zero_grad()
            loss = loss_fn(model(x), y)
            loss.backward()
            opt.step()
            val_loss = None
            if val is not None and step % val_every == 0:
                model.eval()
                with torch.no_grad():
                    val_loss = loss_fn(model(val[0]), val[1])
            verdict = w.step(step, loss, val_loss=val_loss, batch_size=len(x))
            verdicts.append(verdict)
            if verdict.stop:
                break
    return w, verdicts


def kinds(symptoms: tuple[Symptom, ...]) -> set[str]:
    return {s.kind for s in symptoms}


bce = nn.functional.binary_cross_entropy_with_logits
mse = nn.functional.mse_loss


# -- training runs ---------------------------------------------------------------------
def test_a_healthy_run_trains_to_low_loss_without_a_stop() -> None:
    x, y = two_moons(256, seed=0)
    model = mlp([2, 32, 32, 1])
    guard = TrainingGuard()
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    w, verdicts = train(model, guard, opt, x, y, 300, bce)
    assert len(verdicts) == 300 and not any(v.stop for v in verdicts)
    assert [s for s in guard.history if s.severity == "stop"] == []
    assert float(guard.state.loss[-1]) < 0.05
    # Every signal reached the guard.
    state = guard.state
    assert state.grad_norms.shape[1] == len(w.layer_names) == 3
    assert state.dead_share.shape[1] == len(w.activation_layers["dead"]) == 2
    assert state.lr[-1] == pytest.approx(1e-2)
    assert len(state.throughput) == min(299, guard.window) and (state.throughput > 0).all()
    assert (state.memory > 1e6).all()


def test_a_far_too_high_learning_rate_is_stopped_early() -> None:
    x, y = linear_regression(256, seed=1)
    model = mlp([4, 32, 32, 1])
    guard = TrainingGuard()
    opt = torch.optim.SGD(model.parameters(), lr=50.0)
    _, verdicts = train(model, guard, opt, x, y, 500, mse)
    last = verdicts[-1]
    assert last.stop and last.step < 30
    assert kinds(last.symptoms) & {"nonfinite_loss", "loss_explosion"}


def test_a_huge_output_layer_init_explodes_the_gradients() -> None:
    x, y = linear_regression(256, seed=2)
    model = mlp([4, 32, 32, 1])
    with torch.no_grad():
        model[-1].weight.mul_(1e4)
    guard = TrainingGuard()
    opt = torch.optim.SGD(model.parameters(), lr=1e-3)
    _, verdicts = train(model, guard, opt, x, y, 100, mse)
    assert verdicts[-1].stop and verdicts[-1].step == 0
    (found,) = [s for s in verdicts[-1].symptoms if s.kind == "exploding_gradients"]
    assert found.evidence["ratio"] > 70.0


def test_a_deep_sigmoid_stack_has_vanishing_gradients() -> None:
    x, y = two_moons(256, seed=3)
    model = mlp([2] + [32] * 8 + [1], act=nn.Sigmoid)
    guard = TrainingGuard(on_failure="warn")
    opt = torch.optim.SGD(model.parameters(), lr=1e-2)
    w, verdicts = train(model, guard, opt, x, y, 20, bce)
    (found,) = [s for s in verdicts[0].symptoms if s.kind == "vanishing_gradients"]
    assert found.evidence["first_layer_norm"] < 1e-4
    assert found.evidence["ratio"] < 1e-3
    assert len(w.activation_layers["saturated"]) == 8
    assert guard.state.saturated_share.shape == (20, 8)


def test_a_large_negative_bias_kills_the_relus() -> None:
    x, y = two_moons(256, seed=4)
    model = mlp([2, 32, 32, 1])
    with torch.no_grad():
        model[0].bias.fill_(-10.0)
        model[2].bias.fill_(-10.0)
    guard = TrainingGuard(on_failure="warn")
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    _, verdicts = train(model, guard, opt, x, y, 20, bce)
    (found,) = [s for s in verdicts[0].symptoms if s.kind == "dying_relu"]
    assert found.evidence["layers"] == [0, 1]
    assert found.evidence["max_dead_share"] == 1.0
    assert list(found.evidence["dead_share"]) == [1.0, 1.0]


def test_training_on_twenty_noisy_samples_overfits() -> None:
    rng = np.random.default_rng(5)
    x_all = rng.normal(size=(520, 10))
    y_all = (x_all[:, 0] > 0).astype(float)
    flip = rng.random(520) < 0.3  # label noise on both sides
    y_all[flip] = 1.0 - y_all[flip]
    x_t = torch.tensor(x_all, dtype=torch.float32)
    y_t = torch.tensor(y_all[:, None], dtype=torch.float32)
    model = mlp([10, 128, 128, 1])
    guard = TrainingGuard(on_failure="warn")
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    _, verdicts = train(
        model, guard, opt, x_t[:20], y_t[:20], 400, bce, val=(x_t[20:], y_t[20:]), val_every=10
    )
    found = [s for v in verdicts for s in v.symptoms if s.kind == "overfitting"]
    assert found, "no overfitting reported"
    first = found[0]
    assert first.evidence["val_slope"] > 0 > first.evidence["train_slope"]
    assert first.evidence["val_loss"] > first.evidence["train_loss"]


# -- what is collected -----------------------------------------------------------------
def direct_norms(model: nn.Module) -> list[float]:
    out = []
    for module in model.modules():
        grads = [p.grad.flatten() for p in module.parameters(recurse=False) if p.grad is not None]
        if grads:
            out.append(float(torch.linalg.vector_norm(torch.cat(grads).double())))
    return out


@pytest.mark.parametrize("with_optimizer", [True, False])
def test_gradient_norms_match_a_direct_computation(with_optimizer: bool) -> None:
    x, y = two_moons(128, seed=6)
    model = mlp([2, 32, 32, 1])
    guard = TrainingGuard(on_failure="warn")
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    with watch(model, guard, optimizer=opt if with_optimizer else None, every=1) as w:
        for step in range(5):
            opt.zero_grad()
            bce(model(x), y).backward()
            expected = direct_norms(model)  # before the step: grads do not change in it
            opt.step()
            w.step(step, 0.5)
            np.testing.assert_allclose(guard.state.grad_norms[-1], expected, rtol=1e-6)
    assert w.layer_names == ("0", "2", "4")


def test_activations_are_sampled_every_k_steps_and_only_in_training() -> None:
    x, y = two_moons(64, seed=7)
    model = mlp([2, 16, 16, 1])
    guard = TrainingGuard(on_failure="warn")
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    with watch(model, guard, optimizer=opt, every=3, warmup=0, interval_s=None) as w:
        for step in range(9):
            opt.zero_grad()
            bce(model(x), y).backward()
            opt.step()
            with torch.no_grad():  # a validation pass must not count
                model(torch.full((8, 2), -100.0))
            w.step(step, 0.5)
    # Gradient norms, activation shares and memory on steps 0, 3 and 6; loss every step.
    assert list(guard.state.loss_steps) == list(range(9))
    assert len(guard.state.dead_share) == 3
    assert len(guard.state.grad_norms) == 3
    assert list(guard.state.memory_steps) == [0, 3, 6]


def test_the_costly_signals_are_sampled_every_k_steps() -> None:
    x, y = two_moons(64, seed=7)
    model = mlp([2, 16, 16, 1])
    guard = TrainingGuard(on_failure="warn")
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    with watch(model, guard, optimizer=opt, every=10, interval_s=None, warmup=0) as w:
        for step in range(25):
            opt.zero_grad()
            bce(model(x), y).backward()
            opt.step()
            w.step(step, 0.5, batch_size=64)
    assert w.every == 10
    # Every loss reaches the guard (the last four when the watch comes off); throughput
    # is one reading per sampled step, over the steps since the previous one.
    assert list(guard.state.loss_steps) == list(range(25))
    assert list(guard.state.grad_norms.shape) == [3, 3]  # steps 0, 10, 20; three layers
    assert len(guard.state.dead_share) == 3
    assert len(guard.state.throughput) == 2 and (guard.state.throughput > 0).all()


def test_buffered_steps_report_the_step_where_the_loss_blew_up() -> None:
    guard = TrainingGuard()
    model = mlp([2, 4, 1])
    w = watch(model, guard, every=10, interval_s=None, warmup=0)
    losses = [1.0, 0.9, 0.8, 0.7, 0.6, 0.5, 90.0, 95.0, 99.0, 99.0, 99.0]
    verdicts = [w.step(s, torch.tensor(x)) for s, x in enumerate(losses)]
    assert watch(mlp([2, 4, 1]), TrainingGuard()).every == 100  # the default
    # Steps 1-9 are buffered; step 10 is sampled and checks them all.
    assert not any(v.stop for v in verdicts[:10])
    assert verdicts[10].stop and verdicts[10].symptoms[0].kind == "loss_explosion"
    assert verdicts[10].symptoms[0].step == 6
    # On the CPU a non-finite loss is seen at once.
    verdict = w.step(11, torch.tensor(float("nan")))
    assert verdict.stop and verdict.symptoms[0].kind == "nonfinite_loss"
    assert verdict.symptoms[0].step == 11


def test_on_an_accelerator_losses_wait_on_the_device_until_the_next_sample() -> None:
    guard = TrainingGuard()
    w = watch(mlp([2, 4, 1]), guard, every=10, interval_s=None, warmup=0)
    w._sync_per_step = False  # what a CUDA model gets: no host sync per step
    w.step(0, torch.tensor(1.0))
    later = [w.step(s, torch.tensor(float("nan"))) for s in range(1, 11)]
    assert all(isinstance(x, torch.Tensor) for x in w._buf_loss) is True or not w._buf_loss
    assert not any(v.stop for v in later[:-1])
    # The sampled step brings the buffered losses over in one copy; the NaN is reported
    # at the step where it appeared.
    assert later[-1].stop and later[-1].symptoms[0].kind == "nonfinite_loss"
    assert later[-1].symptoms[0].step == 1
    w.remove()


def test_dead_and_saturated_shares_match_a_direct_computation() -> None:
    x, _ = two_moons(64, seed=8)
    torch.manual_seed(8)
    model = nn.Sequential(
        nn.Linear(2, 16), nn.ReLU(), nn.Linear(16, 16), nn.Tanh(), nn.Linear(16, 1), nn.Sigmoid()
    )
    with torch.no_grad():
        model[0].bias.fill_(-1.0)
        model[2].weight.mul_(40.0)
        model[4].weight.mul_(8.0)
    guard = TrainingGuard(on_failure="warn")
    with watch(model, guard) as w:
        model(x).sum().backward()
        w.step(0, 0.5)
    with torch.no_grad():
        h1 = model[1](model[0](x))
        h2 = model[3](model[2](h1))
        h3 = model[5](model[4](h2))
    dead = float((h1 <= 0).all(dim=0).double().mean())
    sat = [float((h2.abs() > 0.98).double().mean())]
    out_sat = float(((h3 < 0.01) | (h3 > 0.99)).double().mean())
    assert 0.0 < dead < 1.0 and 0.0 < sat[0] < 1.0 and out_sat > 0.0
    np.testing.assert_allclose(guard.state.dead_share[-1], [dead], rtol=1e-12)
    np.testing.assert_allclose(guard.state.saturated_share[-1], sat, rtol=1e-12)
    # The output sigmoid is the prediction, not a hidden layer: it is left out.
    assert w.activation_layers == {"dead": ("1",), "saturated": ("3",)}
    assert w.output_activations == ["5"]


def test_a_confident_sigmoid_output_is_not_saturation() -> None:
    x, y = two_moons(256, seed=11)
    torch.manual_seed(11)
    model = nn.Sequential(nn.Linear(2, 32), nn.ReLU(), nn.Linear(32, 1), nn.Sigmoid())
    opt = torch.optim.Adam(model.parameters(), lr=5e-2)
    guard = TrainingGuard()
    with watch(model, guard, optimizer=opt) as w:
        for step in range(150):
            opt.zero_grad()
            loss = nn.functional.binary_cross_entropy(model(x), y)
            loss.backward()
            opt.step()
            assert not w.step(step, loss).stop, guard.history
    with torch.no_grad():
        p = model(x)
    # The model is confident (most outputs beyond 0.01 / 0.99) and nothing was reported.
    assert float(((p < 0.01) | (p > 0.99)).double().mean()) > 0.5
    assert "saturated_activations" not in {s.kind for s in guard.history}


def test_remove_and_the_context_manager_take_every_hook_off() -> None:
    model = mlp([2, 8, 8, 1], act=nn.Tanh)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    w = watch(model, TrainingGuard(), optimizer=opt)
    assert any(m._forward_hooks for m in model.modules())
    assert opt._optimizer_step_pre_hooks
    w.remove()
    w.remove()  # twice is fine
    assert w.removed
    assert not any(m._forward_hooks for m in model.modules())
    assert not opt._optimizer_step_pre_hooks
    with watch(model, TrainingGuard()):
        assert any(m._forward_hooks for m in model.modules())
    assert not any(m._forward_hooks for m in model.modules())


def test_loss_may_be_a_float_and_metrics_tensors() -> None:
    model = mlp([2, 4, 1])
    guard = TrainingGuard()
    with watch(model, guard, activations=False) as w:
        verdict = w.step(0, 0.7, val_loss=torch.tensor(0.8), metrics={"acc": torch.tensor(0.5)})
    assert not verdict.stop
    assert guard.state.loss[-1] == pytest.approx(0.7)
    assert guard.state.metric("acc")[-1] == pytest.approx(0.5)
    assert len(guard.state.grad_norms) == 0  # no backward yet: no gradient norms
    assert len(guard.state.dead_share) == 0


# -- bad input -------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"every": 0}, "'every' parameter of watch must be an int >= 1"),
        ({"every": float("inf")}, "'every' parameter of watch must be an int >= 1"),
        ({"every": 1.5}, "'every'"),
        ({"activations": "yes"}, "'activations'"),
        ({"optimizer": object()}, "'optimizer'"),
    ],
)
def test_bad_parameters_are_config_errors(kwargs: dict[str, object], match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        watch(mlp([2, 4, 1]), TrainingGuard(), **kwargs)  # type: ignore[arg-type]


def test_a_model_without_parameters_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="has no parameters"):
        watch(nn.Sequential(nn.ReLU()), TrainingGuard())
    frozen = mlp([2, 4, 1]).requires_grad_(False)
    with pytest.raises(ConfigError, match="no trainable parameters"):
        watch(frozen, TrainingGuard())
    with pytest.raises(ConfigError, match=r"torch\.nn\.Module"):
        watch(object(), TrainingGuard())  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="TrainingGuard"):
        watch(mlp([2, 4, 1]), object())  # type: ignore[arg-type]


def test_bad_step_arguments_are_data_quality_errors() -> None:
    with watch(mlp([2, 4, 1]), TrainingGuard()) as w:
        with pytest.raises(DataQualityError, match="'batch_size'"):
            w.step(0, 0.5, batch_size=0)
        with pytest.raises(DataQualityError, match="scalar tensor"):
            w.step(0, torch.ones(3))
        with pytest.raises(DataQualityError, match="'loss'"):
            w.step(0, "low")


def test_tied_weights_count_once_and_a_reused_activation_is_one_layer() -> None:
    torch.manual_seed(9)
    enc, dec, act = nn.Linear(4, 4), nn.Linear(4, 4), nn.ReLU()
    dec.weight = enc.weight  # tied
    model = nn.ModuleDict({"enc": enc, "dec": dec, "act": act})
    guard = TrainingGuard(on_failure="warn")
    x = torch.randn(32, 4)
    with watch(model, guard) as w:
        act(dec(act(enc(x)))).sum().backward()
        w.step(0, 0.5)
    assert w.layer_names == ("enc", "dec")
    expected_enc = float(
        torch.linalg.vector_norm(torch.cat([enc.weight.grad.flatten(), enc.bias.grad]).double())
    )
    expected_dec = float(torch.linalg.vector_norm(dec.bias.grad.double()))
    np.testing.assert_allclose(guard.state.grad_norms[-1], [expected_enc, expected_dec], rtol=1e-6)
    assert guard.state.dead_share.shape == (1, 1)


# -- restore_best_weights --------------------------------------------------------------
def test_early_stopping_restores_the_weights_of_the_best_validation_step() -> None:
    x, y = two_moons(520, seed=0, noise=0.25)
    (x_tr, y_tr), (x_va, y_va) = (x[:20], y[:20]), (x[20:], y[20:])  # 20 samples: overfits
    model = mlp([2, 128, 128, 1])
    guard = TrainingGuard(monitor="val_loss", patience=5)
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    seen: dict[int, dict[str, torch.Tensor]] = {}  # the weights at every validation
    val_losses: dict[int, float] = {}
    with watch(model, guard, optimizer=opt, restore_best_weights=True) as w:
        for step in range(400):
            model.train()
            opt.zero_grad()
            loss = bce(model(x_tr), y_tr)
            loss.backward()
            opt.step()
            val_loss = None
            if step % 5 == 0:
                model.eval()
                with torch.no_grad():
                    val_loss = bce(model(x_va), y_va)
                val_losses[step] = float(val_loss)
                seen[step] = {k: v.clone() for k, v in model.state_dict().items()}
            verdict = w.step(step, loss, val_loss=val_loss)
            if verdict.stop:
                break
    assert verdict.stop and verdict.early_stop
    assert "early stopping: val_loss" in (verdict.reason or "")
    best = min(val_losses, key=lambda s: val_losses[s])
    # The run overfitted: validation rose after its best, and training went on past it.
    assert 0 < best < verdict.step < 399
    assert val_losses[verdict.step] > val_losses[best]
    assert w.best_step == guard.best_step == best
    assert set(w.best_state or {}) == set(model.state_dict())
    for key, value in model.state_dict().items():
        assert torch.equal(value, seen[best][key]), key
        assert not torch.equal(value, seen[verdict.step][key]) or value.dim() == 0, key
    assert all(v.device.type == "cpu" for v in (w.best_state or {}).values())
    # The restored model evaluates to the best validation loss.
    with torch.no_grad():
        assert float(bce(model(x_va), y_va)) == pytest.approx(val_losses[best], rel=1e-6)


def test_a_divergence_restores_the_last_finite_best_weights() -> None:
    x, y = linear_regression(256, seed=11)
    x_va, y_va = linear_regression(256, seed=12)
    model = mlp([4, 32, 32, 1])
    guard = TrainingGuard(monitor="val_loss")
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    with watch(model, guard, optimizer=opt, restore_best_weights=True) as w:
        for step in range(200):
            if step == 30:
                for group in opt.param_groups:
                    group["lr"] = 50.0  # a bad schedule: the run diverges
            opt.zero_grad()
            loss = mse(model(x), y)
            loss.backward()
            opt.step()
            with torch.no_grad():  # on the weights after the step, as they are snapshot
                val_loss = mse(model(x_va), y_va)
            verdict = w.step(step, loss, val_loss=val_loss)
            if verdict.stop:
                break
    assert verdict.stop and kinds(verdict.symptoms) & {"nonfinite_loss", "loss_explosion"}
    assert w.best_step == 29  # the last step before the learning rate went wrong
    assert all(torch.isfinite(p).all() for p in model.parameters())
    with torch.no_grad():
        assert float(mse(model(x_va), y_va)) == pytest.approx(guard.best_value, rel=1e-6)


def test_best_weights_are_not_kept_by_default_and_restore_best_says_how() -> None:
    model = mlp([2, 4, 1])
    with watch(model, TrainingGuard(monitor="loss")) as w:
        w.step(0, 0.5)
        assert w.best_step is None and w.best_state is None
        with pytest.raises(ConfigError, match="restore_best_weights=True"):
            w.restore_best()
    with watch(model, TrainingGuard(), restore_best_weights=True) as w:
        assert w.restore_best() is False  # nothing fed yet: nothing to restore
    with pytest.raises(ConfigError, match="'restore_best_weights' parameter of watch"):
        watch(model, TrainingGuard(), restore_best_weights=1)  # type: ignore[arg-type]


def test_a_stop_without_a_best_value_keeps_the_weights_and_warns(
    caplog: pytest.LogCaptureFixture,
) -> None:
    model = mlp([2, 4, 1])
    before = {k: v.clone() for k, v in model.state_dict().items()}
    caplog.set_level(logging.WARNING, logger="hindsight.training")
    with watch(model, TrainingGuard(), restore_best_weights=True) as w:
        verdict = w.step(0, float("nan"))
    assert verdict.stop and w.best_step is None
    assert "no best weights to restore" in caplog.text
    assert all(torch.equal(v, before[k]) for k, v in model.state_dict().items())


def test_collect_and_feed_let_a_later_validation_join_its_step() -> None:
    x, y = two_moons(64, seed=12)
    model = mlp([2, 8, 1])
    guard = TrainingGuard(monitor="val_loss")
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    with watch(model, guard, restore_best_weights=True) as w:
        opt.zero_grad()
        bce(model(x), y).backward()
        w.capture_grad_norms()
        opt.zero_grad()  # the captured norms survive this
        opt.step()
        signals = w.collect(0, 0.6, lr=0.1, batch_size=64, read_grads=False)
        assert signals.grad_norms is not None and len(signals.grad_norms) == 2
        assert signals.activations is not None and signals.val_loss is None
        signals.val_loss = 0.55
        w.reset_clock()
        verdict = w.feed(signals)
    assert verdict.improved and w.best_step == 0
    assert guard.state.val_loss[-1] == pytest.approx(0.55)
    with pytest.raises(ConfigError, match="StepSignals"):
        w.feed({"step": 1})  # type: ignore[arg-type]


def test_slow_steps_are_sampled_every_time_after_interval_s() -> None:
    import time as _time

    x, y = two_moons(32, seed=3)
    model = mlp([2, 8, 1])
    guard = TrainingGuard(on_failure="warn")
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    with watch(model, guard, optimizer=opt, every=1000, interval_s=0.01) as w:
        for step in range(4):
            opt.zero_grad()
            bce(model(x), y).backward()
            opt.step()
            _time.sleep(0.02)  # a slow step: the interval passes every time
            w.step(step, 0.5)
    assert len(guard.state.grad_norms) == 4
    with pytest.raises(ConfigError, match="interval_s"):
        watch(model, guard, interval_s=0)
