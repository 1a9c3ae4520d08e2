"""Slices: the predicate language against NumPy and pandas, and find_slices against SciPy,
planted weak segments and null data."""

from __future__ import annotations

import datetime as dt
import doctest
import json
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from scipy import stats

from hindsight.errors import ConfigError, DataError
from hindsight.evaluate import _predicates, slices
from hindsight.evaluate.slices import (
    FoundSlice,
    Slice,
    SliceReport,
    find_slices,
    parse_slice,
    slice_mask,
)

# ----------------------------------------------------------------------------- data


def _frame(n: int = 400, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    score = rng.normal(0, 1, n)
    score[rng.random(n) < 0.1] = np.nan
    return pd.DataFrame({
        "age": rng.integers(15, 80, n),
        "amount": np.round(rng.lognormal(3, 1, n), 2),
        "country": rng.choice(["FR", "BR", "US", "DE"], n),
        "is_new": rng.random(n) < 0.3,
        "score": score,
        "unit price": rng.uniform(0, 10, n),
        "a.b": rng.integers(0, 3, n),
    })


def _planted(n: int, seed: int, planted: bool = True) -> tuple[pa.Table, np.ndarray, dict[str, np.ndarray]]:
    """Eight columns of mixed types, a 10% base error rate and (optionally) weak segments."""
    rng = np.random.default_rng(seed)
    age = (18 + rng.gamma(2.0, 9.0, n)).astype(np.int64)
    country = rng.choice(["US", "FR", "DE", "BR", "IN", "GB", "ES", "IT", "MX", "JP"], n,
                         p=[0.3, 0.12, 0.12, 0.06, 0.1, 0.08, 0.06, 0.06, 0.05, 0.05])
    channel = rng.choice(["web", "app", "store"], n, p=[0.4, 0.4, 0.2])
    plan = rng.choice(["free", "basic", "pro"], n, p=[0.3, 0.5, 0.2])
    is_new = rng.random(n) < 0.25
    amount = np.round(rng.lognormal(4, 1, n), 2)
    tenure = rng.integers(0, 120, n)
    score = rng.normal(0, 1, n)
    score[rng.random(n) < 0.05] = np.nan
    segments = {
        "country == 'BR'": country == "BR",
        "age < 25 and channel == 'web'": (age < 25) & (channel == "web"),
        "plan == 'free' and is_new == True": (plan == "free") & is_new,
    }
    rate = np.full(n, 0.10)
    if planted:
        rate[segments["country == 'BR'"]] = 0.30
        rate[segments["age < 25 and channel == 'web'"]] = 0.35
        rate[segments["plan == 'free' and is_new == True"]] = 0.30
    error = (rng.random(n) < rate).astype(np.int8)
    table = pa.table({
        "age": age, "country": country, "channel": channel, "plan": plan, "is_new": is_new,
        "amount": amount, "tenure": tenure, "score": pa.array(score, from_pandas=True),
    })
    return table, error, segments if planted else {}


def _jaccard(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.count_nonzero(a & b) / max(int(np.count_nonzero(a | b)), 1))


def _overlaps(a: np.ndarray, b: np.ndarray) -> bool:
    """At least half of the smaller of the two lies in the other (the overlap coefficient)."""
    return bool(np.count_nonzero(a & b) >= 0.5 * min(np.count_nonzero(a), np.count_nonzero(b)))


# ----------------------------------------------------------------------------- predicates


def _nn(s: pd.Series) -> np.ndarray:
    return s.notna().to_numpy()


CASES: list[tuple[str, Any]] = [
    ("age < 30", lambda d: d.age.to_numpy() < 30),
    ("age <= 30", lambda d: d.age.to_numpy() <= 30),
    ("age > 30", lambda d: d.age.to_numpy() > 30),
    ("age >= 30.5", lambda d: d.age.to_numpy() >= 30.5),
    ("age == 40", lambda d: d.age.to_numpy() == 40),
    ("age != 40", lambda d: d.age.to_numpy() != 40),
    ("30 > age", lambda d: d.age.to_numpy() < 30),
    ("20 <= age < 30", lambda d: (d.age.to_numpy() >= 20) & (d.age.to_numpy() < 30)),
    ("20 < age <= 30 < amount", lambda d: (d.age.to_numpy() > 20) & (d.age.to_numpy() <= 30)
     & (d.amount.to_numpy() > 30)),
    ("country == 'BR'", lambda d: d.country.to_numpy() == "BR"),
    ('country != "BR"', lambda d: d.country.to_numpy() != "BR"),
    ("country in ['BR', 'FR']", lambda d: d.country.isin(["BR", "FR"]).to_numpy()),
    ("country not in ('BR', 'FR')", lambda d: ~d.country.isin(["BR", "FR"]).to_numpy()),
    ("age in [20, 21, 22.0]", lambda d: d.age.isin([20, 21, 22]).to_numpy()),
    ("is_new", lambda d: d.is_new.to_numpy()),
    ("is_new == False", lambda d: ~d.is_new.to_numpy()),
    ("not is_new and age > 50", lambda d: ~d.is_new.to_numpy() & (d.age.to_numpy() > 50)),
    ("age < 20 or country == 'US' and is_new", lambda d: (d.age.to_numpy() < 20)
     | ((d.country.to_numpy() == "US") & d.is_new.to_numpy())),
    ("(age < 20 | country == 'US') & is_new", lambda d: ((d.age.to_numpy() < 20)
     | (d.country.to_numpy() == "US")) & d.is_new.to_numpy()),
    ("~(age < 20) & amount > 10", lambda d: ~(d.age.to_numpy() < 20) & (d.amount.to_numpy() > 10)),
    ("`unit price` > 5", lambda d: d["unit price"].to_numpy() > 5),
    ("`a.b` == 1 and `age` > 30", lambda d: (d["a.b"].to_numpy() == 1) & (d.age.to_numpy() > 30)),
    ("score > -5e-1", lambda d: d.score.to_numpy() > -0.5),
    # Nulls: a comparison with a missing value is false; `not` flips that.
    ("score == None", lambda d: d.score.isna().to_numpy()),
    ("score != None", lambda d: _nn(d.score)),
    ("score is None", lambda d: d.score.isna().to_numpy()),
    ("score is not None", lambda d: _nn(d.score)),
    ("score > 0", lambda d: d.score.to_numpy() > 0),
    ("score != 0.5", lambda d: _nn(d.score) & (d.score.to_numpy() != 0.5)),
    ("not score > 0", lambda d: ~(d.score.to_numpy() > 0)),
    ("score not in [0.5]", lambda d: _nn(d.score)),
    ("score in [0.5, None]", lambda d: d.score.isna().to_numpy()),
]


@pytest.mark.parametrize(("expr", "reference"), CASES, ids=[c[0] for c in CASES])
def test_masks_match_numpy(expr: str, reference: Any) -> None:
    frame = _frame()
    want = np.asarray(reference(frame), dtype=bool)
    assert want.any() and not want.all(), "the case must select some rows, not all"
    for data in (frame, pa.Table.from_pandas(frame), {c: frame[c].to_numpy() for c in frame}):
        got = slice_mask(data, expr)
        assert got.dtype == bool and got.shape == (len(frame),)
        np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("expr", [
    "age < 30 and country == 'BR'", "age >= 40 | is_new", "~is_new & `unit price` < 2",
    "20 <= age < 35", "country in ['US', 'DE'] and amount > 20",
])
def test_masks_match_a_pandas_query(expr: str) -> None:
    frame = _frame(seed=3).drop(columns=["score"])  # pandas' != would keep NaN rows
    want = frame.eval(expr.replace("~is_new", "(~is_new)")).to_numpy()
    np.testing.assert_array_equal(slice_mask(frame, expr), want)


@pytest.mark.parametrize(("expr", "normal", "columns"), [
    ("age<30", "age < 30", ("age",)),
    ("7 <= age<30 & country in ('FR','BR')", "7 <= age < 30 and country in ('FR', 'BR')",
     ("age", "country")),
    ("a | b & c", "a or (b and c)", ("a", "b", "c")),
    ("~(x == None)", "not x == None", ("x",)),
    ("`unit price` >= -2.50", "`unit price` >= -2.5", ("unit price",)),
    ("`age` == 1", "age == 1", ("age",)),
    ("`class` == 'x' and `it``s` > 1", "`class` == 'x' and `it``s` > 1", ("class", "it`s")),
    ('name == "O\'Neil"', 'name == "O\'Neil"', ("name",)),
    ("`x&y` == 'a|b'", "`x&y` == 'a|b'", ("x&y",)),
])
def test_the_text_is_normalised(expr: str, normal: str, columns: tuple[str, ...]) -> None:
    s = parse_slice(expr)
    assert (s.expr, s.columns) == (normal, columns)
    assert parse_slice(s.expr) == s  # the normal form reads back as itself
    assert s.to_dict() == {"expr": normal, "columns": list(columns)}


def test_quoted_names_and_odd_values_read_back() -> None:
    table = pa.table({"class": [1, 2, 3], "it`s": ["a", "b'c", 'd"e'], "x&y": [True, False, True]})
    assert slice_mask(table, "`class` >= 2 and `it``s` == \"b'c\"").tolist() == [False, True, False]
    assert slice_mask(table, "`it``s` == 'd\"e' | `x&y` == False").tolist() == [False, True, True]
    for name in table.column_names:
        assert parse_slice(f"{_predicates.quote_name(name)} == None").columns == (name,)


def test_dictionary_decimal_dates_and_timestamps() -> None:
    import decimal

    table = pa.table({
        "c": pa.array(["a", "b", None, "a"]).dictionary_encode(),
        "d": pa.array([decimal.Decimal("1.5"), decimal.Decimal("2.5"), None, decimal.Decimal("0")]),
        "day": pa.array([dt.date(2024, 1, 1), dt.date(2024, 2, 1), None, dt.date(2023, 5, 1)]),
        "ts": pa.array([dt.datetime(2024, 1, 1, 12), None, dt.datetime(2024, 3, 1),
                        dt.datetime(2023, 1, 1)], pa.timestamp("us", tz="UTC")),
    })
    assert slice_mask(table, "c == 'a'").tolist() == [True, False, False, True]
    assert slice_mask(table, "c == None").tolist() == [False, False, True, False]
    assert slice_mask(table, "d > 1").tolist() == [True, True, False, False]
    assert slice_mask(table, "day >= '2024-01-01'").tolist() == [True, True, False, False]
    assert slice_mask(table, "ts < '2024-01-01T13:00:00'").tolist() == [True, False, False, True]
    with pytest.raises(DataError, match="ISO 8601"):
        slice_mask(table, "day > 'yesterday'")
    with pytest.raises(DataError, match=r"column 'day' \(date32\[day\]\) with a number"):
        slice_mask(table, "day > 3")


def test_a_slice_is_a_frozen_value() -> None:
    s = Slice("age<30")
    assert s == parse_slice("age < 30") and hash(s) == hash(parse_slice("age <30"))
    with pytest.raises(AttributeError):
        s.expr = "x"  # type: ignore[misc]
    assert slice_mask(_frame(), s).sum() == (_frame().age < 30).sum()


@pytest.mark.parametrize(("expr", "detail"), [
    ("f(x) > 1", "a function call"),
    ("x.y > 1", "an attribute"),
    ("age + 1 > 2", "arithmetic"),
    ("age > amount", "both columns"),
    ("age[0] > 1", "indexing"),
    ("age > b'1'", "is not a number"),
    ("age > f'{1}'", "is not a number"),
    ("1 < 2", "reads no column"),
    ("'BR' in country", "a list on the right"),
    ("country in 'BR'", "non-empty list"),
    ("country in []", "non-empty list"),
    ("age in [1, 'a']", "mixes number and string"),
    ("age < None", "None compares only with == or !="),
    ("age is 3", "'is' compares only with None"),
    ("age > ", "not valid syntax"),
    ("`age > 3", "backtick is not closed"),
    ("`` > 3", "empty backticks"),
    ("age", None),  # a bare column is fine: age == True
])
def test_unsupported_syntax_is_a_config_error(expr: str, detail: str | None) -> None:
    if detail is None:
        assert parse_slice(expr).expr == "age"
        return
    with pytest.raises(ConfigError) as info:
        parse_slice(expr)
    message = str(info.value)
    assert message.startswith(f"Cannot read slice {expr!r}")
    assert detail in message
    assert "only comparisons of columns with numbers, strings" in message
    assert "amount > 1000 and country == \"FR\"" in message


@pytest.mark.parametrize("bad", ["", "   ", None, 3])
def test_an_empty_slice_is_a_config_error(bad: Any) -> None:
    with pytest.raises(ConfigError, match="non-empty string"):
        parse_slice(bad)


def test_an_unknown_column_lists_the_columns() -> None:
    with pytest.raises(DataError) as info:
        slice_mask(_frame(), "agee > 3 and country == 'BR'")
    message = str(info.value)
    assert "column 'agee'" in message and "Did you mean 'age'?" in message
    assert "7 columns: 'age', 'amount', 'country'" in message


@pytest.mark.parametrize(("expr", "match"), [
    ("country > 5", r"column 'country' \((large_)?string\) with a number \(5\); compare it with a string"),
    ("age == 'x'", r"column 'age' \(int64\) with a string \('x'\); compare it with a number"),
    ("age in ['1', '2']", r"column 'age' \(int64\) with a string"),
    ("is_new == 1", r"column 'is_new' \(bool\) with a number \(1\); compare it with a bool"),
    ("age == True", r"column 'age' \(int64\) with a bool"),
    ("is_new > False", "is boolean; compare it with == True or == False"),
])
def test_a_type_mismatch_is_a_data_error(expr: str, match: str) -> None:
    with pytest.raises(DataError, match=match):
        slice_mask(_frame(), expr)


def test_columns_that_cannot_be_compared() -> None:
    table = pa.table({"l": pa.array([[1], [2]]), "z": pa.nulls(2)})
    with pytest.raises(DataError, match=r"type list<item: int64>, which slices cannot compare"):
        slice_mask(table, "l == 1")
    assert slice_mask(table, "z == 1").tolist() == [False, False]
    assert slice_mask(table, "z == None").tolist() == [True, True]


# ----------------------------------------------------------------------------- find_slices


def _bh_reference(p: np.ndarray) -> np.ndarray:
    return np.asarray(stats.false_discovery_control(p, method="bh"))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_planted_segments_are_recovered_with_few_false_discoveries(seed: int) -> None:
    table, error, segments = _planted(20_000, seed)
    report = find_slices(table, error)
    masks = [s.mask(table) for s in report.slices]
    for expr, planted in segments.items():
        best = max((_jaccard(m, planted) for m in masks), default=0.0)
        assert best >= 0.7, f"{expr} not recovered (best Jaccard {best:.2f}): {report.slices}"
    false = [s.expr for s, m in zip(report.slices, masks, strict=True)
             if not any(_overlaps(m, p) for p in segments.values())]
    assert len(false) <= 1, false
    # The parents of a planted conjunction are explained by it, and not reported alone.
    assert "channel == 'web'" not in [s.expr for s in report.slices]
    assert report.slices[0].excess_total >= report.slices[-1].excess_total


def test_null_data_mostly_reports_nothing() -> None:
    with_findings = 0
    for seed in range(10):
        table, error, _ = _planted(20_000, 100 + seed, planted=False)
        report = find_slices(table, error)
        assert report.tested > 1000
        with_findings += bool(report.slices)
    assert with_findings <= 1


def test_statistics_match_scipy_and_exprs_read_back() -> None:
    table, error, _ = _planted(20_000, 5)
    loss = error.astype(float)
    report = find_slices(table, loss)
    assert any(s.order == 2 for s in report.slices) and any(s.order == 1 for s in report.slices)
    for s in report.slices:
        assert parse_slice(s.expr).expr == s.expr
        mask = slice_mask(table, s.expr)
        assert mask.sum() == s.size and s.share == pytest.approx(s.size / report.n)
        assert s.loss == pytest.approx(loss[mask].mean(), rel=1e-12)
        assert s.rest_loss == pytest.approx(loss[~mask].mean(), rel=1e-12)
        assert s.excess_total == pytest.approx(s.size * (s.loss - s.rest_loss))
        ref = stats.ttest_ind(loss[mask], loss[~mask], equal_var=False, alternative="greater")
        assert s.statistic == pytest.approx(ref.statistic, rel=1e-8)
        assert s.p_value == pytest.approx(ref.pvalue, rel=1e-6, abs=1e-300)
        assert s.df == pytest.approx(ref.df, rel=1e-8)
        if s.order == 2:
            parents = [parse_slice(part).mask(table) for part in s.expr.split(" and ")]
            within = [stats.ttest_ind(loss[mask], loss[p & ~mask], equal_var=False,
                                      alternative="greater").pvalue for p in parents]
            assert s.p_within == pytest.approx(max(within), rel=1e-6, abs=1e-300)
        assert s.q_value <= report.alpha


def test_benjamini_hochberg_matches_scipy() -> None:
    table, error, _ = _planted(5000, 6)
    y = error - error.mean()
    encoded = [slices._encode(table, name, 5, 20) for name in table.column_names]
    features = [e for e in encoded if not isinstance(e, str)]
    cand = slices._score(features, y, 50, 2)
    assert len(cand.parts) == cand.p_joint.size > 500
    np.testing.assert_allclose(cand.q_value, _bh_reference(cand.p_joint), rtol=1e-10)
    assert np.all(cand.p_joint >= cand.p)
    ref = stats.ttest_ind
    m = np.ones(len(y), bool)
    for f, c in cand.parts[-1]:
        m &= features[f].member[c][features[f].codes] > 0
    assert cand.p[-1] == pytest.approx(
        ref(error[m], error[~m], equal_var=False, alternative="greater").pvalue, rel=1e-6)


def test_every_condition_reads_back_to_its_rows() -> None:
    rng = np.random.default_rng(9)
    n = 3000
    zeros = np.where(rng.random(n) < 0.6, 0.0, rng.lognormal(2, 1, n))
    table = pa.table({
        "ties at zero": zeros,
        "small": rng.normal(0, 1e-4, n) + 1000.0,
        "f32": rng.normal(0, 1, n).astype(np.float32),
        "few": rng.choice([0.1, 0.2, 0.7], n),
        "int with nulls": pa.array([None if r < 0.1 else int(v) for r, v in
                                    zip(rng.random(n), rng.integers(0, 500, n), strict=True)],
                                   pa.int64()),
        "class": pa.array(rng.choice(["a", "b'", 'c"', "d d"], n)).dictionary_encode(),
        "flag": pa.array([None if r < 0.1 else bool(v) for r, v in
                          zip(rng.random(n), rng.random(n) < 0.5, strict=True)]),
        "many": rng.choice([f"l{i}" for i in range(40)], n),
    })
    features = [slices._encode(table, name, 5, 20) for name in table.column_names]
    for feat in features:
        assert not isinstance(feat, str)
        assert len(feat.exprs) >= 3, feat.exprs
        for c, expr in enumerate(feat.exprs):
            want = feat.member[c][feat.codes] > 0
            np.testing.assert_array_equal(slice_mask(table, expr), want, err_msg=expr)
    # The "many" column: the 20 most frequent levels only.
    many = features[-1]
    assert not isinstance(many, str) and len(many.exprs) == 20


def test_continuous_loss_a_loss_column_and_options() -> None:
    table, error, segments = _planted(20_000, 7)
    rng = np.random.default_rng(7)
    abs_error = np.abs(rng.normal(0, 1, error.size)) * np.where(segments["country == 'BR'"], 2, 1)
    report = find_slices(table, abs_error, max_order=1)
    assert report.slices[0].expr == "country == 'BR'"
    assert all(s.order == 1 for s in report.slices)

    with_loss = table.append_column("err", pa.array(error))
    by_name = find_slices(with_loss, "err")
    assert "err" not in by_name.columns
    assert [s.expr for s in by_name.slices] == [s.expr for s in find_slices(table, error).slices]
    assert find_slices(table, error, min_effect=0.5).slices == []
    assert len(find_slices(table, error, top=1).slices) == 1
    only = find_slices(table, error, columns=["country"])
    assert only.columns == ("country",) and [s.expr for s in only.slices] == ["country == 'BR'"]
    big = find_slices(table, error, min_size=2000)
    assert big.min_size == 2000 and all(s.size >= 2000 for s in big.slices)


def test_a_slice_inside_another_by_its_rows_replaces_it() -> None:
    # Every new user has no history, so "user == 'new'" lies inside "history < 3" by its
    # rows (not by its conditions); the few thin-history returning users are no worse than
    # the rest, so the slice that names the cause is the one reported.
    rng = np.random.default_rng(3)
    n = 6000
    new = rng.random(n) < 0.15
    history = np.where(new, 0, rng.integers(1, 60, n))
    miss = rng.random(n) < np.where(new, 0.6, 0.2)
    report = find_slices({"user": np.where(new, "new", "returning"), "history": history},
                         miss, max_order=1, min_effect=0.2)
    assert [s.expr for s in report.slices] == ["user == 'new'"]
    assert report.significant >= 2  # the history tail was significant too, and dropped


def test_the_report_is_strict_json() -> None:
    table, error, _ = _planted(5000, 8)
    table = table.append_column("when", pa.array(np.arange(5000).astype("datetime64[s]")))
    report = find_slices(table, error)
    assert isinstance(report, SliceReport)
    assert all(isinstance(s, FoundSlice) for s in report.slices) and report.slices
    assert "when" in report.skipped and "when" not in report.columns
    d = json.loads(json.dumps(report.to_dict(), allow_nan=False))
    assert d["n"] == 5000 and d["tested"] == report.tested
    assert d["slices"][0]["expr"] == report.slices[0].expr
    assert d["overall_loss"] == pytest.approx(error.mean())
    first = report.slices[0]
    assert first.to_dict()["columns"] == list(first.columns)


@pytest.mark.parametrize(("kwargs", "match"), [
    ({"bins": 1}, "'bins' parameter of find_slices must be an int >= 2. Got 1"),
    ({"max_order": 3}, "'max_order' parameter of find_slices must be an int in"),
    ({"alpha": 0.0}, "'alpha' parameter"),
    ({"min_size": 1.5}, "'min_size' parameter of find_slices must be a share in"),
    ({"min_size": 0}, "'min_size' parameter"),
    ({"top": 0}, "'top' parameter"),
    ({"min_effect": -1.0}, "'min_effect' parameter"),
    ({"max_levels": 0}, "'max_levels' parameter"),
])
def test_bad_parameters_are_config_errors(kwargs: dict[str, Any], match: str) -> None:
    table, error, _ = _planted(200, 0)
    with pytest.raises(ConfigError, match=match):
        find_slices(table, error, **kwargs)


def test_bad_data_is_a_data_error() -> None:
    table, error, _ = _planted(200, 0)
    with pytest.raises(DataError, match="one loss per row"):
        find_slices(table, error[:10])
    with pytest.raises(DataError, match="missing or not finite"):
        find_slices(table, np.where(np.arange(200) == 3, np.nan, 1.0))
    with pytest.raises(DataError, match="no column 'nope'"):
        find_slices(table, error, columns=["age", "nope"])
    with pytest.raises(DataError, match="loss column 'nope' is not in the data"):
        find_slices(table, "nope")
    with pytest.raises(DataError, match="loss column 'country' is string"):
        find_slices(table, "country")
    with pytest.raises(ConfigError, match="cannot also be sliced"):
        find_slices(table.append_column("e", pa.array(error)), "e", columns=["e", "age"])
    timed = table.append_column("when", pa.array(np.arange(200).astype("datetime64[s]")))
    with pytest.raises(DataError, match="column 'when' cannot be sliced: dates and times"):
        find_slices(timed, error, columns=["when"])
    with pytest.raises(DataError, match="at least 4 rows"):
        find_slices({"a": [1, 2]}, [0, 1])


def test_docstring_examples_run() -> None:
    for module in (slices, _predicates):
        result = doctest.testmod(module, optionflags=doctest.NORMALIZE_WHITESPACE)
        assert result.attempted > 0 and result.failed == 0, module.__name__
