"""What a detector's false positives are telling us: where they crowd, and what they predict.

False positives (``y_true = 0``, ``y_pred = 1``) are compared with true negatives
(``y_true = 0``, ``y_pred = 0``): both are genuinely negative, only the model's decision
differs, so any difference between them is about what the model reacts to.

- **Segments.** Every level of every attribute (the top ``max_levels`` categories, a
  boolean's ``True``, ``bins`` quantile bins of a number, and ``missing``) gets a 2x2
  table (FP/TN by in/out of the level): shares, their ratio, the sample odds ratio with
  its Woolf (log) 95% interval (``scipy.stats.contingency.odds_ratio(kind="sample")``)
  and a two-sided Fisher exact p-value (``scipy.stats.fisher_exact``; it takes well under
  a millisecond even at 10^8 rows, so no chi-square approximation is used). Numbers also
  get Cohen's d (pooled SD) and a two-sided Mann-Whitney p-value. One Benjamini-Hochberg
  pass covers every attribute test.
- **Later outcomes.** For each outcome column (0/1 or numeric): the rate or mean among
  FP, TN, TP and all rows; FP vs TN risk ratio (``relative_risk``, Katz log interval),
  risk difference (Wald interval) and Fisher p, or for numbers the difference in means
  with Welch's t-test and interval; and how well the detector's decisions (precision,
  recall, lift) and ``scores`` (AUC) predict the outcome. A second BH pass covers outcomes.

Findings are the significant rows (q ≤ ``alpha``, at least ``min_count`` false positives),
as sentences, strongest first (see :func:`_strength`). The statistics behind them are in
:mod:`._fp_stats`; the sentences and the lesson text in :mod:`._fp_text`.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterable
from dataclasses import dataclass, replace
from typing import Any, TypeVar

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from numpy.typing import NDArray
from scipy import stats
from scipy.stats.contingency import odds_ratio

from hindsight._plain import plain_fields
from hindsight._validation import Interval, validate_params
from hindsight.data.frames import column_kind, to_arrow
from hindsight.errors import ConfigError, DataError
from hindsight.evaluate._fp_stats import (
    CONFIDENCE,
    bh_q_values,
    cohens_d,
    divide,
    mean_effects,
    mean_or_none,
    rank_auc,
    rate_effects,
)
from hindsight.evaluate._fp_text import (
    edge,
    outcome_clause,
    outcome_sentence,
    segment_clause,
    segment_sentence,
    shift_sentence,
)
from hindsight.ledger import Experiment, ExperimentRecord, Ledger, Lesson, add_lesson, get_ledger

__all__ = [
    "FalsePositiveReport",
    "NumericShift",
    "OutcomeComparison",
    "SegmentEnrichment",
    "analyze_false_positives",
    "record_lesson_candidate",
]

_OWNER = "analyze_false_positives"
_Bool = NDArray[np.bool_]
_Float = NDArray[np.float64]
_CONSTRAINTS = {
    **dict.fromkeys(("max_levels", "min_count"), Interval(int, 1, None)),
    "bins": Interval(int, 2, None),
    "alpha": Interval(float, 0, 1, closed="neither"),
}


@dataclass(frozen=True)
class SegmentEnrichment:
    """One attribute level: how common it is among false positives against true negatives."""

    column: str
    kind: str  # "categorical", "boolean" or "numeric"
    level: str
    predicate: str
    fp_count: int
    tn_count: int
    fp_share: float
    tn_share: float
    enrichment: float  # fp_share / tn_share
    odds_ratio: float
    odds_ratio_ci: tuple[float, float] | None
    p_value: float | None  # two-sided Fisher exact; None for a level holding every row
    q_value: float | None = None
    finding: bool = False

    def to_dict(self) -> dict[str, Any]:
        return plain_fields(self)


@dataclass(frozen=True)
class NumericShift:
    """A numeric attribute's shift between false positives and true negatives."""

    column: str
    n_fp: int
    n_tn: int
    fp_mean: float | None
    tn_mean: float | None
    cohen_d: float | None
    p_value: float | None  # two-sided Mann-Whitney U
    q_value: float | None = None
    finding: bool = False

    def to_dict(self) -> dict[str, Any]:
        return plain_fields(self)


@dataclass(frozen=True)
class OutcomeComparison:
    """A later outcome among false positives, true negatives, true positives and all rows."""

    column: str
    kind: str  # "binary" (rates) or "numeric" (means)
    n_fp: int  # rows of each group with the outcome observed
    n_tn: int
    n_tp: int
    n_all: int
    fp_value: float | None
    tn_value: float | None
    tp_value: float | None
    all_value: float | None
    ratio: float | None  # risk ratio (binary) or ratio of means (numeric), FP / TN
    ratio_ci: tuple[float, float] | None
    difference: float | None  # FP - TN
    difference_ci: tuple[float, float] | None
    cohen_d: float | None  # numeric outcomes only
    p_value: float | None
    test: str  # "fisher" or "welch"
    precision: float | None  # of y_pred = 1 for the outcome, over all rows (binary only)
    recall: float | None
    lift: float | None  # outcome rate (or mean) among predicted positives / among all rows
    score_auc: float | None
    q_value: float | None = None
    finding: bool = False

    def to_dict(self) -> dict[str, Any]:
        return plain_fields(self)


@dataclass(frozen=True)
class FalsePositiveReport:
    """What the false positives have in common and what they go on to do, with findings."""

    n: int
    n_fp: int
    n_tn: int
    n_tp: int
    n_fn: int
    enrichment: list[SegmentEnrichment]
    shifts: list[NumericShift]
    outcomes: list[OutcomeComparison]
    findings: list[str]
    alpha: float
    min_count: int

    @property
    def significant(self) -> bool:
        """Whether any row is a finding (q ≤ alpha with enough false positives)."""
        rows: list[Any] = [*self.enrichment, *self.shifts, *self.outcomes]
        return any(r.finding for r in rows)

    def lesson_text(self, model: str | None = None) -> str | None:
        """A lesson from the strongest outcome and segment findings, or None if none."""
        outcomes = sorted((o for o in self.outcomes if o.finding), key=_strength, reverse=True)
        segments = [e for e in self.enrichment if e.finding and e.odds_ratio > 1]
        segments.sort(key=_strength, reverse=True)
        clauses = [_lesson_clause(r) for r in (*outcomes[:1], *segments[:1])]
        subject = f"The false positives of {model}" if model else "The detector's false positives"
        if not clauses:  # only depleted segments or shifted numbers: quote the strongest
            if not self.significant:
                return None
            return f"{subject} differ from true negatives: {self.findings[0]}"
        text = f"{subject} {clauses[0]}."
        return text + (f" They also {clauses[1]}." if len(clauses) > 1 else "")

    def to_dict(self) -> dict[str, Any]:
        return plain_fields(self)


def analyze_false_positives(
    data: Any,
    y_true: Any,
    y_pred: Any,
    *,
    scores: Any = None,
    outcomes: str | Iterable[str] = (),
    columns: str | Iterable[str] | None = None,
    bins: int = 5,
    max_levels: int = 20,
    alpha: float = 0.05,
    min_count: int = 10,
) -> FalsePositiveReport:
    """Compare false positives with true negatives on attributes and later outcomes.

    ``y_true``, ``y_pred`` and ``scores`` are arrays (one value per row) or column names
    of ``data``; ``outcomes`` name columns of ``data`` observed later; ``columns`` the
    attributes (by default every other column whose type can be analysed).
    """
    validate_params(
        _OWNER,
        {"bins": bins, "max_levels": max_levels, "alpha": alpha, "min_count": min_count},
        _CONSTRAINTS,
    )
    table = to_arrow(data, what="data")
    truth = _binary(_vector(y_true, table, "y_true"), "y_true")
    pred = _binary(_vector(y_pred, table, "y_pred"), "y_pred")
    score: _Float | None = None
    if scores is not None:
        raw = _vector(scores, table, "scores")
        score = raw.astype(np.float64) if raw.dtype.kind in "biuf" else None
        if score is None or not np.isfinite(score).all():
            raise DataError(f"{_OWNER}: scores must be finite numbers; drop or impute the rest.")
    outcome_names = _names(outcomes, table, "outcome")
    used = {v for v in (y_true, y_pred, scores) if isinstance(v, str)} | set(outcome_names)
    if columns is None:
        attrs = [c for c in table.column_names if c not in used and _kind(table, c) is not None]
    else:
        attrs = _names(columns, table, "attribute")
        for name in attrs:
            if _kind(table, name) is None:
                raise DataError(
                    f"{_OWNER}: attribute {name!r} has type {table.schema.field(name).type}, "
                    "which cannot be segmented; derive a numeric or categorical column from it."
                )
    outcome_values = [(name, _outcome_values(table, name)) for name in outcome_names]

    fp, tn, tp = ~truth & pred, ~truth & ~pred, truth & pred
    counts = (
        int(truth.size),
        int(fp.sum()),
        int(tn.sum()),
        int(tp.sum()),
        int((truth & ~pred).sum()),
    )
    alpha = float(alpha)
    if counts[1] == 0 or counts[2] == 0:
        note = (
            "No false positives to analyse: the detector flagged none of the negative rows."
            if counts[1] == 0
            else "No true negatives to compare the false positives with: the detector "
            "flagged every negative row."
        )
        return FalsePositiveReport(*counts, [], [], [], [note], alpha, min_count)

    tests: list[SegmentEnrichment | NumericShift] = []
    for name in attrs:
        kind, column = _kind(table, name), table.column(name)
        if kind == "numeric":
            x = _floats(column)
            tests += _segments(name, kind, *_numeric_levels(name, x, fp | tn, bins), fp, tn)
            tests.append(_shift(name, x, fp, tn))
        elif kind == "boolean":
            tests += _segments(name, "boolean", *_boolean_levels(name, column), fp, tn)
        else:
            levels = _categorical_levels(name, column, fp | tn, max_levels)
            tests += _segments(name, "categorical", *levels, fp, tn)
    tests = _judged(tests, alpha, min_count)
    results = [_outcome(name, v, fp, tn, tp, pred, score) for name, v in outcome_values]
    results = _judged(results, alpha, min_count)
    enrichment = [t for t in tests if isinstance(t, SegmentEnrichment)]
    shifts = [t for t in tests if isinstance(t, NumericShift)]
    ranked: list[Any] = [r for r in (*results, *tests) if r.finding]
    ranked.sort(key=_strength, reverse=True)
    findings = [_sentence(r) for r in ranked]
    return FalsePositiveReport(*counts, enrichment, shifts, results, findings, alpha, min_count)


def record_lesson_candidate(
    report: FalsePositiveReport,
    *,
    ledger: Ledger | None = None,
    experiment: Experiment | ExperimentRecord | str | None = None,
    tags: Iterable[str] = (),
    text: str | None = None,
) -> Lesson | None:
    """Record the report's lesson in the ledger as a candidate awaiting a person's confirmation.

    The lesson is tagged ``candidate`` and ``false-positives`` (plus ``tags``) and comes
    from ``experiment`` when one is given. Nothing is recorded (None is returned) when
    the report has no finding and no ``text`` is given.
    """
    if isinstance(tags, str):
        tags = (tags,)
    exp_id: str | None = None
    model: str | None = None
    if isinstance(experiment, Experiment):
        exp_id, model = experiment.id, experiment.name
        ledger = ledger or experiment.ledger
    elif isinstance(experiment, ExperimentRecord):
        exp_id, model = experiment.id, experiment.name
    elif experiment is not None and not isinstance(experiment, str):
        raise ConfigError(
            "record_lesson_candidate: experiment must be an Experiment, an ExperimentRecord "
            f"or an experiment id. Got {type(experiment).__name__}."
        )
    led = ledger or get_ledger()
    if isinstance(experiment, str):
        record = led.experiment_record(experiment)  # also resolves a unique id prefix
        exp_id, model = record.id, record.name
    body = text if text is not None else report.lesson_text(model=model)
    if body is None:
        return None
    sources = [exp_id] if exp_id else []
    return add_lesson(led, body, tags=["candidate", "false-positives", *tags], sources=sources)


# -- reading the input ---------------------------------------------------------------


def _vector(value: Any, table: pa.Table, what: str) -> NDArray[Any]:
    if isinstance(value, str):
        _names([value], table, what)
        column = table.column(value)
        kind = column_kind(column.type)
        return _floats(column) if kind in ("numeric", "boolean") else column.to_numpy()
    arr = np.asarray(value)
    if arr.ndim != 1 or arr.shape[0] != table.num_rows:
        raise DataError(
            f"{_OWNER}: {what} has shape {arr.shape} but the data has {table.num_rows} rows; "
            "pass one value per row (or the name of a column of the data)."
        )
    return arr


def _binary(arr: NDArray[Any], what: str) -> _Bool:
    if arr.dtype == np.bool_:
        return arr
    if arr.dtype.kind not in "iuf":
        raise DataError(f"{_OWNER}: {what} must be 0/1 (or bool); got {arr.dtype} values.")
    if arr.dtype.kind == "f" and np.isnan(arr).any():
        raise DataError(f"{_OWNER}: {what} has missing values; drop those rows first.")
    bad = (arr != 0) & (arr != 1)
    if bad.any():
        raise DataError(
            f"{_OWNER}: {what} must be 0/1 (or bool); got values "
            f"{np.unique(arr[bad])[:5].tolist()}. Map the positive class to 1 (and threshold "
            "scores into decisions) first."
        )
    return np.asarray(arr == 1)


def _names(names: str | Iterable[str], table: pa.Table, what: str) -> list[str]:
    wanted = [names] if isinstance(names, str) else list(names)
    missing = [n for n in wanted if n not in table.column_names]
    if missing:
        raise DataError(
            f"{_OWNER}: no {what} column {', '.join(map(repr, missing))} in the data. "
            f"Available columns: {', '.join(table.column_names)}."
        )
    return wanted


def _kind(table: pa.Table, name: str) -> str | None:
    kind = column_kind(table.schema.field(name).type)
    return kind if kind in ("numeric", "boolean", "categorical") else None


def _floats(column: pa.ChunkedArray) -> _Float:
    """A numeric or boolean column as float64, nulls as NaN."""
    return np.array(pc.cast(column, pa.float64()).to_numpy(), dtype=np.float64)  # writable


def _outcome_values(table: pa.Table, name: str) -> tuple[str, _Float]:
    kind = column_kind(table.schema.field(name).type)
    if kind not in ("numeric", "boolean"):
        raise DataError(
            f"{_OWNER}: outcome column {name!r} has type {table.schema.field(name).type}; "
            "outcomes must be 0/1, boolean or numeric. Encode it (e.g. churned -> 1) first."
        )
    v = _floats(table.column(name))
    v[~np.isfinite(v)] = np.nan  # unobserved: left out of that outcome's numbers
    observed = v[~np.isnan(v)]
    binary = kind == "boolean" or bool(np.all((observed == 0) | (observed == 1)))
    return ("binary" if binary else "numeric"), v


# -- segments ------------------------------------------------------------------------

_Levels = tuple[NDArray[np.intp], list[tuple[str, str]]]  # codes (-1: no level), labels


def _categorical_levels(name: str, column: pa.ChunkedArray, neg: _Bool, top: int) -> _Levels:
    arr = column.combine_chunks()
    if pa.types.is_dictionary(arr.type):
        arr = arr.dictionary_decode()
    encoded = pc.dictionary_encode(arr)
    idx = np.asarray(encoded.indices.fill_null(-1).to_numpy(), dtype=np.intp)
    values = encoded.dictionary.to_pylist()
    seen = np.bincount(idx[neg & (idx >= 0)], minlength=len(values))
    order = np.argsort(-seen, kind="stable")
    kept = order[:top][seen[order[:top]] > 0]
    labels = [(str(values[i]), f"{name} == {values[i]!r}") for i in kept]
    mapping = np.full(len(values) + 1, len(kept), dtype=np.intp)  # the rest pool in "other"
    mapping[kept] = np.arange(len(kept))
    codes = mapping[idx]  # idx -1 reads the last slot: "other" for now
    if len(values) > len(kept):
        labels.append(("(other)", f"{name} not in its top {len(kept)} levels"))
    codes[idx < 0] = len(labels)
    labels.append(("(missing)", f"{name} is missing"))
    return codes, labels


def _boolean_levels(name: str, column: pa.ChunkedArray) -> _Levels:
    # False is the complement of True and would repeat its test; only True and missing.
    raw = np.asarray(pc.cast(column, pa.int8()).fill_null(-1).to_numpy(), dtype=np.intp)
    codes = np.select([raw == 1, raw == -1], [0, 1], -1)
    return codes, [("True", f"{name} == True"), ("(missing)", f"{name} is missing")]


def _numeric_levels(name: str, x: _Float, neg: _Bool, bins: int) -> _Levels:
    valid = np.isfinite(x)
    ref = x[neg & valid]
    codes = np.full(x.size, -1, dtype=np.intp)
    labels: list[tuple[str, str]] = []
    distinct = np.unique(ref)
    if 0 < distinct.size <= bins:  # few values: one level each, not bins
        pos = np.minimum(np.searchsorted(distinct, x), distinct.size - 1)
        hit = valid & (distinct[pos] == x)
        codes[hit] = pos[hit]
        labels = [(edge(v), f"{name} == {edge(v)}") for v in distinct.tolist()]
    elif distinct.size:
        edges = np.unique(np.quantile(ref, np.arange(1, bins) / bins))
        codes[valid] = np.searchsorted(edges, x[valid], side="right")
        text = [edge(e) for e in edges.tolist()]
        labels = [(f"< {text[0]}", f"{name} < {text[0]}")]
        labels += [(f"[{a}, {b})", f"{a} <= {name} < {b}") for a, b in itertools.pairwise(text)]
        labels.append((f">= {text[-1]}", f"{name} >= {text[-1]}"))
    codes[~valid] = len(labels)
    labels.append(("(missing)", f"{name} is missing or infinite"))
    return codes, labels


def _segments(
    name: str,
    kind: str,
    codes: NDArray[np.intp],
    labels: list[tuple[str, str]],
    fp: _Bool,
    tn: _Bool,
) -> list[SegmentEnrichment]:
    n_fp, n_tn = int(fp.sum()), int(tn.sum())
    fp_counts = np.bincount(codes[fp & (codes >= 0)], minlength=len(labels))
    tn_counts = np.bincount(codes[tn & (codes >= 0)], minlength=len(labels))
    rows = []
    for (level, rule), a, c in zip(labels, fp_counts.tolist(), tn_counts.tolist(), strict=True):
        if a + c == 0:
            continue
        b, d = n_fp - a, n_tn - c
        p = None if b + d == 0 else float(stats.fisher_exact([[a, b], [c, d]]).pvalue)
        ratio, ci = divide(a * d, b * c), None
        if min(a, b, c, d) > 0:  # SciPy's interval is infinite or undefined on a zero cell
            res = odds_ratio([[a, b], [c, d]], kind="sample")
            low, high = res.confidence_interval(CONFIDENCE)
            ratio, ci = float(res.statistic), (float(low), float(high))
        enrich = divide(a / n_fp, c / n_tn)
        fields = (name, kind, level, rule, a, c, a / n_fp, c / n_tn, enrich, ratio, ci, p)
        rows.append(SegmentEnrichment(*fields))
    return rows


def _shift(name: str, x: _Float, fp: _Bool, tn: _Bool) -> NumericShift:
    xf, xt = x[fp & np.isfinite(x)], x[tn & np.isfinite(x)]
    mf = float(xf.mean()) if xf.size else None
    mt = float(xt.mean()) if xt.size else None
    d = cohens_d(xf, xt)
    # d is None when both groups are constant, where Mann-Whitney has nothing to rank.
    p = None if d is None else float(stats.mannwhitneyu(xf, xt, alternative="two-sided").pvalue)
    return NumericShift(name, int(xf.size), int(xt.size), mf, mt, d, p)


# -- outcomes ------------------------------------------------------------------------


def _outcome(
    name: str,
    kv: tuple[str, _Float],
    fp: _Bool,
    tn: _Bool,
    tp: _Bool,
    pred: _Bool,
    score: _Float | None,
) -> OutcomeComparison:
    kind, v = kv
    seen = ~np.isnan(v)
    vf, vt, vp, va = (v[g & seen] for g in (fp, tn, tp, seen))
    sizes = (vf.size, vt.size, vp.size, va.size)
    means = (mean_or_none(vf), mean_or_none(vt), mean_or_none(vp), mean_or_none(va))
    flagged = v[pred & seen]
    lift = None
    if flagged.size and means[3] is not None and means[3] > 0:
        lift = float(flagged.mean()) / means[3]
    precision = recall = auc = None
    if kind == "binary":
        effects = rate_effects(vf, vt)
        events = va == 1
        precision = float(flagged.mean()) if flagged.size else None
        recall = float(pred[seen][events].mean()) if events.any() else None
        if score is not None and 0 < events.sum() < events.size:
            auc = rank_auc(score[seen], events)
    else:
        effects = mean_effects(vf, vt)
    fields = (name, kind, *sizes, *means, *effects, precision, recall, lift, auc)
    return OutcomeComparison(*fields)


# -- findings ------------------------------------------------------------------------


_Row = TypeVar("_Row", bound="SegmentEnrichment | NumericShift | OutcomeComparison")


def _judged(rows: list[_Row], alpha: float, min_count: int) -> list[_Row]:
    """Rows with their BH q-values (one family) and whether each is a finding."""
    out = []
    for row, q in zip(rows, bh_q_values([r.p_value for r in rows]), strict=True):
        n_fp = row.fp_count if isinstance(row, SegmentEnrichment) else row.n_fp
        out.append(
            replace(row, q_value=q, finding=q is not None and q <= alpha and n_fp >= min_count)
        )
    return out


def _strength(row: Any) -> float:
    """How strong a finding is: |log effect|, weighted by evidence that saturates at q = 1e-10.

    Effects share one scale, a log ratio of proportions: risk ratios and segment share
    ratios by their log, Cohen's d as ln OR = d * pi / sqrt(3) (Chinn, 2000). So a huge
    but barely significant ratio does not outrank a large, overwhelming one.
    """
    if isinstance(row, SegmentEnrichment):
        effect: float | None = row.enrichment
    elif isinstance(row, OutcomeComparison) and row.kind == "binary":
        effect = row.ratio
    else:
        effect = math.exp(min(abs(row.cohen_d or 0.0) * math.pi / math.sqrt(3), 10.0))
    size = abs(math.log(effect)) if effect and math.isfinite(effect) else 10.0
    q = row.q_value or 0.0
    evidence = 1.0 if q <= 0 else min(1.0, -math.log10(q) / 10)
    return min(size, 10.0) * evidence


def _sentence(row: Any) -> str:
    """A finding in words (see :mod:`._fp_text`), by the kind of row it is."""
    if isinstance(row, SegmentEnrichment):
        return segment_sentence(row)
    if isinstance(row, NumericShift):
        return shift_sentence(row)
    return outcome_sentence(row)


def _lesson_clause(row: Any) -> str:
    """A lesson's clause for a segment or an outcome finding (see :mod:`._fp_text`)."""
    return segment_clause(row) if isinstance(row, SegmentEnrichment) else outcome_clause(row)
