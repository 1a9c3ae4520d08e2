"""Each detector fires on a seeded synthetic curve at the expected step, and not on a
healthy one; thresholds are validated; every detector honours the same contract."""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import numpy as np
import pytest

from hindsight.errors import ConfigError
from hindsight.training import (
    SYMPTOM_KINDS,
    Detector,
    DyingReLU,
    ExplodingGradients,
    LearningRateOutOfRange,
    LossExplosion,
    LossSpike,
    MemoryGrowth,
    NoLearning,
    NonFiniteGradients,
    NonFiniteLoss,
    Oscillation,
    Overfitting,
    Plateau,
    SaturatedActivations,
    SlowConvergence,
    Symptom,
    ThroughputCollapse,
    TimeBudget,
    TrainingState,
    VanishingGradients,
    default_detectors,
)
from hindsight.training._stats import MAD_SCALE, ls_fit

Feed = Iterable[dict[str, Any]]


def run(detector: Detector, feed: Feed, window: int = 256) -> list[Symptom]:
    """Feed each step's signals and collect every symptom the detector returns."""
    state = TrainingState(window=window)
    found = []
    for step, signals in enumerate(feed):
        state.update(step, **signals)
        if not state.updated.isdisjoint(detector.signals):
            symptom = detector.check(state)
            if symptom is not None:
                found.append(symptom)
    return found


def first(detector: Detector, feed: Feed) -> Symptom:
    found = run(detector, feed)
    assert found, f"{detector!r} never fired"
    return found[0]


def decaying(n: int, seed: int = 0, noise: float = 0.02, tau: float = 80.0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    steps = np.arange(n)
    return 0.2 + 2.0 * np.exp(-steps / tau) + noise * rng.random(n)


def losses(values: Iterable[float]) -> Iterator[dict[str, Any]]:
    return ({"loss": float(x)} for x in values)


# -- non-finite ------------------------------------------------------------------------
def test_nonfinite_loss_fires_at_the_nan() -> None:
    curve = decaying(60)
    curve[37] = np.nan
    s = first(NonFiniteLoss(), losses(curve))
    assert s.step == 37 and s.kind == "nonfinite_loss" and s.severity == "stop"
    assert math.isnan(s.evidence["loss"])
    assert s.evidence["last_finite_loss"] == curve[36]


def test_nonfinite_gradients_name_the_layers() -> None:
    feed = [{"grad_norms": [0.1, 0.2, 0.3]}] * 10 + [{"grad_norms": [0.1, np.nan, np.inf]}]
    s = first(NonFiniteGradients(), feed)
    assert s.step == 10 and s.evidence["layers"] == [1, 2]


def test_nonfinite_detectors_are_quiet_on_healthy_runs() -> None:
    assert run(NonFiniteLoss(), losses(decaying(300))) == []
    assert run(NonFiniteGradients(), [{"grad_norms": [0.1, 0.2]}] * 50) == []


# -- loss explosion and spikes ---------------------------------------------------------
def test_loss_explosion_fires_when_the_loss_passes_k_times_the_best() -> None:
    curve = decaying(150)
    curve[100:] = curve[99] * 3.0 ** np.arange(1, 51)
    s = first(LossExplosion(factor=10), losses(curve))
    best = curve[:102].min()
    # curve[100] is 3x, curve[101] 9x, curve[102] 27x the last loss
    assert s.step == 102
    assert s.evidence["best_loss"] == best
    assert s.evidence["ratio"] == pytest.approx(curve[102] / best)
    assert s.evidence["factor"] == 10


def test_loss_explosion_is_quiet_on_a_noisy_healthy_curve() -> None:
    assert run(LossExplosion(), losses(decaying(500, noise=0.2))) == []


def test_loss_spike_fires_at_the_spike_with_the_robust_z_score() -> None:
    rng = np.random.default_rng(3)
    curve = 1.0 + 0.01 * rng.normal(size=120)
    curve[70] = 1.2
    s = first(LossSpike(threshold=6, window=50), losses(curve))
    assert s.step == 70
    ref = curve[20:70]
    med = np.median(ref)
    z = (1.2 - med) / (MAD_SCALE * np.median(np.abs(ref - med)))
    assert s.evidence["z"] == pytest.approx(z)
    assert s.evidence["median"] == pytest.approx(med)


def test_loss_spike_is_quiet_on_a_noisy_healthy_curve() -> None:
    rng = np.random.default_rng(4)
    curve = decaying(600) + 0.01 * rng.normal(size=600)
    assert run(LossSpike(), losses(curve)) == []


# -- no learning, plateau --------------------------------------------------------------
def test_no_learning_fires_at_the_step_budget() -> None:
    rng = np.random.default_rng(5)
    curve = 2.3 + 0.02 * rng.normal(size=260)
    s = first(NoLearning(steps=200, min_improvement=0.01), losses(curve))
    assert s.step == 200
    assert s.evidence["initial_loss"] == curve[0]
    assert s.evidence["recent_loss"] == pytest.approx(np.median(curve[191:201]))
    assert s.evidence["improvement"] < 0.01


def test_no_learning_is_quiet_when_the_loss_falls() -> None:
    assert run(NoLearning(steps=200), losses(decaying(400))) == []


def test_plateau_fires_after_patience_steps_without_relative_improvement() -> None:
    rng = np.random.default_rng(6)
    curve = np.concatenate([np.linspace(2.0, 0.5, 100), 0.5 + 1e-4 * rng.random(200)])
    found = run(Plateau(patience=50, min_delta=1e-3), losses(curve))
    assert 145 <= found[0].step <= 155
    assert found[0].evidence["best_step"] in range(95, 106)
    assert found[0].evidence["steps_without_improvement"] == 50


def test_plateau_is_quiet_while_the_loss_improves() -> None:
    assert run(Plateau(patience=50), losses(decaying(300, tau=400))) == []


# -- overfitting -----------------------------------------------------------------------
def overfit_feed(n_epochs: int, turn: int | None, seed: int = 7) -> Iterator[dict[str, Any]]:
    """Ten training steps per epoch; a validation loss at the end of each epoch."""
    rng = np.random.default_rng(seed)
    for step in range(10 * n_epochs):
        signals: dict[str, Any] = {"loss": 2.0 * np.exp(-step / 100) + 0.01 * rng.random()}
        if step % 10 == 9:
            epoch = step // 10
            base = 1.0 + 1.5 * np.exp(-epoch / 5)
            rise = 0.0 if turn is None else 0.03 * max(0, epoch - turn)
            signals["val_loss"] = base + rise + 0.002 * rng.random()
        yield signals


def test_overfitting_fires_when_validation_turns_up_while_training_falls() -> None:
    s = first(Overfitting(window=5, min_rise=0.02), overfit_feed(40, turn=20))
    epoch = s.step // 10
    assert 22 <= epoch <= 25
    val = np.asarray(s.evidence["val_window"])
    steps = np.arange(s.step - 40, s.step + 1, 10)
    assert s.evidence["val_slope"] == pytest.approx(ls_fit(steps, val)[0])
    assert s.evidence["val_slope"] > 0 > s.evidence["train_slope"]
    assert s.evidence["relative_rise"] > 0.02


def test_overfitting_ratio_rule() -> None:
    feed = [{"loss": 0.5, "val_loss": 0.6}, {"loss": 0.4, "val_loss": 0.9}]
    s = first(Overfitting(max_ratio=2.0), feed)
    assert s.step == 1 and s.evidence["ratio"] == pytest.approx(2.25)


def test_overfitting_is_quiet_when_both_losses_fall() -> None:
    assert run(Overfitting(window=5), overfit_feed(60, turn=None)) == []


# -- oscillation -----------------------------------------------------------------------
def test_oscillation_fires_on_a_see_saw_once_the_window_is_full() -> None:
    rng = np.random.default_rng(8)
    curve = 1.0 + 0.3 * (-1.0) ** np.arange(120) + 0.01 * rng.random(120)
    s = first(Oscillation(window=50, share=0.9), losses(curve))
    assert s.step == 49
    assert s.evidence["sign_change_share"] == 1.0
    diffs = np.diff(curve[:50])
    assert s.evidence["amplitude"] == pytest.approx(
        np.median(np.abs(diffs)) / abs(np.median(curve[:50]))
    )


def test_oscillation_is_quiet_on_pure_noise_and_on_a_healthy_curve() -> None:
    rng = np.random.default_rng(9)
    assert run(Oscillation(), losses(1.0 + 0.3 * rng.random(600))) == []
    assert run(Oscillation(), losses(decaying(600))) == []


# -- slow convergence ------------------------------------------------------------------
def test_slow_convergence_projects_the_target_step_from_a_log_linear_fit() -> None:
    rng = np.random.default_rng(10)
    steps = np.arange(100)
    curve = np.exp(-0.001 * steps) * (1 + 0.001 * rng.random(100))
    s = first(SlowConvergence(target=0.1, budget=1000, window=50), losses(curve))
    assert s.step == 49
    slope, intercept = ls_fit(steps[:50], np.log(curve[:50]))
    assert s.evidence["projected_step"] == pytest.approx((np.log(0.1) - intercept) / slope)
    assert 2200 < s.evidence["projected_step"] < 2400


def test_slow_convergence_is_quiet_when_on_pace_or_already_there() -> None:
    fast = np.exp(-0.01 * np.arange(300))
    assert run(SlowConvergence(target=0.1, budget=1000), losses(fast)) == []
    assert run(SlowConvergence(target=5.0, budget=10), losses(decaying(100))) == []


def test_slow_convergence_on_a_rising_loss_projects_never() -> None:
    s = first(SlowConvergence(target=0.1, budget=1000, window=5), losses(np.linspace(1, 2, 10)))
    assert s.step == 4 and s.evidence["projected_step"] == math.inf


# -- gradients (AUTOTRAINER) -----------------------------------------------------------
def test_exploding_gradients_fire_when_the_first_last_ratio_passes_70() -> None:
    feed = ({"grad_norms": [1.1**s, 1.0, 1.0]} for s in range(80))
    s = first(ExplodingGradients(), feed)
    assert s.step == 45  # 1.1**44 = 66.0, 1.1**45 = 72.9
    assert s.evidence["ratio"] == pytest.approx(1.1**45)
    assert s.evidence["max_ratio"] == 70.0


def test_vanishing_gradients_fire_on_a_tiny_ratio_and_tiny_first_norm() -> None:
    feed = ({"grad_norms": [1e-2 * 0.8**s, 0.1, 0.5]} for s in range(40))
    s = first(VanishingGradients(), feed)
    assert s.step == 21  # first norm drops below 1e-4 at step 21
    assert s.evidence["ratio"] == pytest.approx(1e-2 * 0.8**21 / 0.5)
    assert s.evidence["first_layer_norm"] < 1e-4


def test_gradient_detectors_are_quiet_on_healthy_norms() -> None:
    rng = np.random.default_rng(11)
    feed = [{"grad_norms": (0.5 + 0.1 * rng.random(4)).tolist()} for _ in range(200)]
    assert run(ExplodingGradients(), feed) == []
    assert run(VanishingGradients(), feed) == []


# -- activations -----------------------------------------------------------------------
def test_dying_relu_fires_when_a_layer_passes_the_dead_share() -> None:
    feed = ({"activations": {"dead": [0.05, 0.03 * s, 0.1]}} for s in range(30))
    s = first(DyingReLU(threshold=0.7), feed)
    assert s.step == 24 and s.evidence["layers"] == [1]
    assert s.evidence["max_dead_share"] == pytest.approx(0.72)


def test_saturated_activations_fire_when_a_layer_passes_the_share() -> None:
    feed = ({"activations": {"saturated": [0.03 * s, 0.1]}} for s in range(30))
    s = first(SaturatedActivations(threshold=0.5), feed)
    assert s.step == 17 and s.evidence["layers"] == [0]


def test_activation_detectors_are_quiet_on_healthy_layers() -> None:
    feed = [{"activations": {"dead": [0.1, 0.2], "saturated": [0.05, 0.1]}}] * 100
    assert run(DyingReLU(), feed) == []
    assert run(SaturatedActivations(), feed) == []


# -- learning rate, throughput, memory -------------------------------------------------
def test_lr_out_of_range_high_and_low() -> None:
    high = first(LearningRateOutOfRange(), ({"lr": 0.05 * s + 0.01} for s in range(40)))
    assert high.step == 20 and high.evidence["direction"] == "high"
    low = first(LearningRateOutOfRange(), ({"lr": 0.1 * 0.5**s} for s in range(40)))
    assert low.step == 17 and low.evidence["direction"] == "low"
    assert run(LearningRateOutOfRange(), ({"lr": 1e-3} for _ in range(10))) == []


def test_throughput_collapse_fires_below_a_fraction_of_the_median() -> None:
    rng = np.random.default_rng(12)
    tp = 1000 + 20 * rng.normal(size=150)
    tp[100:] = 300
    s = first(ThroughputCollapse(fraction=0.5, window=50), ({"throughput": x} for x in tp))
    assert s.step == 102  # the third slow step: the median of the last five has collapsed
    assert s.evidence["median"] == pytest.approx(np.median(tp[48:98]))  # the 50 before the last 5
    assert s.evidence["throughput"] == 300
    assert run(ThroughputCollapse(), ({"throughput": x} for x in tp[:100])) == []
    # Isolated slow steps (a checkpoint every 20 steps) are not a collapse.
    bumpy = 1000 + 20 * rng.normal(size=150)
    bumpy[::20] = 100
    assert run(ThroughputCollapse(), ({"throughput": x} for x in bumpy)) == []


def test_memory_growth_fires_on_a_steady_climb() -> None:
    rng = np.random.default_rng(13)
    mem = 1e9 + 4e6 * np.arange(120) + 1e5 * rng.random(120)
    s = first(MemoryGrowth(window=50, min_growth=0.1), ({"memory": x} for x in mem))
    assert s.step == 49 and s.evidence["reason"] == "growth"
    assert s.evidence["slope_bytes_per_step"] == pytest.approx(ls_fit(np.arange(50), mem[:50])[0])


def test_memory_growth_fires_near_the_limit() -> None:
    mem = 1e9 + 2e7 * np.arange(60)
    s = first(MemoryGrowth(window=50, limit=2e9), ({"memory": x} for x in mem))
    assert s.step == 45 and s.evidence["reason"] == "near_limit"


def test_memory_growth_is_quiet_on_a_flat_jittery_footprint() -> None:
    rng = np.random.default_rng(14)
    mem = 1e9 + 5e7 * rng.random(300)
    assert run(MemoryGrowth(limit=4e9), ({"memory": x} for x in mem)) == []


# -- validation ------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("make", "message"),
    [
        (
            lambda: Plateau(patience=0),
            "The 'patience' parameter of Plateau must be an int >= 1. Got 0.",
        ),
        (
            lambda: Plateau(min_delta=1.0),
            "The 'min_delta' parameter of Plateau must be a float in [0, 1). Got 1.0.",
        ),
        (
            lambda: LossExplosion(factor=1),
            "The 'factor' parameter of LossExplosion must be a float > 1. Got 1.",
        ),
        (
            lambda: LossSpike(window=3),
            "The 'window' parameter of LossSpike must be an int >= 4. Got 3.",
        ),
        (
            lambda: NoLearning(steps=True),
            "The 'steps' parameter of NoLearning must be an int >= 1. Got True.",
        ),
        (
            lambda: Overfitting(max_ratio=0.5),
            "The 'max_ratio' parameter of Overfitting must be a float > 1 or None. Got 0.5.",
        ),
        (
            lambda: Oscillation(share=0),
            "The 'share' parameter of Oscillation must be a float in (0, 1]. Got 0.",
        ),
        (
            lambda: SlowConvergence(target=-1, budget=10),
            "The 'target' parameter of SlowConvergence must be a float > 0. Got -1.",
        ),
        (
            lambda: ExplodingGradients(max_ratio=float("nan")),
            "The 'max_ratio' parameter of ExplodingGradients must be a float > 1. Got nan.",
        ),
        (
            lambda: VanishingGradients(min_ratio="small"),  # type: ignore[arg-type]
            "The 'min_ratio' parameter of VanishingGradients must be a float in (0, 1). Got 'small'.",
        ),
        (
            lambda: DyingReLU(threshold=1.0),
            "The 'threshold' parameter of DyingReLU must be a float in (0, 1). Got 1.0.",
        ),
        (
            lambda: LearningRateOutOfRange(low=1.0, high=0.1),
            "The 'high' parameter of LearningRateOutOfRange must be a float > low=1.0. Got 0.1.",
        ),
        (
            lambda: ThroughputCollapse(window=2),
            "The 'window' parameter of ThroughputCollapse must be an int >= 5. Got 2.",
        ),
        (
            lambda: MemoryGrowth(limit=0),
            "The 'limit' parameter of MemoryGrowth must be a float > 0 or None. Got 0.",
        ),
        (
            lambda: NonFiniteLoss(severity="panic"),  # type: ignore[arg-type]
            "The 'severity' parameter of NonFiniteLoss must be one of 'stop', 'warn'. Got 'panic'.",
        ),
    ],
)
def test_thresholds_are_validated(make: Callable[[], Detector], message: str) -> None:
    with pytest.raises(ConfigError) as info:
        make()
    assert str(info.value) == message
    assert isinstance(info.value, ValueError)


# -- contract: every detector ----------------------------------------------------------
ALL = [*default_detectors(), SlowConvergence(target=0.1, budget=100), TimeBudget(60.0)]


def test_the_contract_covers_every_detector_class() -> None:
    assert {type(d) for d in ALL} == set(Detector.__subclasses__())


@pytest.mark.parametrize("detector", ALL, ids=lambda d: type(d).__name__)
def test_detector_contract(detector: Detector) -> None:
    assert detector.kind in SYMPTOM_KINDS
    assert detector.signals
    assert detector.severity in ("stop", "warn")
    assert eval(repr(detector), {type(detector).__name__: type(detector)}).params == detector.params
    with pytest.raises(AttributeError, match="frozen"):
        detector.severity = "warn"
    assert json.dumps(detector.params)
    # Nothing fed for its signals yet: nothing to report.
    assert detector.check(TrainingState().update(0, metrics={"acc": 1.0})) is None


def test_symptoms_serialise_and_name_themselves() -> None:
    curve = decaying(30)
    curve[20] = np.inf
    s = first(NonFiniteLoss(), losses(curve))
    d = json.loads(json.dumps(s.to_dict()))
    assert d["kind"] == "nonfinite_loss" and d["evidence"]["loss"] == "inf"
    text = s.to_text()
    assert text.startswith("TrainingSymptom: nonfinite_loss (severity=stop) at step 20")
    assert "Recommendation: Lower the learning rate" in text
    with pytest.raises(AttributeError):
        s.kind = "other"  # type: ignore[misc]


def test_loss_explosion_ignores_minibatch_noise_on_a_converged_loss() -> None:
    # A loss near zero swings tenfold from batch to batch; it never climbs back to the
    # initial loss, so it is no explosion (threshold = max(factor * best, initial)).
    rng = np.random.default_rng(5)
    curve = np.r_[decaying(100), 0.02 * rng.lognormal(0.0, 1.0, size=200)]
    assert run(LossExplosion(), losses(curve)) == []


def test_overfitting_needs_a_significant_rise_of_the_validation_loss() -> None:
    rng = np.random.default_rng(6)
    train = decaying(100)
    flat_val = 0.5 + 0.03 * rng.normal(size=100)  # noisy, no trend
    feed = [{"loss": float(t), "val_loss": float(v)} for t, v in zip(train, flat_val, strict=True)]
    # Pure noise still tilts a 10-point fit now and then; the t-test cuts those reports.
    assert len(run(Overfitting(), feed)) < len(run(Overfitting(min_t=1e-9), feed))
    rising = [{"loss": float(t), "val_loss": 0.5 + 0.01 * i} for i, t in enumerate(train)]
    s = first(Overfitting(), rising)
    assert s.evidence["slope_t"] > 3.0
