"""The words of the false-positive analysis: its findings as sentences and its lesson text.

Each function takes one row of a ``FalsePositiveReport`` (a segment, a numeric shift or
an outcome; :mod:`hindsight.evaluate.false_positives` picks the function by the row's
type) and formats its numbers: shares as percentages, ratios with their intervals,
p-values, and the values in a predicate (:func:`edge`).
"""

from __future__ import annotations

import math
from typing import Any

__all__ = [
    "edge",
    "outcome_clause",
    "outcome_sentence",
    "segment_clause",
    "segment_sentence",
    "shift_sentence",
]

_TIMES, _DASH = "\u00d7", "\u2013"  # the sentences' "4.2x" and "3.5-5.0"


# -- findings ------------------------------------------------------------------------


def segment_sentence(row: Any) -> str:
    """A segment finding (a ``SegmentEnrichment`` row) as one sentence."""
    return (
        f"{_pct(row.fp_share)} of false positives are in `{row.predicate}` against "
        f"{_pct(row.tn_share)} of true negatives (odds ratio {_ratio(row.odds_ratio)}"
        f"{_ci(row.odds_ratio_ci)}, {_p(row.p_value)})."
    )


def shift_sentence(row: Any) -> str:
    """A numeric-shift finding (a ``NumericShift`` row) as one sentence."""
    word = "higher" if (row.cohen_d or 0) > 0 else "lower"
    return (
        f"False positives have {word} `{row.column}` than true negatives (mean "
        f"{_num(row.fp_mean)} against {_num(row.tn_mean)}; Cohen's d {row.cohen_d:.2f}, "
        f"Mann{_DASH}Whitney {_p(row.p_value)})."
    )


def outcome_sentence(row: Any) -> str:
    """An outcome finding (an ``OutcomeComparison`` row) in words."""
    if row.kind == "binary":
        up = (row.ratio or 0) > 1
        text = (
            f"False positives had `{row.column}` at {_pct(row.fp_value)} against "
            f"{_pct(row.tn_value)} for true negatives ({_ratio(row.ratio)}{_TIMES}"
            f"{_ci(row.ratio_ci)}, {_p(row.p_value)}): "
            + (
                f"the detector may be predicting `{row.column}`."
                if up
                else f"the flagged negatives are less likely to have `{row.column}`."
            )
        )
        if row.precision is not None and row.lift is not None:
            text += (
                f" Of all rows it flags, {_pct(row.precision)} had `{row.column}` "
                f"(lift {_ratio(row.lift)}{_TIMES} over {_pct(row.all_value)})."
            )
        return text
    word = "higher" if (row.difference or 0) > 0 else "lower"
    lo, hi = row.difference_ci or (math.nan, math.nan)
    return (
        f"False positives had a mean `{row.column}` of {_num(row.fp_value)} against "
        f"{_num(row.tn_value)} for true negatives (difference {_num(row.difference)}, 95% CI "
        f"{_num(lo)} to {_num(hi)}, {_p(row.p_value)}): the detector may be flagging rows "
        f"with {word} `{row.column}`."
    )


# -- lesson text ---------------------------------------------------------------------


def segment_clause(row: Any) -> str:
    """The lesson's clause for a segment the false positives crowd into."""
    return (
        f"concentrate in `{row.predicate}` ({_pct(row.fp_share)} of false positives against "
        f"{_pct(row.tn_share)} of true negatives, odds ratio {_ratio(row.odds_ratio)}): "
        "check that segment's labels and features, or give it its own threshold"
    )


def outcome_clause(row: Any) -> str:
    """The lesson's clause for a later outcome the false positives differ on."""
    if row.kind == "binary" and (row.ratio or 0) > 1:
        return (
            f"predict `{row.column}` ({_ratio(row.ratio)}{_TIMES} the true negatives' rate): "
            f"consider a model for `{row.column}` or an action for the rows the detector flags"
        )
    if row.kind == "binary":
        return (
            f"are less likely to have `{row.column}` later ({_ratio(row.ratio)}{_TIMES} the true "
            "negatives' rate): the false alarms pick out low-risk rows"
        )
    word = "higher" if (row.difference or 0) > 0 else "lower"
    return (
        f"go on to have {word} `{row.column}` (mean {_num(row.fp_value)} against "
        f"{_num(row.tn_value)} for true negatives): the detector may carry a signal for it"
    )


# -- numbers -------------------------------------------------------------------------


def _pct(x: float | None) -> str:
    return "n/a" if x is None else f"{100 * x:.1f}%"


def _ratio(x: float | None) -> str:
    if x is None or not math.isfinite(x):
        return "∞" if x == math.inf else "n/a"
    return f"{x:.0f}" if x >= 10 else f"{x:.2g}"


def _ci(ci: tuple[float, float] | None) -> str:
    return "" if ci is None else f", 95% CI {_ratio(ci[0])}{_DASH}{_ratio(ci[1])}"


def _num(x: float | None) -> str:
    if x is None or not math.isfinite(x):
        return "n/a"
    return f"{x:,.0f}" if abs(x) >= 1000 else f"{x:.4g}"


def edge(x: float) -> str:
    """A value in a predicate: precise enough that the text reads as the rule applied."""
    return f"{x:.6g}"


def _p(p: float | None) -> str:
    if p is None:
        return "p n/a"
    return "p < 1e-9" if p < 1e-9 else f"p = {p:.2g}"
