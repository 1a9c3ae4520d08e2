"""TrainingState: ring buffers agree with plain lists; bad input is refused cleanly."""

from __future__ import annotations

import numpy as np
import pytest

from hindsight.errors import ConfigError, DataQualityError
from hindsight.training import TrainingState


def test_windows_match_a_naive_list_on_every_prefix() -> None:
    rng = np.random.default_rng(0)
    state = TrainingState(window=7)
    losses: list[float] = []
    grads: list[list[float]] = []
    for step in range(30):
        x = float(rng.random())
        g = rng.random(3).tolist()
        losses.append(x)
        grads.append(g)
        state.update(step * 2, loss=x, grad_norms=g)
        np.testing.assert_array_equal(state.loss, losses[-7:])
        np.testing.assert_array_equal(state.loss_steps, [2 * s for s in range(30)][: step + 1][-7:])
        np.testing.assert_array_equal(state.grad_norms, np.array(grads[-7:]))
        assert state.best_loss == min(losses)
        assert state.initial_loss == losses[0]
    assert state.step == 58 and state.n_updates == 30


def test_windows_are_read_only_and_signals_are_tracked() -> None:
    state = TrainingState().update(0, loss=1.0, metrics={"acc": 0.5}, val_loss=1.2)
    with pytest.raises(ValueError):
        state.loss[0] = 3.0
    assert state.updated == {"loss", "val_loss", "metrics.acc"}
    assert state.metric_names == ("acc",)
    np.testing.assert_array_equal(state.metric("acc"), [0.5])
    assert state.metric("nope").size == 0
    state.update(1, activations={"dead": [0.1, 0.2], "saturated": [0.0, 0.3]}, memory=5.0)
    assert state.updated == {"dead", "saturated", "memory"}
    assert state.dead_share.shape == (1, 2)


def test_nonfinite_losses_are_kept_but_not_best() -> None:
    state = TrainingState().update(0, loss=float("nan")).update(1, loss=2.0)
    assert np.isnan(state.loss[0])
    assert state.initial_loss == 2.0 and state.best_loss == 2.0 and state.best_loss_step == 1


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"loss": "0.5"}, "The 'loss' argument must be a real number. Got '0.5'"),
        ({"lr": True}, "'lr' argument must be a real number"),
        ({"metrics": {"acc": None}}, r"metrics\['acc'\]"),
        ({"metrics": [1.0]}, "'metrics' argument must be a mapping"),
        ({"grad_norms": [[1.0, 2.0]]}, "'grad_norms' argument must be a non-empty 1-D"),
        ({"grad_norms": ["a"]}, "'grad_norms' argument must be a sequence of real numbers"),
        ({"grad_norms": [-1.0]}, "'grad_norms' argument must hold values >= 0"),
        ({"activations": {"dying": [0.1]}}, "'activations' argument must be a mapping"),
        ({"activations": {"dead": [1.5]}}, r"activations\['dead'\]' argument must hold shares"),
    ],
)
def test_bad_arguments_name_the_argument(kwargs: dict[str, object], match: str) -> None:
    with pytest.raises(DataQualityError, match=match):
        TrainingState().update(0, **kwargs)  # type: ignore[arg-type]


def test_mismatched_layers_and_steps_are_refused_without_changing_anything() -> None:
    state = TrainingState().update(0, loss=1.0, grad_norms=[1.0, 2.0, 3.0])
    with pytest.raises(DataQualityError, match=r"must have 3 values, one per layer.*Got 2"):
        state.update(1, loss=0.5, grad_norms=[1.0, 2.0])
    assert state.step == 0 and len(state.loss) == 1
    with pytest.raises(DataQualityError, match="'step' argument must increase"):
        state.update(0, loss=0.5)
    with pytest.raises(DataQualityError, match="'step' argument must be an int >= 0"):
        state.update(-1)
    with pytest.raises(ValueError):  # DataQualityError is a ValueError
        state.update(2.5)  # type: ignore[arg-type]


def test_window_is_validated() -> None:
    with pytest.raises(
        ConfigError,
        match=r"^The 'window' parameter of TrainingState must be an int >= 2\. Got 1\.$",
    ):
        TrainingState(window=1)
