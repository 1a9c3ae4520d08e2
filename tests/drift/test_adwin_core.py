"""ADWIN's compiled core against its Python twin: the same detections and state, bit for bit.

``ADWIN.update`` runs ``_adwin_core.Core`` where the extension was built and
``_adwin_py.PyCore`` otherwise; both must agree with each other and with
``update_many`` on every value. Skipped where the extension is missing (a machine with
no C compiler at install time), required under ``CI=true``.
"""

from __future__ import annotations

import copy
import inspect
import math
import os
import pickle
from decimal import Decimal
from fractions import Fraction
from typing import Any

import numpy as np
import pytest

from hindsight.drift.streaming import ADWIN
from hindsight.drift.streaming import adwin as adwin_module
from hindsight.drift.streaming._adwin_py import PyCore

try:
    from hindsight.drift.streaming._adwin_core import Core
except ImportError:  # pragma: no cover - depends on the build
    if os.environ.get("CI") == "true":
        pytest.fail(
            "the compiled ADWIN core (hindsight.drift.streaming._adwin_core) is required in "
            "CI; install with a C compiler and Python headers",
            pytrace=False,
        )
    pytest.skip("the compiled ADWIN core was not built", allow_module_level=True)


class PurePythonADWIN(ADWIN):
    """ADWIN on its Python core, whatever was built."""

    _core_type = PyCore


def streams() -> dict[str, list[Any]]:
    rng = np.random.default_rng(20)
    n = 6000
    ramp = np.minimum(np.arange(n) / 2000, 1.0)
    return {
        "abrupt": rng.normal(np.repeat([0.0, 0.5, -0.2], n // 3), 0.2).tolist(),
        "gradual": rng.normal(ramp, 0.3).tolist(),
        "stationary": rng.normal(0, 1, n).tolist(),
        "large_offset": (1e9 + rng.normal(np.repeat([0.0, 3.0], n // 2), 1.0)).tolist(),
        # ADWIN's bound is not scale-free: no drift here, but the cores must still agree.
        "tiny_scale": (1e-12 * rng.normal(np.repeat([0.0, 1.0], n // 2), 0.5)).tolist(),
        "ints": rng.integers(0, 3, n).tolist() + rng.integers(2, 6, n).tolist(),
        "constant": [3.0] * 3000 + [4.0] * 3000,
        "numpy_scalars": list(rng.normal(np.repeat([0.0, 1.0], 1500), 0.3)),
    }


STREAMS = streams()
PARAMS: list[dict[str, Any]] = [
    {},
    {"delta": 0.1, "clock": 1, "max_buckets": 2, "min_window_length": 1, "grace_period": 1},
    {"delta": 0.01, "clock": 7, "max_buckets": 3, "min_window_length": 20, "grace_period": 50},
    {"clock": 100, "max_buckets": 9},
]
PARAM_IDS = ["defaults", "every-value", "odd-clock", "wide"]


def snapshot(detector: ADWIN) -> tuple[Any, ...]:
    return (
        detector.drift_detected,
        detector.n_seen,
        detector.n_detections,
        detector.width,
        detector.mean,
        detector.variance,
        detector.n_buckets,
        detector._core.get_state(),
    )


def test_the_compiled_core_is_the_default() -> None:
    assert adwin_module.COMPILED
    assert ADWIN._core_type is Core
    assert type(ADWIN()._core) is Core
    assert type(PurePythonADWIN()._core) is PyCore


@pytest.mark.parametrize("params", PARAMS, ids=PARAM_IDS)
@pytest.mark.parametrize("name", sorted(STREAMS))
def test_both_cores_agree_on_every_value(name: str, params: dict[str, Any]) -> None:
    xs = STREAMS[name]
    fast, slow = ADWIN(**params), PurePythonADWIN(**params)
    hits = []
    for i, x in enumerate(xs):
        assert fast.update(x) is fast
        assert slow.update(x) is slow
        assert fast.drift_detected == slow.drift_detected
        assert fast.width == slow.width
        if fast.drift_detected:
            hits.append(i)
        if i % 97 == 0 or fast.drift_detected:
            assert snapshot(fast) == snapshot(slow), i
    assert snapshot(fast) == snapshot(slow)
    if name in ("abrupt", "gradual", "large_offset", "ints", "constant"):
        assert hits, "the change should be detected"
    # update_many lands on the same detections and state from either core.
    many = ADWIN(**params)
    assert many.update_many(np.asarray(xs, dtype=np.float64)).tolist() == hits
    assert snapshot(many) == snapshot(fast)


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_mixes_of_update_and_update_many_agree(seed: int) -> None:
    rng = np.random.default_rng(seed)
    xs = rng.normal(np.repeat([0.0, 0.4, 0.0, 1.0], 2500), 0.25 + seed * 0.1)
    expected: list[int] = []
    reference = PurePythonADWIN()
    for i, x in enumerate(xs.tolist()):
        if reference.update(x).drift_detected:
            expected.append(i)
    assert len(expected) >= 2
    for cls in (ADWIN, PurePythonADWIN):
        detector = cls()
        found: list[int] = []
        pos = 0
        while pos < xs.size:
            size = int(rng.integers(1, 300))
            piece = xs[pos : pos + size]
            if rng.random() < 0.5:
                for i, x in enumerate(piece.tolist()):
                    if detector.update(x).drift_detected:
                        found.append(pos + i)
            else:
                found += (pos + detector.update_many(piece)).tolist()
            pos += size
        assert found == expected, cls.__name__
        assert snapshot(detector) == snapshot(reference)


BAD: list[Any] = [
    math.nan,
    math.inf,
    -math.inf,
    np.float64("nan"),
    np.float32("inf"),
    10**400,
    "1",
    None,
    [1.0],
    Decimal("1.5"),
    complex(1, 0),
]


def _error(detector: ADWIN, x: Any) -> tuple[type[BaseException], str]:
    with pytest.raises(Exception) as info:
        detector.update(x)
    return info.type, str(info.value)


def test_bad_values_raise_the_same_errors_and_change_nothing() -> None:
    fast, slow = ADWIN(), PurePythonADWIN()
    xs = STREAMS["abrupt"][:1000]
    for x in xs:
        fast.update(x)
        slow.update(x)
    before = snapshot(fast)
    for x in BAD:
        assert _error(fast, x) == _error(slow, x), x
    assert snapshot(fast) == before == snapshot(slow)


def test_other_numbers_are_taken_as_floats() -> None:
    values: list[Any] = [True, 2, -(2**70), Fraction(1, 3), np.int64(5), np.float32(0.25), 7.5]
    fast, slow = ADWIN(clock=1), PurePythonADWIN(clock=1)
    for x in values * 10:
        fast.update(x)
        slow.update(x)
    assert snapshot(fast) == snapshot(slow)
    assert fast._core.get_state()[0] == []


def test_a_bound_update_survives_reset_copies_and_pickles() -> None:
    xs = STREAMS["abrupt"]
    detector = ADWIN()
    update = detector.update
    for x in xs[:3000]:
        update(x)
    twins = [copy.deepcopy(detector), pickle.loads(pickle.dumps(detector))]
    for twin in twins:
        assert type(twin._core) is Core
        assert snapshot(twin) == snapshot(detector)
        assert twin.update(xs[3000]) is twin
    detector.update(xs[3000])
    for twin in twins:
        assert snapshot(twin) == snapshot(detector)
    detector.reset()
    assert detector.n_seen == 0 and detector.width == 0
    assert update(1.0) is detector
    assert detector.n_seen == 1


def test_update_reads_as_a_method_on_the_class() -> None:
    assert inspect.isfunction(ADWIN.update)
    assert list(inspect.signature(ADWIN.update).parameters) == ["self", "x"]
    assert "Feed one value" in (ADWIN.update.__doc__ or "")
    detector = ADWIN()
    assert ADWIN.update(detector, 1.0) is detector
    assert detector.n_seen == 1


def test_the_core_rejects_a_bad_state_without_changing() -> None:
    detector = ADWIN()
    for x in STREAMS["abrupt"][:500]:
        detector.update(x)
    before = detector._core.get_state()
    bad = list(before)
    bad[0] = [0.0] * 40  # more values waiting than a tick holds
    with pytest.raises(ValueError, match="inconsistent"):
        detector._core.set_state(tuple(bad))
    bad = list(before)
    bad[2] = ["x"] * len(before[2])
    with pytest.raises(TypeError):
        detector._core.set_state(tuple(bad))
    assert detector._core.get_state() == before
