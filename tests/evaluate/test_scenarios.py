"""Scenario suites: slices, invariance and directional checks on every frame type, replays
against a real Service in process and over real HTTP (uvicorn on loopback), bad input."""

from __future__ import annotations

import asyncio
import doctest
import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import polars as pl
import pyarrow as pa
import pytest
from sklearn.linear_model import LinearRegression, LogisticRegression
from sklearn.metrics import f1_score, mean_absolute_error, precision_score, recall_score

import hindsight.evaluate.scenarios as scenarios_module
from hindsight.errors import ConfigError, DataError
from hindsight.evaluate.replay import Reply
from hindsight.evaluate.scenarios import Scenarios
from hindsight.serving import CallableBackend, CircuitBreaker, RulesBackend, Tier
from hindsight.serving.app import create_app
from hindsight.serving.service import Service
from live_server import free_port, live_server

FEATURES = ("amount", "user_age_days")
KINDS = ("pandas", "polars", "arrow", "dict")


def test_doctests() -> None:
    result = doctest.testmod(scenarios_module, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0


# -- data and models ----------------------------------------------------------------------


def _frame(n: int = 3000, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    amount = rng.lognormal(5.0, 1.3, n)
    age = rng.integers(0, 365, n)
    logit = -6.0 + 0.9 * np.log1p(amount) - 0.01 * age
    fraud = (rng.random(n) < 1.0 / (1.0 + np.exp(-logit))).astype(int)
    return pd.DataFrame({
        "amount": amount,
        "user_age_days": age,
        "name": rng.choice(["ann", "bob", "cy", "dee"], n),
        "country": rng.choice(["FR", "DE", "US"], n),
        "fraud": fraud,
    })  # fmt: skip


def _as(kind: str, df: pd.DataFrame) -> Any:
    if kind == "pandas":
        return df
    if kind == "polars":
        return pl.from_pandas(df)
    if kind == "arrow":
        return pa.Table.from_pandas(df, preserve_index=False)
    return {c: df[c].to_numpy() for c in df.columns}


def _col(frame: Any, name: str) -> np.ndarray:
    """One column of any supported frame (pandas, polars, pyarrow, dict) as NumPy."""
    column = frame[name]
    return np.asarray(column.to_numpy() if hasattr(column, "to_numpy") else column)


def _rows(frame: Any) -> int:
    return len(_col(frame, "amount"))


def _x(frame: Any) -> np.ndarray:
    return np.column_stack([np.log1p(_col(frame, "amount")), _col(frame, "user_age_days")])


@pytest.fixture(scope="module")
def df() -> pd.DataFrame:
    return _frame()


@pytest.fixture(scope="module")
def lr(df: pd.DataFrame) -> LogisticRegression:
    return LogisticRegression().fit(_x(df), df["fraud"].to_numpy())


class Recorder:
    """A model that remembers what it was called with: the frame's type and row count."""

    def __init__(self, fn: Callable[[Any], Any]) -> None:
        self.fn = fn
        self.calls: list[tuple[type, int]] = []

    def __call__(self, frame: Any) -> Any:
        self.calls.append((type(frame), _rows(frame)))
        return self.fn(frame)


def _scorer(lr: LogisticRegression) -> Callable[[Any], np.ndarray]:
    return lambda frame: lr.predict_proba(_x(frame))[:, 1]


def _sneaky(lr: LogisticRegression) -> Callable[[Any], np.ndarray]:
    """Reads the name behind everyone's back: bob is riskier."""
    return lambda frame: np.clip(
        lr.predict_proba(_x(frame))[:, 1] + 0.3 * (_col(frame, "name") == "bob"), 0.0, 1.0
    )


# -- the suite on every frame type --------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
def test_every_frame_type_is_scored_in_its_own_type_in_batches(
    kind: str, df: pd.DataFrame, lr: LogisticRegression
) -> None:
    data = _as(kind, df)
    model = Recorder(_scorer(lr))
    proba = lr.predict_proba(_x(df))[:, 1]
    new = (df["user_age_days"] < 30).to_numpy()
    recall = recall_score(df["fraud"][new], proba[new] >= 0.5)
    suite = (
        Scenarios("fraud-v3", model=model)
        .slice("new users are caught", "user_age_days < 30", metric="recall", at_least=recall)
        .invariance("the name does not matter", change={"name": "zed"})
        .invariance("nor its order", change={"name": "shuffle", "country": lambda c: c[::-1]})
        .directional("more money, more risk", {"amount": lambda a: a * 2}, expect="increase")
    )
    report = suite.run(data, y_true="fraud", threshold=0.5, seed=3)
    assert report.passed, report.summary()
    assert report.summary() == "4 of 4 scenarios passed"
    # The unchanged data once, then one call per perturbation: never a call per row.
    assert model.calls == [(type(data), len(df))] * 4
    first = report.results[0]
    assert (first.kind, first.metric, first.n, first.op) == (
        "slice",
        "recall",
        int(new.sum()),
        ">=",
    )
    assert first.value == pytest.approx(recall)
    assert [r.count for r in report.results[1:]] == [0, 0, 0]
    json.dumps(report.to_dict(), allow_nan=False)


@pytest.mark.parametrize("kind", KINDS)
def test_a_model_that_reads_the_name_fails_invariance(
    kind: str, df: pd.DataFrame, lr: LogisticRegression
) -> None:
    sneaky = _sneaky(lr)
    report = (
        Scenarios("fraud", model=sneaky)
        .invariance("name (decision)", change={"name": "ann"})
        .invariance("name (score)", change={"name": "ann"}, on="score")
        .invariance("name (lenient)", change={"name": "ann"}, on="score", max_changed=0.3)
        .run(_as(kind, df))
    )
    changed = df.assign(name="ann")
    before, after = sneaky(df), sneaky(changed)
    flipped = int(((before >= 0.5) != (after >= 0.5)).sum())
    moved = int((np.abs(after - before) > 1e-9).sum())
    assert 0 < flipped < moved < 0.3 * len(df)
    decision, score, lenient = report.results
    assert (decision.passed, decision.count, decision.value) == (False, flipped, flipped / len(df))
    assert (score.passed, score.count) == (False, moved)
    assert lenient.passed and lenient.count == moved
    assert len(score.examples) == 5
    for ex in score.examples:
        assert df["name"].iloc[ex.row] == "bob"
        assert ex.changes == {"name": ("bob", "ann")}
        assert ex.before == pytest.approx(before[ex.row]) and ex.after == pytest.approx(
            after[ex.row]
        )
    assert not report.passed
    assert report.summary().startswith("1 of 3 scenarios passed; failed: name (decision) (")
    assert f"{flipped} of {len(df)} rows changed" in decision.reason


def test_paths_and_lazy_frames_are_read_once_and_scored_as_they_load(
    tmp_path: Path, df: pd.DataFrame, lr: LogisticRegression
) -> None:
    path = tmp_path / "data.parquet"
    df.to_parquet(path)
    model = Recorder(_sneaky(lr))
    suite = Scenarios("s", model=model).invariance("name", change={"name": "ann"})
    from_path = suite.run(path).results[0]
    from_lazy = suite.run(pl.from_pandas(df).lazy()).results[0]
    assert [t for t, _ in model.calls] == [pa.Table, pa.Table, pl.DataFrame, pl.DataFrame]
    assert not from_path.passed and from_path.count == from_lazy.count > 0


@pytest.mark.parametrize("kind", KINDS)
def test_directional_monotone_passes_and_a_wiggly_model_fails(kind: str, df: pd.DataFrame) -> None:
    def monotone(frame: Any) -> np.ndarray:
        return 1.0 - np.exp(-_col(frame, "amount") / 500.0)

    def wiggly(frame: Any) -> np.ndarray:
        return 0.5 + 0.5 * np.sin(_col(frame, "amount") / 50.0)

    double = {"amount": lambda a: a * 2}
    data = _as(kind, df)
    assert (
        Scenarios("m", model=monotone)
        .directional("up", double, expect="not_decrease")
        .run(data)
        .passed
    )
    down = Scenarios("m", model=monotone).directional("down", double, expect="not_increase")
    assert down.run(data).results[0].count == int(
        (np.exp(-df["amount"] / 500.0) > np.exp(-df["amount"] / 250.0) + 1e-9).sum()
    )
    report = (
        Scenarios("w", model=wiggly)
        .directional("strict", double, expect="not_decrease")
        .directional("a count", double, expect="not_decrease", max_violations=10_000)
        .directional("a share", double, expect="not_decrease", max_violations=0.2)
        .run(data)
    )
    a = df["amount"].to_numpy()
    wrong = int((np.sin(2 * a / 50.0) - np.sin(a / 50.0) < -2e-9).sum())
    strict, count, share = report.results
    assert 0.3 * len(df) < wrong < 0.7 * len(df)
    assert (strict.passed, strict.count, strict.value) == (False, wrong, float(wrong))
    assert count.passed and count.limit == 10_000
    assert not share.passed and share.value == pytest.approx(wrong / len(df))
    assert len(strict.examples) == 5 and all(ex.after < ex.before for ex in strict.examples)


def test_increase_means_strictly_up_and_ignoring_the_column_fails() -> None:
    data = {"amount": np.array([1.0, 2.0, 3.0]), "other": np.array([1, 2, 3])}
    flat = Scenarios("f", model=lambda f: np.full(3, 0.4)).directional(
        "up", {"amount": lambda a: a + 1}, expect="increase"
    )
    result = flat.run(data).results[0]
    assert (result.passed, result.count) == (False, 3)
    steps = Scenarios("s", model=lambda f: np.asarray(f["amount"]) / 10).directional(
        "up", {"amount": lambda a: a + 1}, expect="increase"
    )
    assert steps.run(data).passed
    dec = Scenarios(
        "d",
        model=lambda f: -np.asarray(f["amount"]),
    ).directional("down", {"amount": lambda a: a + 1}, expect="decrease", on="score")
    assert dec.run(data).passed


def test_shuffle_follows_the_seed(df: pd.DataFrame, lr: LogisticRegression) -> None:
    suite = Scenarios("s", model=_sneaky(lr)).invariance(
        "shuffled names", change={"name": "shuffle"}, on="score"
    )
    a, b, c = (suite.run(df, seed=s).results[0] for s in (1, 1, 2))
    assert a.count == b.count and a.examples == b.examples
    assert a.count > 0 and (a.count, a.examples) != (c.count, c.examples)


def test_a_change_that_breaks_the_model_fails_that_scenario(df: pd.DataFrame) -> None:
    def strict(frame: pd.DataFrame) -> np.ndarray:
        if frame["amount"].isna().any():
            raise ValueError("amount is missing")
        return np.zeros(len(frame))

    report = (
        Scenarios("s", model=strict)
        .invariance("missing amounts", change={"amount": np.nan})
        .invariance("fine", change={"name": "x"})
        .run(df)
    )
    broken, fine = report.results
    assert not broken.passed and fine.passed
    assert broken.reason == "the model raised ValueError on the changed data: amount is missing"


# -- slices -------------------------------------------------------------------------------


def test_slice_values_match_scikit_learn(df: pd.DataFrame, lr: LogisticRegression) -> None:
    proba = lr.predict_proba(_x(df))[:, 1]
    y = df["fraud"].to_numpy()
    mask = ((df["amount"] > 300) & (df["country"] == "FR")).to_numpy()
    where = "amount > 300 and country == 'FR'"
    precision = precision_score(y[mask], proba[mask] >= 0.3)
    recall = recall_score(y[mask], proba[mask] >= 0.3)
    report = (
        Scenarios("s", model=_scorer(lr))
        .slice("precise", where, metric="precision", at_least=precision)
        .slice("too few caught", where, metric="recall", at_least=recall + 0.05)
        .slice("false alarms", where, metric="fpr", at_most=1.0)
        .slice("ranked", where, metric="auc", at_least=0.5)
        .run(pl.from_pandas(df), y_true=y, threshold=0.3)
    )
    precise, few, fpr, auc = report.results
    assert precise.passed and precise.value == pytest.approx(precision) and precise.n == mask.sum()
    assert not few.passed and few.value == pytest.approx(recall)
    assert few.reason == f"recall {recall:.3g} < {recall + 0.05:.3g} on {int(mask.sum())} rows"
    assert fpr.passed and fpr.op == "<="
    assert auc.passed and auc.value is not None and auc.value > 0.5
    assert report.summary() == f"3 of 4 scenarios passed; failed: too few caught ({few.reason})"


def test_an_empty_slice_and_an_undefined_metric_fail() -> None:
    data = pd.DataFrame({"age": [1, 2, 30, 40], "y": [0, 0, 1, 1]})
    report = (
        Scenarios("s", model=lambda f: (f["age"] > 10).astype(int).to_numpy())
        .slice("nobody", "age < 0", metric="recall", at_least=0.5)
        .slice("no positives", "age < 10", metric="recall", at_least=0.5)
        .slice("caught", "age >= 10", metric="recall", at_least=1.0)
        .run(data, y_true="y")
    )
    nobody, none, caught = report.results
    assert (nobody.passed, nobody.n, nobody.reason) == (False, 0, "no rows match 'age < 0'")
    assert (none.passed, none.n, none.reason) == (False, 2, "recall undefined on 2 rows")
    assert caught.passed and caught.value == 1.0


def test_regression_and_multiclass_slices() -> None:
    rng = np.random.default_rng(4)
    x = rng.normal(size=500)
    target = 3 * x + rng.normal(size=500)
    reg = LinearRegression().fit(x[:, None], target)
    data = {"x": x, "target": target}
    pred = reg.predict(x[:, None])
    mae = mean_absolute_error(target[x > 0], pred[x > 0])
    report = (
        Scenarios("r", model=lambda f: reg.predict(np.asarray(f["x"])[:, None]))
        .slice("small errors", "x > 0", metric="mae", at_most=mae + 1e-9)
        .run(data, y_true="target")
    )
    assert report.passed and report.results[0].value == pytest.approx(mae)

    label = np.array(["a", "b", "c"])[np.digitize(x, [-0.5, 0.5])]
    guess = np.where(rng.random(500) < 0.8, label, "a")
    mdata = pd.DataFrame({"x": x, "guess": guess})
    macro = f1_score(label[x < 0], guess[x < 0], average="macro")
    res = (
        Scenarios("m", model=lambda f: f["guess"].to_numpy())
        .slice("negatives", "x < 0", metric="macro_f1", at_least=macro + 0.01)
        .slice("accuracy", "x < 0", metric="accuracy", at_least=0.0)
        .run(mdata, y_true=label)
    )
    assert res.results[0].value == pytest.approx(macro) and not res.results[0].passed
    assert res.results[1].passed
    with pytest.raises(ConfigError, match="binary metric"):
        Scenarios("m", model=lambda f: f["guess"].to_numpy()).slice(
            "r", "x < 0", metric="recall", at_least=0.5
        ).run(mdata, y_true=label)


def test_probability_metrics_need_probabilities() -> None:
    data = {"a": np.array([0.0, 1.0, 2.0, 3.0])}
    suite = Scenarios("s", model=lambda f: (np.asarray(f["a"]) > 1).astype(int)).slice(
        "ranked", "a >= 0", metric="auc", at_least=0.5
    )
    with pytest.raises(ConfigError, match="needs probabilities"):
        suite.run(data, y_true=[0, 0, 1, 1])


# -- bad definitions and bad data ---------------------------------------------------------


def test_definitions_are_validated_when_added() -> None:
    suite = Scenarios("s", model=lambda f: np.zeros(1))
    with pytest.raises(ConfigError, match="recall") as err:
        suite.slice("x", "a > 1", metric="recal", at_least=0.5)
    assert "'metric' parameter" in str(err.value) and "mcc" in str(err.value)
    with pytest.raises(ConfigError, match="exactly one of at_least= and at_most="):
        suite.slice("x", "a > 1", metric="recall", at_least=0.5, at_most=0.9)
    with pytest.raises(ConfigError, match="exactly one"):
        suite.slice("x", "a > 1", metric="recall")
    with pytest.raises(ConfigError, match="mae"):
        suite.slice("x", "a > 1", metric="recall", at_least=0.5, task="regression")
    with pytest.raises(ConfigError, match=r"'expect' parameter .* 'not_decrease'"):
        suite.directional("x", {"a": 1}, expect="up")
    with pytest.raises(ConfigError, match="'on' parameter"):
        suite.invariance("x", {"a": 1}, on="probability")
    with pytest.raises(ConfigError, match="'change' parameter"):
        suite.invariance("x", {})
    with pytest.raises(ConfigError, match="share in"):
        suite.invariance("x", {"a": 1}, max_changed=2.0)
    with pytest.raises(ConfigError, match="'tolerance'"):
        suite.invariance("x", {"a": 1}, tolerance=-1.0)
    with pytest.raises(ConfigError):
        suite.slice("x", "a >>> 1", metric="recall", at_least=0.5)
    suite.invariance("x", {"a": 1})
    with pytest.raises(ConfigError, match="already has a scenario named 'x'"):
        suite.invariance("x", {"b": 1})
    with pytest.raises(ConfigError, match="needs a model"):
        Scenarios("no model").invariance("x", {"a": 1})
    with pytest.raises(ConfigError, match="callable"):
        Scenarios("s", model="not a model")  # type: ignore[arg-type]
    assert len(suite) == 1 and suite.names == ["x"]


def test_bad_data_is_a_data_error_at_run(df: pd.DataFrame, lr: LogisticRegression) -> None:
    model = _scorer(lr)
    missing = Scenarios("s", model=model).invariance("x", change={"nickname": "zed"})
    with pytest.raises(DataError, match="'nickname', which the data does not have"):
        missing.run(df)
    slices = Scenarios("s", model=model).slice("x", "amount > 1", metric="recall", at_least=0.1)
    with pytest.raises(ConfigError, match="y_true"):
        slices.run(df)
    with pytest.raises(DataError, match="one label per row"):
        slices.run(df, y_true=[0, 1])
    with pytest.raises(ConfigError, match="pass data"):
        slices.run(None, y_true=[0, 1])
    short = Scenarios("s", model=lambda f: np.zeros(3)).invariance("x", {"name": "a"})
    with pytest.raises(DataError, match="one score or decision per row"):
        short.run(df)
    bad_change = Scenarios("s", model=model).invariance("x", {"amount": lambda a: a[:5]})
    with pytest.raises(DataError, match="one value per row"):
        bad_change.run(df)


# -- replay -------------------------------------------------------------------------------


def _service(**breaker: Any) -> Service:
    """A primary that errors on negative amounts, and rules that answer when it does."""

    def primary(inputs: Any) -> tuple[int, float]:
        if inputs["amount"] < 0:
            raise RuntimeError("negative amount")
        return int(inputs["amount"] > 100), 0.9

    tier = Tier(CallableBackend(primary, name="primary", version="3"),
                breaker=CircuitBreaker(**breaker) if breaker else CircuitBreaker())  # fmt: skip
    rules = RulesBackend([(lambda x: x["amount"] > 1000, 1, 1.0)], 0)
    return Service("checkout", [tier, rules], deadline_ms=2000)


CHECKOUT = [
    {"name": "small", "inputs": {"amount": 10}, "key": "u1", "expect": 0},
    {"name": "big", "inputs": {"amount": 500}, "key": "u1",
     "expect": {"output": 1, "tier": "primary", "abstained": False, "fell_back": False}},
    {"name": "refund", "inputs": {"amount": -5}, "key": "u2",
     "expect": {"output": 0, "tier": "primary"}},
    {"name": "checked", "inputs": {"amount": 2000}, "key": "u3",
     "expect": lambda r: r.tier == "primary" and r.confidence == pytest.approx(0.9)},
]  # fmt: skip


def _check_checkout(result: Any) -> None:
    assert not result.passed and result.kind == "replay"
    assert (result.n, result.count) == (4, 1)
    first = result.steps[0]  # failures first
    assert (first.index, first.name, first.key, first.passed) == (3, "refund", "u2", False)
    assert first.reason == "tier was 'rules', expected 'primary'"
    assert first.response["tier"] == "rules" and first.response["fell_back"] is True
    assert [s.index for s in result.steps[1:]] == [1, 2, 4]
    assert all(s.passed for s in result.steps[1:])
    assert result.reason == "1 of 4 steps failed; first: step 3 (refund): " + first.reason
    assert result.steps[-1].expected.startswith("<")


def test_replay_against_a_service_in_process() -> None:
    with _service() as svc:
        report = Scenarios("checkout").replay("checkout flow", CHECKOUT, target=svc).run()
    _check_checkout(report.results[0])
    assert report.summary().startswith("0 of 1 scenarios passed; failed: checkout flow (1 of 4")
    json.dumps(report.to_dict(), allow_nan=False)


def test_replay_keeps_the_order_an_open_breaker_depends_on() -> None:
    good = {"inputs": {"amount": 500}, "expect": {"tier": "primary"}}
    bad = {"inputs": {"amount": -1}, "expect": {"tier": "rules"}}
    breaker = {"window": 2, "min_calls": 2, "error_rate": 0.5, "open_for_s": 600}
    with _service(**breaker) as svc:
        first_good = Scenarios("s").replay("good first", [good, bad, bad], target=svc).run()
    with _service(**breaker) as svc:
        last_good = Scenarios("s").replay("good last", [bad, bad, good], target=svc).run()
    assert first_good.passed
    result = last_good.results[0]
    assert not result.passed and result.steps[0].index == 3
    assert result.steps[0].reason == "tier was 'rules', expected 'primary'"


def test_replay_a_callable_from_a_jsonl_file_in_order(tmp_path: Path) -> None:
    seen: list[int] = []

    def counter(inputs: dict[str, Any]) -> dict[str, Any]:
        seen.append(inputs["i"])
        return {"calls": len(seen), "score": 0.1 * len(seen)}

    path = tmp_path / "session.jsonl"
    lines = [{"inputs": {"i": i}, "expect": {"output": {"calls": i, "score": 0.1 * i + 1e-12}}}
             for i in range(1, 6)]  # fmt: skip
    path.write_text("\n".join(json.dumps(x) for x in lines) + "\n\n", encoding="utf-8")
    suite = Scenarios("s").replay("in order", path, target=counter)
    assert suite.run().passed and seen == [1, 2, 3, 4, 5]
    tight = Scenarios("s").replay("tight", str(path), target=counter, tolerance=0.0)
    assert not tight.run().passed  # the 1e-12 is outside a zero tolerance
    calls = Scenarios("s").replay("no expect", [{"inputs": {"i": 0}}], target=counter).run()
    assert calls.passed and calls.results[0].steps[0].reason == "answered"


def test_replay_step_errors_fail_their_step_and_the_rest_go_on() -> None:
    def flaky(inputs: dict[str, Any]) -> int:
        if inputs["x"] == 2:
            raise KeyError("boom")
        return int(inputs["x"])

    steps = [{"inputs": {"x": i}, "expect": i} for i in (1, 2, 3)]
    steps.append({"inputs": {"x": 4}, "expect": {"tier": "primary"}})
    steps.append({"inputs": {"x": 5}, "expect": lambda r: 1 / 0})
    result = Scenarios("s").replay("r", steps, target=flaky).run().results[0]
    by_index = {s.index: s for s in result.steps}
    assert [s.index for s in result.steps] == [2, 4, 5, 1, 3]
    assert by_index[2].error == "KeyError: 'boom'" and by_index[2].response is None
    assert by_index[4].reason == "the target does not report 'tier'"
    assert by_index[5].reason.startswith("the expect callable raised ZeroDivisionError")
    assert by_index[3].passed and by_index[3].response == {"output": 3}


def test_replay_from_inside_a_running_event_loop() -> None:
    async def main() -> bool:
        with _service() as svc:
            return Scenarios("s").replay("r", CHECKOUT[:2], target=svc).run().passed

    assert asyncio.run(main())


def test_replay_definitions_are_validated(tmp_path: Path) -> None:
    suite = Scenarios("s")
    with pytest.raises(ConfigError, match="'target'"):
        suite.replay("r", [{"inputs": {}}], target=42)
    with pytest.raises(ConfigError, match="http:// or https://"):
        suite.replay("r", [{"inputs": {}}], target="localhost:8000")
    with pytest.raises(ConfigError, match="needs 'inputs'"):
        suite.replay("r", [{"expect": 1}], target=len)
    with pytest.raises(ConfigError, match=r"unknown keys \['expected'\]"):
        suite.replay("r", [{"inputs": {}, "expected": 1}], target=len)
    with pytest.raises(ConfigError, match="not response fields"):
        suite.replay("r", [{"inputs": {}, "expect": {"label": 1}}], target=len)
    with pytest.raises(ConfigError, match="no requests"):
        suite.replay("r", [], target=len)
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"inputs": {}}\nnot json\n', encoding="utf-8")
    with pytest.raises(DataError, match="Line 2"):
        suite.replay("r", bad, target=len)
    with pytest.raises(DataError, match="does not exist"):
        suite.replay("r", tmp_path / "missing.jsonl", target=len)
    assert len(suite) == 0
    # An object with a Reply-shaped view: the callable expectation sees attributes.
    assert Reply.of({"output": 1, "tier": "t"}).tier == "t"


# -- replay over real HTTP ----------------------------------------------------------------

TOKEN = "scenario-token"


@contextmanager
def serving(service: Service) -> Iterator[str]:
    """Serve ``service`` with uvicorn on loopback in a thread; yield its base URL."""
    with live_server(create_app(service, token=TOKEN)) as url:
        yield url + "/"


def test_replay_over_http_against_a_live_server() -> None:
    http_steps = [{k: v for k, v in s.items() if not callable(v)} for s in CHECKOUT[:3]]
    expect = {"tier": "primary", "confidence": 0.9, "arm": "baseline"}
    http_steps.append({"name": "checked", "inputs": {"amount": 2000}, "expect": expect})
    with serving(_service()) as url:
        report = (
            Scenarios("checkout").replay("checkout flow", http_steps, target=url, token=TOKEN).run()
        )
    result = report.results[0]
    assert (result.n, result.count) == (4, 1)
    first = result.steps[0]
    assert (first.index, first.reason) == (3, "tier was 'rules', expected 'primary'")
    assert (
        first.response["id"].startswith("pred")
        and first.response["attempts"][0]["tier"] == "primary"
    )
    assert all(s.passed for s in result.steps[1:])


def test_replay_over_http_to_nothing_fails_every_step() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    steps = [{"inputs": {"amount": 1}}, {"inputs": {"amount": 2}}]
    result = Scenarios("s").replay("down", steps, target=url, timeout=2).run().results[0]
    assert (result.passed, result.count) == (False, 2)
    assert all(s.error and s.error.startswith("ConnectError") for s in result.steps)
