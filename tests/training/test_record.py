"""Buffered steps: TrainingState.extend and TrainingGuard.record, checked at the next update."""

from __future__ import annotations

import numpy as np
import pytest

from hindsight.errors import DataQualityError
from hindsight.training import LossExplosion, LossSpike, NonFiniteLoss, TrainingGuard, TrainingState


def test_extend_matches_one_update_per_step() -> None:
    rng = np.random.default_rng(0)
    losses = (2.0 * np.exp(-np.arange(40) / 10) + 0.01 * rng.random(40)).tolist()
    one, many = TrainingState(window=16), TrainingState(window=16)
    for s, x in enumerate(losses):
        one.update(s, loss=x, lr=0.1)
    many.extend(range(39), loss=losses[:39], lr=[0.1] * 39)
    many.update(39, loss=losses[39], lr=0.1)
    np.testing.assert_array_equal(one.loss, many.loss)
    np.testing.assert_array_equal(one.loss_steps, many.loss_steps)
    np.testing.assert_array_equal(one.lr, many.lr)
    assert (one.best_loss, one.best_loss_step, one.initial_loss) == (
        many.best_loss, many.best_loss_step, many.initial_loss
    )
    assert many.fresh("loss") == 40 and many.fresh("lr") == 40 and one.fresh("loss") == 1
    assert many.updated == {"loss", "lr"} and many.n_updates == 40


def test_extend_refuses_bad_input_and_stores_nothing() -> None:
    state = TrainingState()
    state.update(5, loss=1.0)
    with pytest.raises(DataQualityError, match="come after the latest step"):
        state.extend([5, 6], loss=[1.0, 1.0])
    with pytest.raises(DataQualityError, match="increase"):
        state.extend([7, 7], loss=[1.0, 1.0])
    with pytest.raises(DataQualityError, match="one value per step"):
        state.extend([7, 8], loss=[1.0])
    with pytest.raises(DataQualityError, match="real numbers"):
        state.extend([7, 8], loss=["a", "b"])
    assert list(state.loss_steps) == [5]


def test_the_step_where_a_buffered_loss_went_wrong_is_reported() -> None:
    guard = TrainingGuard(detectors=[NonFiniteLoss(), LossExplosion(), LossSpike()])
    base = [1.0 + 0.01 * (i % 3) for i in range(60)]
    guard.record(range(60), loss=base)
    assert not guard.update(60, loss=1.0).symptoms
    spiky = [1.0] * 9
    spiky[3] = 1.6  # a spike at step 64, then back to normal
    guard.record(range(61, 70), loss=spiky)
    verdict = guard.update(70, loss=1.0)
    assert [(s.kind, s.step) for s in verdict.symptoms] == [("loss_spike", 64)]
    blown = [1.0, 30.0, float("nan"), 1.0]
    guard.record(range(71, 75), loss=blown)
    verdict = guard.update(75, loss=1.0)
    # In the order they showed: the blow-up at 72 before the NaN at 73, and the stop's
    # reason names the blow-up first.
    assert [(s.kind, s.step) for s in verdict.symptoms] == [
        ("loss_explosion", 72), ("nonfinite_loss", 73)
    ]
    assert verdict.stop and verdict.reason is not None
    assert verdict.reason.startswith("loss_explosion")
