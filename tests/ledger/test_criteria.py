"""Success criteria: parsing, verdicts and the outcome they judge."""

from __future__ import annotations

import math

import pytest

from hindsight.errors import InvalidCriteria, LedgerError
from hindsight.ledger import Criterion, parse_criteria
from hindsight.ledger.criteria import judge, outcome_of


@pytest.mark.parametrize(
    ("spec", "op", "threshold"),
    [
        (">= 0.60", ">=", 0.60),
        ("<=50", "<=", 50.0),
        ("  > 3 ", ">", 3.0),
        ("< -1.5", "<", -1.5),
        ("== 1", "==", 1.0),
        ("!= 0", "!=", 0.0),
        ("<= 1e-3", "<=", 1e-3),
        (">= .5", ">=", 0.5),
        (0.6, ">=", 0.6),
        (50, ">=", 50.0),
    ],
)
def test_parses_operator_and_threshold(spec: object, op: str, threshold: float) -> None:
    (c,) = parse_criteria({"ctr": spec})
    assert c == Criterion("ctr", op, threshold)


def test_parses_several_in_order_and_prints_them() -> None:
    parsed = parse_criteria({"ctr": ">= 0.60", "latency_p99_ms": "<= 50"})
    assert [str(c) for c in parsed] == ["ctr >= 0.6", "latency_p99_ms <= 50"]


def test_no_criteria() -> None:
    assert parse_criteria(None) == []
    assert parse_criteria({}) == []


@pytest.mark.parametrize("spec", ["about 0.6", ">=", "=> 0.6", ">= 0.6x", ">= nan", "", "≥ 0.6"])
def test_bad_string_names_the_criterion_and_the_shape(spec: str) -> None:
    with pytest.raises(InvalidCriteria) as info:
        parse_criteria({"ctr": spec})
    msg = str(info.value)
    assert "'ctr'" in msg
    assert repr(spec) in msg
    assert "'>= 0.60'" in msg


@pytest.mark.parametrize("spec", [True, None, [0.6], {"min": 0.6}])
def test_bad_type_names_the_criterion(spec: object) -> None:
    with pytest.raises(InvalidCriteria, match=r"'ctr' must be a string like '>= 0.60' or a number"):
        parse_criteria({"ctr": spec})


def test_not_a_mapping_and_bad_names() -> None:
    with pytest.raises(InvalidCriteria, match="must be a mapping"):
        parse_criteria(["ctr >= 0.6"])  # type: ignore[arg-type]
    with pytest.raises(InvalidCriteria, match="metric names"):
        parse_criteria({"": ">= 1"})


def test_invalid_criteria_is_a_value_error_and_a_ledger_error() -> None:
    with pytest.raises(ValueError):
        parse_criteria({"x": "?"})
    with pytest.raises(LedgerError):
        parse_criteria({"x": "?"})


def test_verdicts_met_missed_missing() -> None:
    crit = parse_criteria({"ctr": ">= 0.60", "latency_p99_ms": "<= 50", "recall": "> 0.2"})
    verdicts = judge(crit, {"ctr": 0.63, "latency_p99_ms": 72.0})
    assert [(v.criterion.metric, v.value, v.verdict, v.met) for v in verdicts] == [
        ("ctr", 0.63, "met", True),
        ("latency_p99_ms", 72.0, "missed", False),
        ("recall", None, "missing", False),
    ]
    assert verdicts[1].to_dict() == {
        "metric": "latency_p99_ms",
        "op": "<=",
        "threshold": 50.0,
        "value": 72.0,
        "verdict": "missed",
    }


def test_boundaries_and_equality() -> None:
    assert Criterion("a", ">=", 0.6).check(0.6)
    assert not Criterion("a", ">", 0.6).check(0.6)
    assert Criterion("a", "<=", 50).check(50)
    assert not Criterion("a", "<", 50).check(50)
    assert Criterion("a", "==", 1).check(1.0)
    assert not Criterion("a", "!=", 1).check(1.0)


@pytest.mark.parametrize("op", [">=", "<=", ">", "<", "==", "!="])
def test_nan_never_meets(op: str) -> None:
    c = Criterion("loss", op, 1.0)
    assert not c.check(math.nan)
    (v,) = judge([c], {"loss": math.nan})
    assert v.verdict == "missed"
    assert math.isnan(v.value)  # type: ignore[arg-type]


def test_outcome_of() -> None:
    crit = parse_criteria({"a": ">= 1", "b": ">= 1"})
    assert outcome_of(judge(crit, {"a": 1, "b": 2})) == "success"
    assert outcome_of(judge(crit, {"a": 1, "b": 0})) == "partial"
    assert outcome_of(judge(crit, {"a": 0, "b": 0})) == "failure"
    assert outcome_of(judge(crit, {})) == "failure"  # nothing logged meets nothing
    assert outcome_of(judge(crit, {"a": 1})) == "partial"
    assert outcome_of([]) is None


def test_format_value_shows_numbers_and_stored_non_finite_strings() -> None:
    from hindsight.ledger.criteria import format_value

    assert format_value(None) == "—"
    assert format_value(0.123456789) == "0.123457"
    assert format_value(3034.1666, 4) == "3034"
    assert format_value("nan") == "nan"
