"""The abstention policy: confidence gate, OOD score against a training profile, risk rules, audit."""

from __future__ import annotations

import doctest
import math
from datetime import UTC, datetime

import numpy as np
import pyarrow as pa
import pytest

import hindsight.serving.abstain as abstain_module
from hindsight.data.profile import DatasetProfile, profile
from hindsight.errors import ConfigError, DataError
from hindsight.serving.abstain import AbstentionPolicy, RiskRule, Verdict

N = 2000


@pytest.fixture(scope="module")
def data() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(7)
    return {
        "amount": rng.normal(100.0, 20.0, N),
        "items": rng.integers(1, 6, N).astype(np.int64),
        "plan": rng.choice(["basic", "pro", "team"], N),
        "flag": rng.random(N) < 0.3,
    }


@pytest.fixture(scope="module")
def train(data: dict[str, np.ndarray]) -> DatasetProfile:
    income = [None if i % 10 == 0 else float(i) for i in range(N)]
    return profile(pa.table({**data, "income": pa.array(income, pa.float64())}))


def _tail(x: np.ndarray, v: float) -> float:
    return min(1.0, 2.0 * min(float(np.mean(x <= v)), float(np.mean(x >= v))))


def ok_inputs() -> dict[str, object]:
    return {"amount": 100.0, "items": 3, "plan": "pro", "flag": False, "income": 1000.0}


def test_docstring_examples() -> None:
    result = doctest.testmod(abstain_module, optionflags=doctest.ELLIPSIS)
    assert result.failed == 0
    assert result.attempted > 0


# -- confidence -------------------------------------------------------------------
def test_confidence_gate_at_the_boundary() -> None:
    policy = AbstentionPolicy(min_confidence=0.8)
    assert not policy.judge({}, 0.8).abstain
    assert not policy.judge({}, 0.95).abstain
    below = policy.judge({}, math.nextafter(0.8, 0.0))
    assert below.abstain
    assert below.reasons[0].startswith("confidence ")
    assert below.ood_score is None
    assert not below.audit


def test_answers_without_confidence_are_not_gated() -> None:
    assert not AbstentionPolicy(min_confidence=0.8).judge({}, None).abstain


def test_no_settings_never_abstains() -> None:
    verdict = AbstentionPolicy().judge({"anything": 1}, 0.0)
    assert verdict == Verdict(abstain=False, reasons=(), ood_score=None, audit=False)
    assert not verdict.review


@pytest.mark.parametrize(
    "kwargs",
    [
        {"min_confidence": 1.5},
        {"min_confidence": -0.1},
        {"audit_rate": 2.0},
        {"ood_threshold": 0.0},
        {"seed": 1.5},
    ],
)
def test_bad_parameters_have_clear_messages(kwargs: dict[str, object]) -> None:
    with pytest.raises(ConfigError, match="parameter of AbstentionPolicy must be"):
        AbstentionPolicy(**kwargs)  # type: ignore[arg-type]


# -- out of distribution ---------------------------------------------------------------
@pytest.mark.parametrize("q", [0.001, 0.02, 0.1, 0.3, 0.5, 0.7, 0.9, 0.99])
def test_numeric_tail_matches_explicit_computation(
    data: dict[str, np.ndarray], train: DatasetProfile, q: float
) -> None:
    x = data["amount"]
    v = float(np.quantile(x, q))
    policy = AbstentionPolicy(ood_profile=train, ood_features=["amount"])
    assert train["amount"].summary.exact
    assert policy.ood_score({"amount": v}) == pytest.approx(_tail(x, v), abs=1e-12)
    # A value between two training values, too.
    w = v + 1e-9
    assert policy.ood_score({"amount": w}) == pytest.approx(_tail(x, w), abs=1e-12)


def test_integer_ties_use_both_inclusive_tails(
    data: dict[str, np.ndarray], train: DatasetProfile
) -> None:
    x = data["items"]
    policy = AbstentionPolicy(ood_profile=train, ood_features=["items"])
    for v in (1, 2, 3, 4, 5):
        assert policy.ood_score({"items": v}) == pytest.approx(_tail(x, v), abs=1e-12)
    # The maximum is in range: its tail is twice the share of the top value, not 0.
    assert policy.ood_score({"items": 5}) == pytest.approx(2 * np.mean(x == 5))


def test_approximate_summary_matches_its_own_cdf(data: dict[str, np.ndarray]) -> None:
    x = data["amount"]
    coarse = profile(pa.table({"amount": x}), quantile_knots=16)
    summary = coarse["amount"].summary
    assert not summary.exact
    policy = AbstentionPolicy(ood_profile=coarse)
    for v in np.linspace(x.min(), x.max(), 37):
        le = float(summary.cdf(np.array([v]))[0])
        lo, hi = summary.rank_bounds(np.array([v]), strict=True)
        ge = 1.0 - (lo[0] + hi[0]) / 2.0 / summary.n
        expected = min(1.0, 2.0 * min(le, ge))
        got = policy.ood_score({"amount": float(v)})
        assert got == pytest.approx(expected, abs=1e-12)
        assert abs(got - _tail(x, float(v))) <= 4 * summary.rank_error + 1e-12


def test_out_of_range_scores_zero(data: dict[str, np.ndarray], train: DatasetProfile) -> None:
    policy = AbstentionPolicy(ood_profile=train)
    hi = float(data["amount"].max())
    lo = float(data["amount"].min())
    for v in (math.nextafter(hi, math.inf), math.nextafter(lo, -math.inf), 1e12, -1e12):
        verdict = policy.judge({**ok_inputs(), "amount": v}, None)
        assert verdict.ood_score == 0.0
        assert verdict.abstain
        assert verdict.reasons == (
            f"out of distribution: amount={v!r} outside the training range [{lo:.6g}, {hi:.6g}]",
        )
    assert policy.ood_scores({"amount": hi})["amount"][0] == pytest.approx(2.0 / N)


def test_unseen_category_scores_zero(train: DatasetProfile) -> None:
    policy = AbstentionPolicy(ood_profile=train)
    verdict = policy.judge({**ok_inputs(), "plan": "gold"}, None)
    assert verdict.ood_score == 0.0
    assert verdict.reasons == ("out of distribution: plan='gold' not seen in training",)
    assert policy.ood_scores(ok_inputs())["plan"] == (1.0, "")
    # Booleans are spelled as the profile spells them.
    assert policy.ood_scores({"flag": True})["flag"][0] == 1.0


def test_truncated_categories_score_the_other_share() -> None:
    labels = [f"c{i}" for i in range(10)] * 10
    prof = profile(pa.table({"c": labels}), max_categories=4)
    policy = AbstentionPolicy(ood_profile=prof)
    assert policy.ood_score({"c": "c9"}) == pytest.approx(0.6)
    assert policy.ood_score({"c": "c0"}) == 1.0


@pytest.mark.parametrize("missing", [{}, {"amount": None}, {"amount": float("nan")}])
def test_missing_feature_is_out_of_distribution(
    train: DatasetProfile, missing: dict[str, object]
) -> None:
    inputs = {k: v for k, v in ok_inputs().items() if k != "amount"} | missing
    verdict = AbstentionPolicy(ood_profile=train).judge(inputs, None)
    assert verdict.abstain
    assert verdict.ood_score == 0.0
    assert verdict.reasons == (
        "out of distribution: feature 'amount' is missing and was never missing in training",
    )


def test_missing_where_training_had_missing_values_scores_the_missing_rate(
    train: DatasetProfile,
) -> None:
    policy = AbstentionPolicy(ood_profile=train)
    score, why = policy.ood_scores({**ok_inputs(), "income": None})["income"]
    assert score == pytest.approx(0.1)
    assert "0.1 of training rows were" in why
    assert not policy.judge({**ok_inputs(), "income": None}, None).abstain


def test_non_numbers_for_numeric_features_score_zero(train: DatasetProfile) -> None:
    policy = AbstentionPolicy(ood_profile=train)
    for bad in ("100", True, [1], float("inf")):
        assert policy.ood_scores({"amount": bad})["amount"][0] == 0.0


def test_datetime_features_accept_datetimes_and_iso_strings() -> None:
    stamps = pa.array([1_700_000_000 + 60 * i for i in range(100)], pa.timestamp("s"))
    policy = AbstentionPolicy(ood_profile=profile(pa.table({"t": stamps})))
    mid = datetime.fromtimestamp(1_700_000_000 + 60 * 50, UTC)
    assert policy.ood_score({"t": mid}) == pytest.approx(1.0)
    assert policy.ood_score({"t": mid.replace(tzinfo=None).isoformat()}) == pytest.approx(1.0)
    assert policy.ood_score({"t": "2001-01-01"}) == 0.0
    assert policy.ood_score({"t": "not a date"}) == 0.0


def test_default_threshold_is_bonferroni(train: DatasetProfile) -> None:
    policy = AbstentionPolicy(ood_profile=train)
    assert policy.ood_features == ("amount", "items", "plan", "flag", "income")
    assert policy.ood_threshold == pytest.approx(0.001 / 5)
    assert not policy.judge(ok_inputs(), None).abstain


def test_threshold_decides_tail_values(data: dict[str, np.ndarray], train: DatasetProfile) -> None:
    v = float(np.sort(data["amount"])[9])  # tail 2 * 10 / N = 0.01
    policy = AbstentionPolicy(ood_profile=train, ood_threshold=0.02)
    verdict = policy.judge({**ok_inputs(), "amount": v}, None)
    assert verdict.ood_score == pytest.approx(0.01)
    assert verdict.abstain
    assert "in the tail (p=0.01)" in verdict.reasons[0]
    assert (
        not AbstentionPolicy(ood_profile=train, ood_threshold=0.01)
        .judge({**ok_inputs(), "amount": v}, None)
        .abstain
    )


def test_unknown_ood_feature_is_an_error(train: DatasetProfile) -> None:
    with pytest.raises(DataError, match="no column 'nope'"):
        AbstentionPolicy(ood_profile=train, ood_features=["nope"])
    with pytest.raises(ConfigError, match="needs an ood_profile"):
        AbstentionPolicy(ood_features=["amount"])
    with pytest.raises(ConfigError, match="must be a DatasetProfile"):
        AbstentionPolicy(ood_profile={"amount": 1})  # type: ignore[arg-type]


def test_extra_inputs_are_ignored(train: DatasetProfile) -> None:
    policy = AbstentionPolicy(ood_profile=train)
    assert not policy.judge({**ok_inputs(), "request_id": "abc"}, None).abstain


# -- risk rules ------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("text", "name", "hits", "misses"),
    [
        ("amount > 10000", "amount > 10000", [10000.5, 1e6], [10000, 0, -5]),
        ("amount>=10000", "amount >= 10000", [10000, 10001], [9999.9]),
        ("  score < -1.5e-3 ", "score < -1.5e-3", [-1, -0.0016], [-0.0015, 0]),
        ("age <= 17", "age <= 17", [17, 3], [17.01]),
        ("n == 3", "n == 3", [3, 3.0], [4]),
        ("n != 3", "n != 3", [2, 4.5], [3]),
        ("user.score > .5", "user.score > .5", [0.6], [0.5]),
    ],
)
def test_rule_parsing(text: str, name: str, hits: list[float], misses: list[float]) -> None:
    rule = RiskRule.parse(text)
    column = name.split()[0]
    assert rule.name == name
    for v in hits:
        assert rule({column: v}), v
    for v in misses:
        assert not rule({column: v}), v
    # Missing, non-numeric and boolean values never match.
    assert not rule({})
    assert not rule({column: "20000"})
    assert not rule({column: True})
    assert not rule({column: None})


@pytest.mark.parametrize(
    "text",
    [
        "",
        "amount",
        "amount > ",
        "amount >> 5",
        "amount > ten",
        "amount > 5 and x < 3",
        "__import__('os').system('echo pwned') > 1",
        "amount > __import__('os')",
        "1 > amount",
        "amount > 5; import os",
    ],
)
def test_invalid_rules_are_refused_clearly(text: str) -> None:
    with pytest.raises(
        ConfigError, match=r"Cannot parse the risk rule .* Write 'column op number'"
    ):
        RiskRule.parse(text)


def test_rule_parsing_never_evaluates_code(monkeypatch: pytest.MonkeyPatch) -> None:
    import builtins

    def trap(*args: object, **kwargs: object) -> None:
        raise AssertionError("eval/exec must not be called")

    monkeypatch.setattr(builtins, "eval", trap)
    monkeypatch.setattr(builtins, "exec", trap)
    assert RiskRule.parse("amount > 10000")({"amount": 20000})
    with pytest.raises(ConfigError):
        RiskRule.parse("eval('1') > 0")
    with pytest.raises(ConfigError, match="must be a string"):
        RiskRule.parse(42)  # type: ignore[arg-type]


def test_risk_rules_in_the_policy() -> None:
    policy = AbstentionPolicy(
        risk_rules=["amount > 10000", RiskRule("vip", lambda x: x.get("tier") == "vip")]
    )
    assert policy.judge({"amount": 20000}, 0.99).reasons == ("risk rule matched: amount > 10000",)
    assert policy.judge({"amount": 1, "tier": "vip"}, 0.99).reasons == ("risk rule matched: vip",)
    assert not policy.judge({"amount": 1}, 0.99).abstain
    assert policy.describe()["risk_rules"] == ["amount > 10000", "vip"]


def test_a_broken_rule_fails_safe() -> None:
    policy = AbstentionPolicy(risk_rules=[RiskRule("boom", lambda x: x["absent"] > 1)])
    verdict = policy.judge({}, 0.99)
    assert verdict.abstain
    assert verdict.reasons == ("risk rule failed: boom (KeyError: 'absent')",)


def test_reasons_accumulate_in_order(train: DatasetProfile) -> None:
    policy = AbstentionPolicy(min_confidence=0.5, ood_profile=train, risk_rules=["amount > 150"])
    verdict = policy.judge({**ok_inputs(), "amount": 1e9, "plan": "gold"}, 0.1)
    assert [r.split(":")[0] for r in verdict.reasons] == [
        "confidence 0.1 < 0.5",
        "out of distribution",
        "out of distribution",
        "risk rule matched",
    ]
    assert verdict.to_dict()["abstain"] is True


# -- audit -----------------------------------------------------------------------------
@pytest.mark.parametrize("rate", [0.01, 0.05, 0.5])
def test_audit_rate_is_within_a_binomial_band(rate: float) -> None:
    policy = AbstentionPolicy(audit_rate=rate, seed=3)
    n = 100_000
    hits = sum(policy.audited(f"req_{i}") for i in range(n))
    sd = math.sqrt(n * rate * (1 - rate))
    assert abs(hits - n * rate) < 5 * sd


def test_audit_is_deterministic_and_seeded() -> None:
    ids = [f"req_{i}" for i in range(2000)]
    a = [AbstentionPolicy(audit_rate=0.2, seed=1).audited(i) for i in ids]
    b = [AbstentionPolicy(audit_rate=0.2, seed=1).audited(i) for i in ids]
    c = [AbstentionPolicy(audit_rate=0.2, seed=2).audited(i) for i in ids]
    assert a == b
    assert a != c
    # A lower rate audits a subset of what a higher rate audits (same seed).
    low = [AbstentionPolicy(audit_rate=0.05, seed=1).audited(i) for i in ids]
    assert all(h for lo_, h in zip(low, a, strict=True) if lo_)


def test_audit_is_independent_of_abstention() -> None:
    policy = AbstentionPolicy(min_confidence=0.5, audit_rate=0.3, seed=0)
    for i in range(200):
        rid = f"r{i}"
        sure = policy.judge({}, 0.9, request_id=rid)
        unsure = policy.judge({}, 0.1, request_id=rid)
        assert sure.audit == unsure.audit == policy.audited(rid)
        assert unsure.abstain and not sure.abstain
        assert sure.review == sure.audit


def test_audit_edges_and_no_id() -> None:
    assert not AbstentionPolicy(audit_rate=0.0).audited("x")
    assert AbstentionPolicy(audit_rate=1.0).audited("x")
    a = AbstentionPolicy(audit_rate=0.5, seed=9)
    b = AbstentionPolicy(audit_rate=0.5, seed=9)
    assert [a.audited() for _ in range(50)] == [b.audited() for _ in range(50)]


def test_describe_is_serialisable(train: DatasetProfile) -> None:
    import json

    d = AbstentionPolicy(min_confidence=0.5, ood_profile=train, audit_rate=0.01).describe()
    assert d["ood_profile"] == train.digest
    json.dumps(d)
