"""Performance: realised once labels arrive, and estimated without labels (CBPE).

Both read the label count tables of :mod:`hindsight.monitor.labels`, so a window's
performance and its reference's come from sums, never from rows.

:class:`PerformanceCheck` judges a window ``delay_s`` after it ends (the time its labels
take to arrive): accuracy, and for a binary problem precision, recall, F1, AUC (from the
score histograms, ties counted half) and the cost of wrong decisions per labelled row,
with the label coverage (labelled rows over the window's rows). It is flagged when the
accuracy falls below the reference's (two-proportion test) by more than ``min_drop``.
Its evidence also holds the label-free estimate for the same window, so estimate and
realised performance are reconciled side by side.

:class:`EstimatedPerformanceCheck` judges a window as soon as it closes, without labels,
by confidence-based performance estimation as NannyML defines it (CBPE): calibrate the
scores on the labelled reference (isotonic, over the score bins), then the expected
confusion matrix of the window is the sum of its calibrated scores on each side of the
threshold. It is flagged when the estimated accuracy falls below the reference's by more
than ``min_drop`` and by more than three sampling errors.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from hindsight.errors import ConfigError
from hindsight.monitor.alerting import Finding
from hindsight.monitor.checks.base import WindowData, _unit
from hindsight.monitor.labels import SCORE_BINS
from hindsight.serving.rollout.stats import compare_rates

__all__ = ["EstimatedPerformanceCheck", "PerformanceCheck", "binned_auc", "cbpe_estimate"]

Table = Mapping[str, Mapping[str, int]]


def _hist(row: Mapping[str, int] | None) -> np.ndarray:
    h = np.zeros(SCORE_BINS, dtype=np.float64)
    for k, v in (row or {}).items():
        if k.isdigit() and int(k) < SCORE_BINS:
            h[int(k)] += v
    return h


def binned_auc(pos: np.ndarray, neg: np.ndarray) -> float | None:
    """P(score of a positive > score of a negative), ties (the same bin) counted half."""
    n_pos, n_neg = float(pos.sum()), float(neg.sum())
    if n_pos == 0 or n_neg == 0:
        return None
    below = np.concatenate([[0.0], np.cumsum(neg)[:-1]])  # negatives in lower bins
    return float((pos * (below + 0.5 * neg)).sum() / (n_pos * n_neg))


def _isotonic(rate: np.ndarray, weight: np.ndarray) -> np.ndarray:
    """Weighted pool-adjacent-violators: the closest non-decreasing fit."""
    vals: list[float] = []
    wts: list[float] = []
    sizes: list[int] = []
    for r, w in zip(rate.tolist(), weight.tolist(), strict=True):
        vals.append(r)
        wts.append(w)
        sizes.append(1)
        while len(vals) > 1 and vals[-2] > vals[-1]:
            w2 = wts[-2] + wts[-1]
            v = (vals[-2] * wts[-2] + vals[-1] * wts[-1]) / w2
            s = sizes[-2] + sizes[-1]
            vals[-2:], wts[-2:], sizes[-2:] = [v], [w2], [s]
    return np.repeat(np.array(vals), sizes)


def calibration(reference: Table, positive: str) -> np.ndarray | None:
    """P(positive | score bin) on the labelled reference, isotonic; None without labels."""
    pos = _hist(reference.get(positive))
    total = sum((_hist(row) for row in reference.values()), np.zeros(SCORE_BINS))
    seen = total > 0
    if not seen.any():
        return None
    fitted = _isotonic(pos[seen] / total[seen], total[seen])
    # Bins the reference never saw take their nearest seen neighbour's value.
    idx = np.flatnonzero(seen)
    nearest = idx[np.clip(np.searchsorted(idx, np.arange(SCORE_BINS)), 0, idx.size - 1)]
    left = idx[np.clip(np.searchsorted(idx, np.arange(SCORE_BINS)) - 1, 0, idx.size - 1)]
    pick = np.where(
        np.abs(np.arange(SCORE_BINS) - left) <= np.abs(nearest - np.arange(SCORE_BINS)),
        left,
        nearest,
    )
    out = np.empty(SCORE_BINS)
    out[idx] = fitted
    out[~seen] = out[pick[~seen]]
    return out


def cbpe_estimate(scores: np.ndarray, cal: np.ndarray, threshold: float) -> dict[str, float] | None:
    """The expected confusion matrix and metrics of a score histogram (CBPE)."""
    n = float(scores.sum())
    if n == 0:
        return None
    cut = math.ceil(threshold * SCORE_BINS - 1e-9)  # bins from here predict positive
    p = scores * cal
    tp, fp = float(p[cut:].sum()), float((scores - p)[cut:].sum())
    fn, tn = float(p[:cut].sum()), float((scores - p)[:cut].sum())
    acc = (tp + tn) / n
    prec = tp / (tp + fp) if tp + fp else float("nan")
    rec = tp / (tp + fn) if tp + fn else float("nan")
    return {
        "n": n,
        "tp": tp,
        "fp": fp,
        "fn": fn,
        "tn": tn,
        "accuracy": acc,
        "precision": prec,
        "recall": rec,
        "sampling_error": math.sqrt(max(acc * (1 - acc), 0.0) / n),
    }


def _finite(x: float | None) -> float | None:
    return None if x is None or not math.isfinite(x) else float(x)


@dataclass(frozen=True)
class PerformanceCheck:
    """Realised performance of a window once its labels are in (``delay_s`` after it)."""

    name: ClassVar[str] = "performance"
    positive: str | None = None
    costs: Mapping[str, float] | None = None
    threshold: float = 0.5
    delay_s: float = 0.0
    min_labels: int = 30
    alpha: float = 0.05
    min_drop: float = 0.02

    def __post_init__(self) -> None:
        _unit("PerformanceCheck", "alpha", self.alpha)
        if self.delay_s < 0 or self.min_labels < 1 or self.min_drop < 0:
            raise ConfigError(
                "PerformanceCheck: delay_s and min_drop must be >= 0 and min_labels >= 1."
            )
        if self.costs is not None:
            bad = sorted(set(self.costs) - {"fp", "fn"})
            if bad or self.positive is None:
                raise ConfigError(
                    "PerformanceCheck: costs= takes 'fp' and 'fn' (per wrong decision) and "
                    f"needs positive=; got {dict(self.costs)}."
                )
            object.__setattr__(self, "costs", {k: float(v) for k, v in self.costs.items()})

    def _confusion(self, table: Table) -> dict[str, float]:
        labelled = float(sum(sum(r.values()) for r in table.values()))
        correct = float(sum(r.get(label, 0) for label, r in table.items()))
        out = {"labelled": labelled, "correct": correct}
        if self.positive is not None:
            pos = self.positive
            tp = float(table.get(pos, {}).get(pos, 0))
            fn = float(sum(table.get(pos, {}).values())) - tp
            fp = float(sum(r.get(pos, 0) for label, r in table.items() if label != pos))
            out.update(tp=tp, fn=fn, fp=fp, tn=labelled - tp - fn - fp)
        return out

    def _metrics(self, data: WindowData) -> dict[str, Any]:
        c = self._confusion(data.counts.get("label|prediction", {}))
        n = c["labelled"]
        m: dict[str, Any] = {
            **c,
            "rows": data.profile.n_rows,
            "coverage": n / data.profile.n_rows if data.profile.n_rows else 0.0,
            "accuracy": c["correct"] / n if n else None,
        }
        if self.positive is not None and n:
            tp, fp, fn = c["tp"], c["fp"], c["fn"]
            prec = tp / (tp + fp) if tp + fp else None
            rec = tp / (tp + fn) if tp + fn else None
            m.update(
                precision=prec,
                recall=rec,
                f1=2 * prec * rec / (prec + rec) if prec and rec else None,
            )
            scores = data.counts.get("label|score_bin", {})
            if scores:
                neg = sum(
                    (_hist(r) for label, r in scores.items() if label != self.positive),
                    np.zeros(SCORE_BINS),
                )
                m["auc"] = binned_auc(_hist(scores.get(self.positive)), neg)
            if self.costs is not None:
                m["cost_per_row"] = (
                    self.costs.get("fp", 0.0) * fp + self.costs.get("fn", 0.0) * fn
                ) / n
        return m

    def judge(
        self,
        window_start: float,
        current: WindowData,
        reference: WindowData,
        memory: dict[str, Any] | None = None,
    ) -> list[Finding]:
        cur, ref = self._metrics(current), self._metrics(reference)
        evidence: dict[str, Any] = {"current": cur, "reference": ref}
        if self.positive is not None:
            cal = calibration(reference.counts.get("label|score_bin", {}), self.positive)
            hist = _hist(current.counts.get("score_bin", {}).get("*"))
            est = cbpe_estimate(hist, cal, self.threshold) if cal is not None else None
            if est is not None:
                evidence["estimated"] = est
        if cur["labelled"] < self.min_labels or ref["labelled"] < self.min_labels:
            detail = (
                f"{int(cur['labelled'])} labels in the window ({cur['coverage']:.1%} of its "
                f"rows) and {int(ref['labelled'])} in the reference: fewer than "
                f"{self.min_labels}; wait for labels"
            )
            return [
                Finding(
                    self.name,
                    window_start,
                    "accuracy",
                    _finite(cur["accuracy"]),
                    False,
                    detail,
                    evidence,
                )
            ]
        j = compare_rates(
            int(ref["correct"]),
            int(ref["labelled"]),
            int(cur["correct"]),
            int(cur["labelled"]),
            alpha=self.alpha,
            min_effect=self.min_drop,
            higher_is_worse=False,
            name="accuracy",
            min_samples=self.min_labels,
        )
        evidence["test"] = j.to_dict()
        flagged = j.status == "worse"
        parts = [j.detail, f"label coverage {cur['coverage']:.1%}"]
        if cur.get("auc") is not None:
            parts.append(f"AUC {cur['auc']:.3f}")
        if cur.get("cost_per_row") is not None:
            parts.append(f"cost {cur['cost_per_row']:.3g} per labelled row")
        if "estimated" in evidence:
            parts.append(f"estimated beforehand {evidence['estimated']['accuracy']:.2%}")
        detail = "; ".join(parts) + (" — worse" if flagged else "")
        return [
            Finding(
                self.name,
                window_start,
                "accuracy",
                _finite(cur["accuracy"]),
                flagged,
                detail,
                evidence,
            )
        ]

    def to_dict(self) -> dict[str, Any]:
        return {
            "check": self.name,
            "positive": self.positive,
            "costs": None if self.costs is None else dict(self.costs),
            "threshold": self.threshold,
            "delay_s": self.delay_s,
            "min_labels": self.min_labels,
            "alpha": self.alpha,
            "min_drop": self.min_drop,
        }


@dataclass(frozen=True)
class EstimatedPerformanceCheck:
    """Label-free accuracy of a binary classifier's window (CBPE), as soon as it closes."""

    name: ClassVar[str] = "estimated_performance"
    positive: str = "1"
    threshold: float = 0.5
    min_rows: int = 100
    min_drop: float = 0.02

    def __post_init__(self) -> None:
        _unit("EstimatedPerformanceCheck", "threshold", self.threshold)
        if self.min_rows < 1 or self.min_drop < 0:
            raise ConfigError("EstimatedPerformanceCheck: min_rows >= 1 and min_drop >= 0.")

    def judge(
        self,
        window_start: float,
        current: WindowData,
        reference: WindowData,
        memory: dict[str, Any] | None = None,
    ) -> list[Finding]:
        cal = calibration(reference.counts.get("label|score_bin", {}), self.positive)
        if cal is None:
            return []  # no labelled reference to calibrate on
        cur = cbpe_estimate(
            _hist(current.counts.get("score_bin", {}).get("*")), cal, self.threshold
        )
        ref = cbpe_estimate(
            _hist(reference.counts.get("score_bin", {}).get("*")), cal, self.threshold
        )
        if cur is None or ref is None or cur["n"] < self.min_rows:
            return []
        drop = ref["accuracy"] - cur["accuracy"]
        band = 3.0 * math.hypot(cur["sampling_error"], ref["sampling_error"])
        flagged = drop > self.min_drop and drop > band
        detail = (
            f"estimated accuracy {cur['accuracy']:.2%} vs {ref['accuracy']:.2%} in the "
            f"reference (sampling error {cur['sampling_error']:.2%}; CBPE on "
            f"{int(cur['n'])} unlabelled rows)" + (" — dropping" if flagged else "")
        )
        return [
            Finding(
                self.name,
                window_start,
                "accuracy",
                cur["accuracy"],
                bool(flagged),
                detail,
                {"current": cur, "reference": ref},
            )
        ]

    def to_dict(self) -> dict[str, Any]:
        return {
            "check": self.name,
            "positive": self.positive,
            "threshold": self.threshold,
            "min_rows": self.min_rows,
            "min_drop": self.min_drop,
        }
