"""Every registered univariate drift test keeps the same contract.

Tests are discovered from the registry, so a new module is checked as soon as it
registers. Multivariate tests (kind "multivariate") have their own contract test.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

import numpy as np
import pytest

from hindsight._validation import Interval, Options
from hindsight.drift.stattests import (
    REGISTRY,
    Counts,
    DriftTest,
    TestResult,
    available_tests,
    get_test,
)
from hindsight.errors import ConfigError, DriftError

UNIVARIATE = [
    REGISTRY[name] for name in sorted(REGISTRY) if "multivariate" not in REGISTRY[name].kinds
]
# (test class, kind of data it is fed): binned distances take both kinds.
CASES = [(cls, kind) for cls in UNIVARIATE for kind in sorted(cls.kinds)]
N = 2000


def _ids(value: Any) -> str:
    return value.name if isinstance(value, type) else str(value)


def same_distribution(kind: str, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    if kind == "numeric":
        return rng.normal(size=N), rng.normal(size=N)
    # Binary flags are the categorical data every categorical test takes (z_test included).
    return rng.random(N) < 0.3, rng.random(N) < 0.3


def shifted(kind: str, seed: int = 1) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    if kind == "numeric":
        return rng.normal(size=N), rng.normal(1.0, size=N)
    return rng.random(N) < 0.3, rng.random(N) < 0.6


def test_the_registry_holds_the_univariate_tests() -> None:
    expected = {
        "anderson", "chi_square", "cramer_von_mises", "energy_distance", "g_test",
        "hellinger", "jensen_shannon", "kl_divergence", "ks", "mann_whitney", "psi",
        "total_variation", "wasserstein", "z_test",
    }  # fmt: skip
    assert expected <= {cls.name for cls in UNIVARIATE}
    assert set(available_tests("numeric")) >= {"ks", "psi", "wasserstein", "anderson"}
    assert "chi_square" not in available_tests("numeric")
    assert set(available_tests("categorical")) >= {"chi_square", "z_test", "psi"}


@pytest.mark.parametrize("cls", UNIVARIATE, ids=_ids)
def test_class_declares_a_consistent_contract(cls: type[DriftTest]) -> None:
    assert REGISTRY[cls.name] is cls
    assert re.fullmatch(r"[a-z][a-z0-9_]*", cls.name)
    assert cls.kinds and cls.kinds <= {"numeric", "categorical"}
    assert cls.threshold_on in ("p_value", "effect_size")
    if cls.threshold_on == "p_value":
        assert cls.has_p_value and 0.0 < cls.default_threshold < 1.0
    else:
        assert cls.default_threshold > 0.0
    assert cls.effect_name and cls.effect_name != "effect_size"
    assert (cls.__doc__ or "").strip(), "a class docstring saying what it is for"
    test = get_test(cls.name)
    assert test.threshold == cls.default_threshold
    assert repr(test).startswith(f"{cls.__name__}(threshold=")


@pytest.mark.parametrize(("cls", "kind"), CASES, ids=_ids)
def test_result_shape_and_json(cls: type[DriftTest], kind: str) -> None:
    result = cls()(*shifted(kind))
    assert isinstance(result, TestResult)
    assert result.test == cls.name
    assert result.threshold == cls.default_threshold
    assert result.threshold_on == cls.threshold_on
    assert (result.p_value is not None) == cls.has_p_value
    if result.p_value is not None:
        assert 0.0 <= result.p_value <= 1.0
    assert math.isfinite(result.statistic) and math.isfinite(result.effect_size)
    assert result.effect_size >= 0.0
    assert result.details["effect"] == cls.effect_name
    decided_on = result.p_value if cls.threshold_on == "p_value" else result.effect_size
    assert decided_on is not None
    assert result.drifted == (
        decided_on < result.threshold
        if cls.threshold_on == "p_value"
        else decided_on >= result.threshold
    )
    as_json = json.dumps(result.to_dict(), allow_nan=False)
    assert json.loads(as_json)["test"] == cls.name


@pytest.mark.parametrize(("cls", "kind"), CASES, ids=_ids)
def test_no_drift_between_samples_of_one_distribution(cls: type[DriftTest], kind: str) -> None:
    assert not cls()(*same_distribution(kind)).drifted
    reference, _ = same_distribution(kind)
    identical = cls()(reference, reference.copy())
    assert not identical.drifted
    assert identical.effect_size == pytest.approx(0.0, abs=1e-12)


@pytest.mark.parametrize(("cls", "kind"), CASES, ids=_ids)
def test_drift_on_a_clearly_shifted_sample(cls: type[DriftTest], kind: str) -> None:
    result = cls()(*shifted(kind))
    assert result.drifted
    reference, current = same_distribution(kind)
    assert result.effect_size > cls()(reference, current).effect_size


@pytest.mark.parametrize(("cls", "kind"), CASES, ids=_ids)
def test_same_input_same_result(cls: type[DriftTest], kind: str) -> None:
    reference, current = shifted(kind)
    assert cls()(reference, current) == cls()(reference.copy(), current.copy())


@pytest.mark.parametrize("cls", [c for c in UNIVARIATE if "categorical" in c.kinds], ids=_ids)
def test_categorical_tests_take_counts(cls: type[DriftTest]) -> None:
    flags_ref, flags_cur = shifted("categorical")
    counts = Counts(
        np.array([np.sum(~flags_ref), np.sum(flags_ref)]),
        np.array([np.sum(~flags_cur), np.sum(flags_cur)]),
    )
    from_counts = cls()(counts, None)
    from_flags = cls()(flags_ref, flags_cur)
    assert from_counts.statistic == pytest.approx(from_flags.statistic, rel=1e-12)
    assert from_counts.effect_size == pytest.approx(from_flags.effect_size, rel=1e-12)


@pytest.mark.parametrize(("cls", "kind"), CASES, ids=_ids)
@pytest.mark.parametrize("empty_side", ["reference", "current"])
def test_empty_input_is_a_drift_error(cls: type[DriftTest], kind: str, empty_side: str) -> None:
    reference, current = same_distribution(kind)
    empty = reference[:0]
    args = (empty, current) if empty_side == "reference" else (reference, empty)
    with pytest.raises(DriftError, match="empty"):
        cls()(*args)


@pytest.mark.parametrize("cls", [c for c in UNIVARIATE if "numeric" in c.kinds], ids=_ids)
def test_numeric_input_is_checked(cls: type[DriftTest]) -> None:
    reference, current = same_distribution("numeric")
    with_nan = current.copy()
    with_nan[3] = np.nan
    with pytest.raises(DriftError, match="NaN"):
        cls()(reference, with_nan)
    with pytest.raises(DriftError, match="1-D"):
        cls()(reference.reshape(-1, 2), current.reshape(-1, 2))


def _bad_value(constraint: Interval | Options) -> Any:
    return "not-a-number" if isinstance(constraint, Interval) else "not-an-option"


def _message(param: str, cls: type[DriftTest]) -> str:
    return re.escape(f"The '{param}' parameter of {cls.__name__} must be ")


@pytest.mark.parametrize("cls", UNIVARIATE, ids=_ids)
def test_parameters_are_validated_with_one_message_shape(cls: type[DriftTest]) -> None:
    bad_thresholds: list[Any] = [0.0, -1.0, math.nan, math.inf, "0.05", True]
    if cls.threshold_on == "p_value":
        bad_thresholds.append(1.0)
    for bad in bad_thresholds:
        with pytest.raises(ConfigError, match=_message("threshold", cls)):
            cls(threshold=bad)
    for param, constraint in cls._constraints.items():
        with pytest.raises(ConfigError, match=_message(param, cls) + ".*Got 'not-a"):
            cls(**{param: _bad_value(constraint)})
    custom = cls(threshold=0.5)
    assert custom.threshold == 0.5


@pytest.mark.parametrize("cls", UNIVARIATE, ids=_ids)
def test_threshold_moves_the_verdict(cls: type[DriftTest]) -> None:
    rng = np.random.default_rng(2)
    if "numeric" in cls.kinds:  # a mild shift, so that no p-value underflows to 0
        reference, current = rng.normal(size=N), rng.normal(0.2, size=N)
    else:
        reference, current = rng.random(N) < 0.3, rng.random(N) < 0.36
    result = cls()(reference, current)
    if cls.threshold_on == "p_value":
        assert result.p_value is not None
        strict = cls(threshold=max(result.p_value / 2, 1e-300))
    else:
        strict = cls(threshold=result.effect_size * 2)
    assert not strict(reference, current).drifted


def test_unknown_test_lists_the_names() -> None:
    with pytest.raises(DriftError, match=r"Available: .*psi"):
        get_test("nope")
