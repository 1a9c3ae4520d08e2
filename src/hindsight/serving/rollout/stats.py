"""The statistics that judge a canary, shadow or A/B rollout.

Each ``compare_*`` function answers one question about one metric (is the canary's
latency, error rate or prediction distribution worse than the baseline's?) as a
:class:`MetricJudgement` whose status is ``"better"``, ``"same"``, ``"worse"``,
``"different"`` (a change of unknown direction, which counts as worse for a canary) or
``"insufficient"`` (too few samples to judge). :func:`verdict` combines them into pass,
marginal or fail the way Kayenta's canary judge does. As there, a metric is worse only when
the difference is statistically significant *and* larger than an allowed effect, so a huge
sample cannot fail a rollout over a 0.1 ms shift.

The tests and the choices made:

- latency: a two-sided Mann-Whitney U test plus the Hodges-Lehmann shift (the median of
  all canary - baseline differences), computed exactly, with no subsampling: up to 4
  million pairs from all of them; above that by searching for the shift, counting the
  pairs below a candidate with ``searchsorted`` (O(n log m) a step; the search starts from
  the differences of evenly spaced quantiles, then interpolates, falling back to bisection),
  until at most a million pairs are left in the window, which are then listed and sorted
  (about 1 s for a million requests a side). Its interval is the Moses/Hollander-Wolfe one from the normal approximation
  of U, with the no-ties variance, its rank rounded down (so a little conservative).
- rates: Fisher's exact test when a cell of the 2x2 table is below 5, else the pooled
  two-proportion z-test; the difference has a Newcombe (hybrid Wilson score) interval.
- prediction distributions: the two-sample Kolmogorov-Smirnov test for numeric outputs
  with more than 20 distinct values (pooled), else a chi-square test of the 2 x k table,
  with the Jensen-Shannon distance (base 2) as the effect size.
- sequential: the mixture SPRT of Johari, Koomen, Pekelis & Walsh ("Peeking at A/B
  tests", KDD 2017), whose p-value stays valid however often it is looked at.
- shadow and A/B: McNemar's test on paired correctness, an agreement rate with a Wilson
  interval, the relative lift with a delta-method interval, and the sample ratio mismatch
  check: a chi-square goodness of fit at alpha = 0.001, the usual SRM threshold (the check
  runs on every experiment, and a false alarm stops a good one).

>>> from hindsight.serving.rollout.stats import compare_rates, verdict
>>> errors = compare_rates(20, 10_000, 95, 10_000, name="error_rate", critical=True)
>>> errors.status, errors.test
('worse', 'two-proportion z-test')
>>> verdict([errors]).decision
'fail'
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy import special, stats

from hindsight._plain import plain_fields
from hindsight._validation import Interval, validate_params
from hindsight.errors import ConfigError

__all__ = [
    "DEFAULT_TAU",
    "STATUSES",
    "AgreementResult",
    "Count",
    "LiftResult",
    "MetricJudgement",
    "RolloutVerdict",
    "SequentialResult",
    "TestResult",
    "agreement",
    "always_valid_p",
    "compare_distributions",
    "compare_latency",
    "compare_rates",
    "hodges_lehmann",
    "mcnemar",
    "mcnemar_counts",
    "msprt_means",
    "msprt_rates",
    "rate_lift",
    "sample_ratio_mismatch",
    "verdict",
    "wilson_interval",
]

#: A count: a Python int or a NumPy integer (as summed from an array).
Count = int | np.integer[Any]
STATUSES = ("better", "same", "worse", "different", "insufficient")
#: Mixing scale of :func:`msprt_rates`: a 1 percentage-point difference. Set ``tau`` near
#: the smallest difference worth detecting; the test is valid for any choice.
DEFAULT_TAU = 0.01
_BAD = frozenset({"worse", "different"})
_EXACT_PAIRS = 4_000_000
_WINDOW = 1_000_000
_ALPHA = Interval(float, 0.0, 1.0, closed="neither")
_COUNT = Interval(int, 0)
_TRIALS = Interval(int, 1)
_NONNEG = Interval(float, 0.0)
_MIN_SAMPLES = Interval(int, 1)
_TAU = Interval(float, 0.0, closed="neither", allow_none=True)


# -- results ------------------------------------------------------------------------
@dataclass(frozen=True)
class MetricJudgement:
    """How the canary compares with the baseline on one metric."""

    name: str
    status: str
    critical: bool = False
    baseline: dict[str, Any] = field(default_factory=dict)
    canary: dict[str, Any] = field(default_factory=dict)
    statistic: float | None = None
    p_value: float | None = None
    effect: float | None = None
    effect_ci: tuple[float, float] | None = None
    test: str = ""
    detail: str = ""

    def to_dict(self) -> dict[str, Any]:
        return plain_fields(self)


@dataclass(frozen=True)
class TestResult:
    """One hypothesis test: its statistic, p-value and whether p < alpha."""

    __test__ = False  # not a pytest test class

    test: str
    statistic: float
    p_value: float
    alpha: float
    significant: bool
    detail: str
    data: dict[str, Any] = field(default_factory=dict)

    @property
    def mismatch(self) -> bool:
        """For :func:`sample_ratio_mismatch`: the traffic split is not the one configured."""
        return self.significant

    def to_dict(self) -> dict[str, Any]:
        return plain_fields(self)


@dataclass(frozen=True)
class AgreementResult:
    """How often a shadow model's outputs agree with the live model's."""

    n: int
    agreed: int
    rate: float
    ci: tuple[float, float]
    confidence: float
    atol: float | None
    detail: str

    def to_dict(self) -> dict[str, Any]:
        return plain_fields(self)


@dataclass(frozen=True)
class LiftResult:
    """Treatment against control on a rate: relative lift, difference and their intervals."""

    control_events: int
    control_n: int
    treatment_events: int
    treatment_n: int
    control_rate: float
    treatment_rate: float
    lift: float | None
    lift_ci: tuple[float, float] | None
    difference: float
    difference_ci: tuple[float, float]
    statistic: float
    p_value: float
    confidence: float
    detail: str

    def to_dict(self) -> dict[str, Any]:
        return plain_fields(self)


@dataclass(frozen=True)
class SequentialResult:
    """One look of the mixture SPRT: ``decision`` is "reject", "continue" or "inconclusive"."""

    name: str
    decision: str
    reject: bool
    effect: float | None
    effect_ci: tuple[float, float] | None
    variance: float | None
    tau: float
    likelihood_ratio: float | None
    log_likelihood_ratio: float | None
    p_value: float
    alpha: float
    baseline: dict[str, Any]
    canary: dict[str, Any]
    test: str
    detail: str

    def to_dict(self) -> dict[str, Any]:
        return plain_fields(self)


@dataclass(frozen=True)
class RolloutVerdict:
    """The combined decision on a rollout: "pass", "marginal" or "fail"."""

    decision: str
    score: float | None
    reasons: tuple[str, ...]
    judgements: tuple[MetricJudgement, ...]

    def to_dict(self) -> dict[str, Any]:
        return plain_fields(self)


# -- input checks and small formulas ------------------------------------------------
def _sample(values: ArrayLike, what: str, owner: str) -> NDArray[np.float64]:
    try:
        arr = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ConfigError(
            f"{owner}: {what} must be numbers ({exc}). Convert the values to floats first."
        ) from exc
    if arr.ndim != 1:
        raise ConfigError(
            f"{owner}: {what} must be a one-dimensional sequence of numbers; got shape "
            f"{arr.shape}. Pass one value per request."
        )
    if arr.size == 0:
        raise ConfigError(
            f"{owner}: {what} is empty; a sample needs at least one value. Wait for traffic "
            "on both sides before comparing."
        )
    bad = int(np.count_nonzero(~np.isfinite(arr)))
    if bad:
        raise ConfigError(
            f"{owner}: {what} holds {bad} NaN or infinite values. Drop or fill them first."
        )
    return arr


def _array(values: ArrayLike, what: str, owner: str) -> NDArray[Any]:
    try:
        arr = np.asarray(values)
    except ValueError as exc:  # ragged nested sequences
        raise ConfigError(
            f"{owner}: {what} could not be read as an array ({exc}). Pass one value per request."
        ) from exc
    if arr.ndim == 0:
        raise ConfigError(f"{owner}: {what} must be a sequence; got a single value {values!r}.")
    if arr.size == 0:
        raise ConfigError(
            f"{owner}: {what} is empty; a sample needs at least one value. Wait for traffic "
            "on both sides before comparing."
        )
    return arr


def _events_within(owner: str, which: str, events: int, n: int) -> None:
    if events > n:
        raise ConfigError(
            f"{owner}: {which} has {events} events out of {n} trials; events cannot exceed "
            "trials. Pass the number of requests (trials) as n."
        )


def _z(confidence: float) -> float:
    return float(special.ndtri(0.5 + confidence / 2.0))


def _wilson(k: int, n: int, z: float) -> tuple[float, float]:
    p = k / n
    z2 = z * z
    denom = 1.0 + z2 / n
    centre = (p + z2 / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n)) / denom
    return max(0.0, centre - half), min(1.0, centre + half)


def wilson_interval(k: Count, n: Count, *, confidence: float = 0.95) -> tuple[float, float]:
    """Wilson score interval for a proportion of k successes in n trials."""
    owner = "wilson_interval"
    validate_params(
        owner,
        {"k": k, "n": n, "confidence": confidence},
        {"k": _COUNT, "n": _TRIALS, "confidence": Interval(float, 0.0, 1.0, closed="neither")},
    )
    _events_within(owner, "the sample", int(k), int(n))
    return _wilson(int(k), int(n), _z(confidence))


def _newcombe(x1: int, n1: int, x2: int, n2: int, z: float) -> tuple[float, float]:
    """Newcombe's hybrid score interval (1998, method 10) for p1 - p2."""
    p1, p2 = x1 / n1, x2 / n2
    l1, u1 = _wilson(x1, n1, z)
    l2, u2 = _wilson(x2, n2, z)
    d = p1 - p2
    return d - math.hypot(p1 - l1, u2 - p2), d + math.hypot(u1 - p1, p2 - l2)


def _pooled_z(x_ref: int, n_ref: int, x_new: int, n_new: int) -> tuple[float, float]:
    """Pooled two-proportion z for p_new - p_ref and its two-sided p-value."""
    pool = (x_ref + x_new) / (n_ref + n_new)
    se = math.sqrt(pool * (1 - pool) * (1 / n_ref + 1 / n_new))
    if se == 0.0:
        return 0.0, 1.0
    z = (x_new / n_new - x_ref / n_ref) / se
    return z, float(2.0 * special.ndtr(-abs(z)))


def _p(p: float | None) -> str:
    return "n/a" if p is None else f"{p:.2g}"


def _ms(x: float, sign: bool = False) -> str:
    fmt = ("+" if sign else "") + (".3g" if abs(x) < 10 else ".1f")
    return format(x, fmt)


# -- latency ------------------------------------------------------------------------
def _count_at_most(x: NDArray[np.float64], y: NDArray[np.float64], d: float) -> int:
    """Pairs with x_i - y_j <= d (x, y sorted)."""
    return int(x.size * y.size - np.searchsorted(y, x - d, side="left").sum())


def _differences_in(
    x: NDArray[np.float64], y: NDArray[np.float64], lo: float, hi: float
) -> NDArray[np.float64]:
    """Every x_i - y_j counted in (lo, hi] by :func:`_count_at_most`, sorted."""
    start = np.searchsorted(y, x - hi, side="left")
    lengths = np.searchsorted(y, x - lo, side="left") - start
    rows = np.repeat(np.arange(x.size), lengths)
    cols = np.repeat(start - (np.cumsum(lengths) - lengths), lengths) + np.arange(rows.size)
    return np.sort(x[rows] - y[cols])


def _smallest_above(x: NDArray[np.float64], y: NDArray[np.float64], d: float) -> float:
    """The smallest difference x_i - y_j strictly greater than d (x, y sorted)."""
    idx = np.searchsorted(y, x - d, side="left") - 1
    ok = idx >= 0
    diffs = x[ok] - y[idx[ok]]
    diffs = diffs[diffs > d]
    return float(diffs.min()) if diffs.size else d


def _quantile_grid(x: NDArray[np.float64], size: int = 1000) -> NDArray[np.float64]:
    return x[np.linspace(0, x.size - 1, min(size, x.size)).round().astype(np.intp)]


def _window(
    x: NDArray[np.float64], y: NDArray[np.float64], k: int
) -> tuple[int, int, NDArray[np.float64]]:
    """A window (lo, hi] of shifts holding the k-th difference, with its differences listed.

    Narrows the window by interpolating on the pair counts, falling back to bisection
    when that stalls, until at most ``_WINDOW`` pairs fall in it. Returns the
    pair counts at or below both ends and the window's sorted differences; when one value
    is tied across more pairs than that, the list is that single value.
    """
    lo = float(x[0] - y[-1])
    hi = float(x[-1] - y[0])
    lo, hi = lo - 1.0 - abs(lo), hi + 1.0 + abs(hi)  # strictly outside every difference
    c_lo, c_hi = 0, x.size * y.size
    tol = 1e-12 * (hi - lo)
    first = interpolate = True
    while c_hi - c_lo > _WINDOW:
        if hi - lo <= tol:  # a huge tie: the window's differences are one value
            return c_lo, c_hi, np.full(1, _smallest_above(x, y, lo))
        width = c_hi - c_lo
        if first:  # start from the differences of 1,000 evenly spaced quantiles a side
            grid = np.subtract.outer(_quantile_grid(x), _quantile_grid(y)).ravel()
            level = k / (x.size * y.size)
            probes = list(np.quantile(grid, [max(level - 0.002, 0.0), min(level + 0.002, 1.0)]))
            first = False
        elif interpolate:  # aim just either side of rank k, as if the counts were linear
            aims = (k - _WINDOW // 4, k + _WINDOW // 4)
            probes = [lo + (hi - lo) * ((aim - c_lo) / width) for aim in aims]
        else:
            probes = [lo + (hi - lo) / 2.0]
        for probe in probes:
            if lo < probe < hi:
                count = _count_at_most(x, y, probe)
                if count >= k:
                    hi, c_hi = probe, count
                else:
                    lo, c_lo = probe, count
        interpolate = c_hi - c_lo <= width // 2  # bisect next when interpolation stalls
    return c_lo, c_hi, _differences_in(x, y, lo, hi)


def _pairwise_order_statistics(
    x: NDArray[np.float64], y: NDArray[np.float64], ks: Sequence[int]
) -> dict[int, float]:
    """The k-th smallest (1-based) of all x_i - y_j, for each k; x and y sorted."""
    wanted = sorted(set(ks))
    if x.size * y.size <= _EXACT_PAIRS:
        diffs = np.subtract.outer(x, y).ravel()
        part = np.partition(diffs, [k - 1 for k in wanted])
        return {k: float(part[k - 1]) for k in wanted}
    out: dict[int, float] = {}
    c_lo, c_hi, diffs = 0, 0, np.empty(0)
    for k in wanted:  # the median's two ranks usually share a window
        if not c_lo < k <= c_hi:
            c_lo, c_hi, diffs = _window(x, y, k)
        out[k] = float(diffs[min(k - c_lo, diffs.size) - 1])
    return out


def hodges_lehmann(
    x: ArrayLike, y: ArrayLike, *, confidence: float | None = 0.95
) -> tuple[float, tuple[float, float] | None]:
    """The Hodges-Lehmann shift of x over y (median of all x_i - y_j) and its interval.

    The interval is ``(D[C], D[N + 1 - C])`` over the sorted differences D, with
    ``C = floor(N/2 - z * sqrt(n m (n + m + 1) / 12))``; None when C < 1 (samples too
    small for that confidence) or when ``confidence`` is None.
    """
    owner = "hodges_lehmann"
    validate_params(
        owner,
        {"confidence": confidence},
        {"confidence": Interval(float, 0.0, 1.0, closed="neither", allow_none=True)},
    )
    xs = np.sort(_sample(x, "x", owner))
    ys = np.sort(_sample(y, "y", owner))
    n_pairs = xs.size * ys.size
    mid = [(n_pairs + 1) // 2] if n_pairs % 2 else [n_pairs // 2, n_pairs // 2 + 1]
    ks = list(mid)
    rank = 0
    if confidence is not None:
        sd = math.sqrt(xs.size * ys.size * (xs.size + ys.size + 1) / 12.0)
        rank = math.floor(n_pairs / 2.0 - _z(confidence) * sd)
        if rank >= 1:
            ks += [rank, n_pairs + 1 - rank]
    order = _pairwise_order_statistics(xs, ys, ks)
    shift = float(np.mean([order[k] for k in mid]))
    ci = (order[rank], order[n_pairs + 1 - rank]) if confidence is not None and rank >= 1 else None
    return shift, ci


def _latency_summary(x: NDArray[np.float64]) -> dict[str, Any]:
    p50, p95, p99 = np.percentile(x, [50, 95, 99])
    return {
        "n": int(x.size),
        "mean": float(x.mean()),
        "median": float(p50),
        "p95": float(p95),
        "p99": float(p99),
    }


def compare_latency(
    baseline_ms: ArrayLike,
    canary_ms: ArrayLike,
    *,
    alpha: float = 0.05,
    allowed_increase: float = 0.10,
    min_effect_ms: float = 1.0,
    min_samples: int = 20,
    name: str = "latency",
    critical: bool = False,
) -> MetricJudgement:
    """Judge the canary's latency against the baseline's, Kayenta style.

    Worse when the two-sided Mann-Whitney p < alpha *and* the Hodges-Lehmann shift
    (canary - baseline) exceeds both ``min_effect_ms`` and ``allowed_increase`` times the
    baseline median; better symmetrically; otherwise the same. ``effect_ci`` is the
    shift's 1 - alpha interval. Fewer than ``min_samples`` on a side is "insufficient".
    """
    owner = "compare_latency"
    validate_params(
        owner,
        {
            "alpha": alpha,
            "allowed_increase": allowed_increase,
            "min_effect_ms": min_effect_ms,
            "min_samples": min_samples,
        },
        {
            "alpha": _ALPHA,
            "allowed_increase": _NONNEG,
            "min_effect_ms": _NONNEG,
            "min_samples": _MIN_SAMPLES,
        },
    )
    b = _sample(baseline_ms, "baseline_ms", owner)
    c = _sample(canary_ms, "canary_ms", owner)
    sb, sc = _latency_summary(b), _latency_summary(c)
    test = "Mann-Whitney U"
    if b.size < min_samples or c.size < min_samples:
        detail = (
            f"{name}: {b.size} baseline and {c.size} canary samples, fewer than the "
            f"{min_samples} per side needed; wait for more traffic"
        )
        return MetricJudgement(name, "insufficient", critical, sb, sc, test=test, detail=detail)
    if float(min(b.min(), c.min())) == float(max(b.max(), c.max())):
        u, p = b.size * c.size / 2.0, 1.0  # every value tied: no evidence of a shift
    else:
        method = "asymptotic" if max(b.size, c.size) > 500 else "auto"
        res = stats.mannwhitneyu(c, b, alternative="two-sided", method=method)
        u, p = float(res.statistic), float(res.pvalue)
    shift, ci = hodges_lehmann(c, b, confidence=1.0 - alpha)
    allowed = max(min_effect_ms, allowed_increase * abs(sb["median"]))
    status = "same"
    if p < alpha and shift > allowed:
        status = "worse"
    elif p < alpha and shift < -allowed:
        status = "better"
    detail = (
        f"{name} median {_ms(sc['median'])} ms vs {_ms(sb['median'])} ms, "
        f"p95 {_ms(sc['p95'])} ms vs {_ms(sb['p95'])} ms; Mann-Whitney p={_p(p)}, "
        f"shift {_ms(shift, sign=True)} ms {'>' if abs(shift) > allowed else '<='} "
        f"{_ms(allowed)} ms allowed"
    )
    return MetricJudgement(name, status, critical, sb, sc, u, p, shift, ci, test, detail)


# -- rates --------------------------------------------------------------------------
def compare_rates(
    baseline_events: Count,
    baseline_n: Count,
    canary_events: Count,
    canary_n: Count,
    *,
    alpha: float = 0.05,
    allowed_increase: float = 0.0,
    min_effect: float = 0.001,
    higher_is_worse: bool = True,
    min_samples: int = 100,
    name: str = "error_rate",
    critical: bool = False,
) -> MetricJudgement:
    """Judge a rate (errors, fallbacks, abstentions, or accuracy with higher_is_worse=False).

    Fisher's exact test when a cell of the 2x2 table is below 5, else the pooled
    two-proportion z-test. The effect is canary rate - baseline rate with a 1 - alpha
    Newcombe interval (95 % at the default alpha). Worse when p < alpha and the effect
    passes ``max(min_effect, allowed_increase * baseline rate)`` in the bad direction.
    """
    owner = "compare_rates"
    validate_params(
        owner,
        {
            "baseline_events": baseline_events,
            "baseline_n": baseline_n,
            "canary_events": canary_events,
            "canary_n": canary_n,
            "alpha": alpha,
            "allowed_increase": allowed_increase,
            "min_effect": min_effect,
            "min_samples": min_samples,
        },
        {
            "baseline_events": _COUNT,
            "baseline_n": _COUNT,
            "canary_events": _COUNT,
            "canary_n": _COUNT,
            "alpha": _ALPHA,
            "allowed_increase": _NONNEG,
            "min_effect": _NONNEG,
            "min_samples": _MIN_SAMPLES,
        },
    )
    xb, nb, xc, nc = int(baseline_events), int(baseline_n), int(canary_events), int(canary_n)
    _events_within(owner, "the baseline", xb, nb)
    _events_within(owner, "the canary", xc, nc)
    sb = {"events": xb, "n": nb, "rate": xb / nb if nb else None}
    sc = {"events": xc, "n": nc, "rate": xc / nc if nc else None}
    if nb < min_samples or nc < min_samples:
        detail = (
            f"{name}: {nb} baseline and {nc} canary trials, fewer than the {min_samples} per "
            "side needed; wait for more traffic"
        )
        return MetricJudgement(
            name, "insufficient", critical, sb, sc, test="two-proportion", detail=detail
        )
    pb, pc = xb / nb, xc / nc
    if min(xb, nb - xb, xc, nc - xc) < 5:
        test = "Fisher exact"
        res = stats.fisher_exact([[xc, nc - xc], [xb, nb - xb]])
        statistic, p = float(res.statistic), float(res.pvalue)
    else:
        test = "two-proportion z-test"
        statistic, p = _pooled_z(xb, nb, xc, nc)
    effect = pc - pb
    ci = _newcombe(xc, nc, xb, nb, _z(1.0 - alpha))
    allowed = max(min_effect, allowed_increase * pb)
    bad = effect > allowed if higher_is_worse else effect < -allowed
    good = effect < -allowed if higher_is_worse else effect > allowed
    status = "worse" if p < alpha and bad else "better" if p < alpha and good else "same"
    detail = (
        f"{name} {pc:.2%} ({xc}/{nc}) vs {pb:.2%} ({xb}/{nb}); {test} p={_p(p)}, "
        f"difference {effect:+.2%} ({1 - alpha:.0%} CI {ci[0]:+.2%} to {ci[1]:+.2%}), "
        f"{'>' if abs(effect) > allowed else '<='} {allowed:.2%} allowed"
    )
    return MetricJudgement(name, status, critical, sb, sc, statistic, p, effect, ci, test, detail)


# -- prediction distributions -------------------------------------------------------
def _js_distance(p: NDArray[np.float64], q: NDArray[np.float64]) -> float:
    m = (p + q) / 2.0
    div = (special.rel_entr(p, m).sum() + special.rel_entr(q, m).sum()) / (2.0 * math.log(2.0))
    return math.sqrt(max(float(div), 0.0))


def compare_distributions(
    baseline: ArrayLike,
    canary: ArrayLike,
    *,
    alpha: float = 0.05,
    min_effect: float = 0.1,
    min_samples: int = 20,
    name: str = "predictions",
    critical: bool = False,
) -> MetricJudgement:
    """Judge whether the canary's outputs are distributed like the baseline's.

    Numeric outputs with more than 20 distinct values (both samples pooled): two-sample
    Kolmogorov-Smirnov, effect = the KS statistic. Otherwise categorical: chi-square on
    the 2 x k table (no continuity correction), effect = Jensen-Shannon distance (base 2)
    between the two frequency vectors. "different" when p < alpha and effect > min_effect.
    """
    owner = "compare_distributions"
    validate_params(
        owner,
        {"alpha": alpha, "min_effect": min_effect, "min_samples": min_samples},
        {
            "alpha": _ALPHA,
            "min_effect": Interval(float, 0.0, 1.0),
            "min_samples": _MIN_SAMPLES,
        },
    )
    b = _array(baseline, "baseline", owner)
    c = _array(canary, "canary", owner)
    if b.ndim != 1 or c.ndim != 1:
        raise ConfigError(
            f"{owner}: outputs must be one value per request; got shapes {b.shape} and "
            f"{c.shape}. Compare the predicted class or the top score instead."
        )
    numeric = b.dtype.kind in "iuf" and c.dtype.kind in "iuf"
    if numeric:
        b = _sample(b, "baseline", owner)
        c = _sample(c, "canary", owner)
    pooled = np.concatenate([b, c]) if numeric else np.concatenate([b, c]).astype(str)
    labels, codes = np.unique(pooled, return_inverse=True)
    continuous = numeric and labels.size > 20
    if continuous:
        sb: dict[str, Any] = {
            "n": int(b.size),
            "mean": float(b.mean()),
            "median": float(np.median(b)),
        }
        sc: dict[str, Any] = {
            "n": int(c.size),
            "mean": float(c.mean()),
            "median": float(np.median(c)),
        }
        test = "Kolmogorov-Smirnov"
    else:
        fb = np.bincount(codes[: b.size], minlength=labels.size).astype(np.float64)
        fc = np.bincount(codes[b.size :], minlength=labels.size).astype(np.float64)
        sb = {
            "n": int(b.size),
            "categories": int(np.count_nonzero(fb)),
            "top_share": float(fb.max() / b.size),
        }
        sc = {
            "n": int(c.size),
            "categories": int(np.count_nonzero(fc)),
            "top_share": float(fc.max() / c.size),
        }
        test = "chi-square"
    if b.size < min_samples or c.size < min_samples:
        detail = (
            f"{name}: {b.size} baseline and {c.size} canary outputs, fewer than the "
            f"{min_samples} per side needed; wait for more traffic"
        )
        return MetricJudgement(name, "insufficient", critical, sb, sc, test=test, detail=detail)
    if continuous:
        res = stats.ks_2samp(b, c)
        statistic, p = float(res.statistic), float(res.pvalue)
        effect = statistic
        what = f"median {sc['median']:.4g} vs {sb['median']:.4g}; Kolmogorov-Smirnov p={_p(p)}, D"
    else:
        share_b, share_c = fb / b.size, fc / c.size
        if labels.size < 2:
            statistic, p = 0.0, 1.0
        else:
            res = stats.chi2_contingency(np.vstack([fb, fc]), correction=False)
            statistic, p = float(res.statistic), float(res.pvalue)
        effect = _js_distance(share_b, share_c)
        top = int(np.argmax(np.abs(share_c - share_b)))
        what = (
            f"largest shift {str(labels[top])!r} {share_b[top]:.1%} to {share_c[top]:.1%}; "
            f"chi-square p={_p(p)}, Jensen-Shannon distance"
        )
    status = "different" if p < alpha and effect > min_effect else "same"
    detail = (
        f"{name}: {what} {effect:.3g} {'>' if effect > min_effect else '<='} {min_effect:g} allowed"
    )
    return MetricJudgement(name, status, critical, sb, sc, statistic, p, effect, None, test, detail)


# -- always-valid sequential test ---------------------------------------------------
def _mixture_log_lr(theta: ArrayLike, variance: ArrayLike, tau: float) -> NDArray[np.float64]:
    """log of the mSPRT likelihood ratio with a N(0, tau^2) mixing distribution."""
    t = np.asarray(theta, dtype=np.float64)
    v = np.asarray(variance, dtype=np.float64)
    tau2 = tau * tau
    return np.asarray(0.5 * np.log(v / (v + tau2)) + t * t * tau2 / (2.0 * v * (v + tau2)))


def _rates_theta_variance(
    xb: ArrayLike, nb: ArrayLike, xc: ArrayLike, nc: ArrayLike
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """theta_hat = p_c - p_b and its variance, pooled under H0 when a rate is 0 or 1."""
    xb_, nb_ = np.asarray(xb, dtype=np.float64), np.asarray(nb, dtype=np.float64)
    xc_, nc_ = np.asarray(xc, dtype=np.float64), np.asarray(nc, dtype=np.float64)
    pb, pc = xb_ / nb_, xc_ / nc_
    unpooled = pb * (1 - pb) / nb_ + pc * (1 - pc) / nc_
    pool = (xb_ + xc_) / (nb_ + nc_)
    pooled = pool * (1 - pool) * (1 / nb_ + 1 / nc_)
    degenerate = (pb * (1 - pb) == 0) | (pc * (1 - pc) == 0)
    return np.asarray(pc - pb), np.asarray(np.where(degenerate, pooled, unpooled))


def _sequential(
    name: str,
    test: str,
    theta: float | None,
    variance: float | None,
    tau: float,
    alpha: float,
    sb: dict[str, Any],
    sc: dict[str, Any],
    unit: str,
) -> SequentialResult:
    common: dict[str, Any] = {
        "name": name,
        "tau": tau,
        "alpha": alpha,
        "baseline": sb,
        "canary": sc,
        "test": test,
    }
    if theta is None or variance is None or not variance > 0.0:
        detail = (
            f"{name}: no variance to test yet (too few samples, or all values equal); "
            "keep collecting"
        )
        return SequentialResult(
            decision="inconclusive",
            reject=False,
            effect=theta,
            effect_ci=None,
            variance=variance,
            likelihood_ratio=None,
            log_likelihood_ratio=None,
            p_value=1.0,
            detail=detail,
            **common,
        )
    log_lr = float(_mixture_log_lr(theta, variance, tau))
    lr = math.exp(log_lr) if log_lr < 700.0 else math.inf
    p = min(1.0, math.exp(-log_lr))
    reject = log_lr >= -math.log(alpha)
    # The always-valid interval: every theta0 whose ratio Lambda(theta0) stays below 1/alpha.
    tau2 = tau * tau
    bound = -math.log(alpha) + 0.5 * math.log((variance + tau2) / variance)
    radius = math.sqrt(2.0 * variance * (variance + tau2) / tau2 * bound)
    ci = (theta - radius, theta + radius)
    fmt = (lambda v: f"{v:+.2%}") if unit == "%" else (lambda v: f"{v:+.4g}")
    detail = (
        f"{name}: difference {fmt(theta)} (always-valid {1 - alpha:.0%} CI {fmt(ci[0])} to "
        f"{fmt(ci[1])}); mSPRT likelihood ratio {lr:.3g} {'>=' if reject else '<'} "
        f"{1 / alpha:.3g}, always-valid p={_p(p)}; "
        + ("difference detected" if reject else "no difference yet, keep collecting")
    )
    return SequentialResult(
        decision="reject" if reject else "continue",
        reject=reject,
        effect=theta,
        effect_ci=ci,
        variance=variance,
        likelihood_ratio=lr,
        log_likelihood_ratio=log_lr,
        p_value=p,
        detail=detail,
        **common,
    )


def msprt_rates(
    baseline_events: Count,
    baseline_n: Count,
    canary_events: Count,
    canary_n: Count,
    *,
    alpha: float = 0.05,
    tau: float | None = None,
    name: str = "error_rate",
) -> SequentialResult:
    """Mixture SPRT for p_c - p_b (Johari et al. 2017), valid under continuous peeking.

    With theta_hat = p_c - p_b, V = p_b(1 - p_b)/n_b + p_c(1 - p_c)/n_c (pooled under H0
    when a rate is 0 or 1) and a N(0, tau^2) mixture::

        Lambda = sqrt(V / (V + tau^2)) * exp(theta_hat^2 tau^2 / (2 V (V + tau^2)))

    H0 (no difference) is rejected when Lambda >= 1/alpha; p = min(1, 1/Lambda) at this
    look (take :func:`always_valid_p` over the looks). ``tau`` defaults to
    :data:`DEFAULT_TAU`. ``effect_ci`` is the always-valid interval {theta: Lambda(theta) <
    1/alpha}. No trials yet, or V = 0, gives "inconclusive".
    """
    owner = "msprt_rates"
    validate_params(
        owner,
        {
            "baseline_events": baseline_events,
            "baseline_n": baseline_n,
            "canary_events": canary_events,
            "canary_n": canary_n,
            "alpha": alpha,
            "tau": tau,
        },
        {
            "baseline_events": _COUNT,
            "baseline_n": _COUNT,
            "canary_events": _COUNT,
            "canary_n": _COUNT,
            "alpha": _ALPHA,
            "tau": _TAU,
        },
    )
    xb, nb, xc, nc = int(baseline_events), int(baseline_n), int(canary_events), int(canary_n)
    _events_within(owner, "the baseline", xb, nb)
    _events_within(owner, "the canary", xc, nc)
    tau_ = DEFAULT_TAU if tau is None else float(tau)
    sb = {"events": xb, "n": nb, "rate": xb / nb if nb else None}
    sc = {"events": xc, "n": nc, "rate": xc / nc if nc else None}
    theta: float | None = None
    variance: float | None = None
    if nb and nc:
        t, v = _rates_theta_variance(xb, nb, xc, nc)
        theta, variance = float(t), float(v)
    return _sequential(name, "mSPRT (proportions)", theta, variance, tau_, alpha, sb, sc, "%")


def msprt_means(
    baseline: ArrayLike,
    canary: ArrayLike,
    *,
    alpha: float = 0.05,
    tau: float | None = None,
    name: str = "latency",
) -> SequentialResult:
    """Mixture SPRT for mean(canary) - mean(baseline) of a continuous metric (latency).

    As :func:`msprt_rates`, with V = s_b^2/n_b + s_c^2/n_c (sample variances). ``tau``
    defaults to a tenth of the pooled standard deviation (a 0.1 standardised effect).
    Fewer than 2 values on a side, or no spread at all, gives "inconclusive".
    """
    owner = "msprt_means"
    validate_params(owner, {"alpha": alpha, "tau": tau}, {"alpha": _ALPHA, "tau": _TAU})
    b = _sample(baseline, "baseline", owner)
    c = _sample(canary, "canary", owner)
    sb = {"n": int(b.size), "mean": float(b.mean())}
    sc = {"n": int(c.size), "mean": float(c.mean())}
    theta: float | None = None
    variance: float | None = None
    if b.size >= 2 and c.size >= 2:
        vb, vc = float(b.var(ddof=1)), float(c.var(ddof=1))
        sb["std"], sc["std"] = math.sqrt(vb), math.sqrt(vc)
        theta, variance = sc["mean"] - sb["mean"], vb / b.size + vc / c.size
    if tau is not None:
        tau_ = float(tau)
    else:
        tau_ = 0.1 * float(np.concatenate([b, c]).std())
        if not tau_ > 0.0:
            variance = None
            tau_ = math.nan
    return _sequential(name, "mSPRT (means)", theta, variance, tau_, alpha, sb, sc, "")


def always_valid_p(history: Iterable[Any]) -> NDArray[np.float64]:
    """The running minimum of per-look mSPRT p-values: the always-valid p after each look.

    ``history`` is a sequence of p-values or :class:`SequentialResult` (oldest first), or a
    2-D array with one sequence per row; the minimum runs along the last axis.
    """
    if isinstance(history, np.ndarray):
        values = history.astype(np.float64)
    else:
        values = np.asarray(
            [h.p_value if isinstance(h, SequentialResult) else h for h in history],
            dtype=np.float64,
        )
    if values.size == 0:
        raise ConfigError("always_valid_p: the history is empty; pass at least one look.")
    if not np.all((values >= 0.0) & (values <= 1.0)):
        raise ConfigError(
            "always_valid_p: p-values must lie in [0, 1] (NaN is not allowed). Pass the "
            "per-look p-values or SequentialResult objects."
        )
    return np.asarray(np.minimum.accumulate(values, axis=-1))


# -- shadow comparisons -------------------------------------------------------------
def mcnemar_counts(b: Count, c: Count, *, alpha: float = 0.05) -> TestResult:
    """McNemar's test from the discordant pairs.

    ``b``: baseline right, candidate wrong; ``c``: baseline wrong, candidate right. The
    exact binomial test (``binomtest(b, b + c, 0.5)``) when b + c < 25, else chi-square
    with continuity correction, ``max(|b - c| - 1, 0)^2 / (b + c)`` on 1 degree of freedom.
    """
    owner = "mcnemar_counts"
    validate_params(
        owner, {"b": b, "c": c, "alpha": alpha}, {"b": _COUNT, "c": _COUNT, "alpha": _ALPHA}
    )
    b, c = int(b), int(c)
    n = b + c
    if n == 0:
        test, statistic, p = "McNemar (no discordant pairs)", 0.0, 1.0
    elif n < 25:
        test, statistic = "McNemar exact binomial", float(min(b, c))
        p = float(stats.binomtest(b, n, 0.5).pvalue)
    else:
        test = "McNemar chi-square (continuity corrected)"
        statistic = max(abs(b - c) - 1, 0) ** 2 / n
        p = float(stats.chi2.sf(statistic, 1))
    better = "candidate" if c > b else "baseline" if b > c else "neither"
    detail = (
        f"candidate right where the baseline was wrong {c} times, wrong where it was right "
        f"{b} times; {test} p={_p(p)} ({better} better)"
    )
    return TestResult(
        test, statistic, p, alpha, p < alpha, detail, {"b": b, "c": c, "discordant": n}
    )


def _booleans(values: ArrayLike, what: str, owner: str) -> NDArray[np.bool_]:
    arr = _array(values, what, owner)
    if arr.dtype.kind == "b":
        return arr.ravel()
    if arr.dtype.kind in "iuf" and np.all((arr == 0) | (arr == 1)):
        return arr.ravel().astype(bool)
    raise ConfigError(f"{owner}: {what} must be booleans (or 0/1), one per request.")


def mcnemar(
    baseline_correct: ArrayLike, candidate_correct: ArrayLike, *, alpha: float = 0.05
) -> TestResult:
    """McNemar's test on paired correctness (the same requests scored for both models)."""
    owner = "mcnemar"
    a = _booleans(baseline_correct, "baseline_correct", owner)
    k = _booleans(candidate_correct, "candidate_correct", owner)
    if a.size != k.size:
        raise ConfigError(
            f"{owner}: baseline_correct has {a.size} values and candidate_correct {k.size}; "
            "pass one pair per request."
        )
    res = mcnemar_counts(int(np.count_nonzero(a & ~k)), int(np.count_nonzero(~a & k)), alpha=alpha)
    data = {
        **res.data,
        "n": int(a.size),
        "baseline_accuracy": float(a.mean()),
        "candidate_accuracy": float(k.mean()),
    }
    return dataclasses.replace(res, data=data)


def agreement(
    a: ArrayLike,
    b: ArrayLike,
    *,
    atol: float | None = None,
    rtol: float = 0.0,
    confidence: float = 0.95,
) -> AgreementResult:
    """Share of requests where two models agree, with a Wilson score interval.

    Categorical outputs agree when equal. With ``atol`` (numeric outputs) they agree when
    ``|a - b| <= atol + rtol * |b|``; 2-D numeric outputs (a row per request, e.g. class
    probabilities) agree when every entry of the row does.
    """
    owner = "agreement"
    validate_params(
        owner,
        {"atol": atol, "rtol": rtol, "confidence": confidence},
        {
            "atol": Interval(float, 0.0, allow_none=True),
            "rtol": _NONNEG,
            "confidence": Interval(float, 0.0, 1.0, closed="neither"),
        },
    )
    x = _array(a, "a", owner)
    y = _array(b, "b", owner)
    if x.shape[0] != y.shape[0]:
        raise ConfigError(
            f"{owner}: a has {x.shape[0]} outputs and b {y.shape[0]}; pass one pair per request."
        )
    if atol is not None:
        if x.dtype.kind not in "iufb" or y.dtype.kind not in "iufb" or x.shape != y.shape:
            raise ConfigError(
                f"{owner}: atol needs numeric outputs of the same shape; got {x.dtype} "
                f"{x.shape} and {y.dtype} {y.shape}. Leave atol out for categorical outputs."
            )
        close = np.isclose(x.astype(np.float64), y.astype(np.float64), rtol=rtol, atol=atol)
        same = np.asarray(close.reshape(close.shape[0], -1).all(axis=1), dtype=bool)
    elif x.ndim != 1 or y.ndim != 1:
        raise ConfigError(
            f"{owner}: categorical outputs must be one-dimensional; pass atol for arrays."
        )
    elif x.dtype.kind in "iufb" and y.dtype.kind in "iufb":
        same = np.asarray(x == y, dtype=bool)
    else:
        same = np.asarray(x.astype(object) == y.astype(object), dtype=bool)
    n, agreed = int(same.size), int(np.count_nonzero(same))
    ci = _wilson(agreed, n, _z(confidence))
    detail = (
        f"agreement {agreed / n:.2%} ({agreed}/{n}), {confidence:.0%} Wilson CI "
        f"{ci[0]:.2%} to {ci[1]:.2%}" + (f", tolerance {atol:g}" if atol is not None else "")
    )
    return AgreementResult(n, agreed, agreed / n, ci, confidence, atol, detail)


# -- A/B ----------------------------------------------------------------------------
def rate_lift(
    control_events: Count,
    control_n: Count,
    treatment_events: Count,
    treatment_n: Count,
    *,
    confidence: float = 0.95,
) -> LiftResult:
    """Relative lift p_t / p_c - 1 and absolute difference p_t - p_c of a rate.

    The lift's interval comes from the delta method on the log ratio,
    ``var(log(p_t/p_c)) = (1 - p_t)/x_t + (1 - p_c)/x_c`` (None when either arm has no
    events); the difference has a Newcombe interval; the p-value is the pooled
    two-proportion z-test's.
    """
    owner = "rate_lift"
    validate_params(
        owner,
        {
            "control_events": control_events,
            "control_n": control_n,
            "treatment_events": treatment_events,
            "treatment_n": treatment_n,
            "confidence": confidence,
        },
        {
            "control_events": _COUNT,
            "control_n": _TRIALS,
            "treatment_events": _COUNT,
            "treatment_n": _TRIALS,
            "confidence": Interval(float, 0.0, 1.0, closed="neither"),
        },
    )
    xc, nc, xt, nt = int(control_events), int(control_n), int(treatment_events), int(treatment_n)
    _events_within(owner, "the control", xc, nc)
    _events_within(owner, "the treatment", xt, nt)
    pc, pt = xc / nc, xt / nt
    z = _z(confidence)
    lift: float | None = None
    lift_ci: tuple[float, float] | None = None
    if xc > 0:
        lift = pt / pc - 1.0
        if xt > 0:
            se = math.sqrt((1 - pt) / xt + (1 - pc) / xc)
            log_ratio = math.log(pt / pc)
            lift_ci = (math.exp(log_ratio - z * se) - 1.0, math.exp(log_ratio + z * se) - 1.0)
    diff_ci = _newcombe(xt, nt, xc, nc, z)
    statistic, p = _pooled_z(xc, nc, xt, nt)
    lift_text = "lift undefined (no control events)" if lift is None else f"lift {lift:+.2%}"
    if lift_ci is not None:
        lift_text += f" ({confidence:.0%} CI {lift_ci[0]:+.2%} to {lift_ci[1]:+.2%})"
    detail = (
        f"treatment {pt:.2%} ({xt}/{nt}) vs control {pc:.2%} ({xc}/{nc}): {lift_text}, "
        f"difference {pt - pc:+.2%} (CI {diff_ci[0]:+.2%} to {diff_ci[1]:+.2%}); z-test p={_p(p)}"
    )
    return LiftResult(
        xc, nc, xt, nt, pc, pt, lift, lift_ci, pt - pc, diff_ci, statistic, p, confidence, detail
    )


def sample_ratio_mismatch(
    observed_counts: ArrayLike, expected_shares: ArrayLike, *, alpha: float = 0.001
) -> TestResult:
    """Is the traffic split the configured one? Chi-square goodness of fit.

    Expected counts are ``shares / sum(shares) * total`` (so [1, 1] and [0.5, 0.5] mean the
    same). ``mismatch`` is p < alpha; 0.001 is the usual SRM threshold, strict because the
    check runs on every experiment. A mismatch means the comparison cannot be trusted.
    """
    owner = "sample_ratio_mismatch"
    validate_params(owner, {"alpha": alpha}, {"alpha": _ALPHA})
    obs = _array(observed_counts, "observed_counts", owner).ravel()
    shares = _sample(np.asarray(expected_shares).ravel(), "expected_shares", owner)
    if obs.dtype.kind not in "iuf" or not np.all(np.isfinite(obs)):
        raise ConfigError(f"{owner}: observed_counts must be finite counts, one per group.")
    counts = obs.astype(np.float64)
    if np.any(counts < 0) or np.any(counts != np.round(counts)):
        raise ConfigError(
            f"{owner}: observed_counts must be non-negative whole numbers; got {obs.tolist()}."
        )
    if counts.size < 2 or counts.size != shares.size:
        raise ConfigError(
            f"{owner}: need at least 2 groups and one expected share per group; got "
            f"{counts.size} counts and {shares.size} shares."
        )
    if np.any(shares <= 0):
        raise ConfigError(f"{owner}: expected_shares must all be positive; got {shares.tolist()}.")
    total = float(counts.sum())
    if total == 0:
        raise ConfigError(f"{owner}: no units observed yet; wait for traffic before checking.")
    expected = shares / shares.sum() * total
    res = stats.chisquare(counts, expected)
    statistic, p = float(res.statistic), float(res.pvalue)
    observed_text = " / ".join(f"{v:.1%}" for v in counts / total)
    expected_text = " / ".join(f"{v:.1%}" for v in shares / shares.sum())
    detail = (
        f"split {observed_text} of {int(total)} against expected {expected_text}; "
        f"chi-square p={_p(p)} "
        + (
            f"< {alpha:g}: sample ratio mismatch, do not trust the comparison"
            if p < alpha
            else f">= {alpha:g}: split as configured"
        )
    )
    data = {"observed": counts.astype(int).tolist(), "expected": expected.tolist()}
    return TestResult("chi-square goodness of fit", statistic, p, alpha, p < alpha, detail, data)


# -- verdict ------------------------------------------------------------------------
def verdict(
    judgements: Iterable[MetricJudgement],
    *,
    marginal_if_any: Sequence[str] = ("same_underpowered",),
) -> RolloutVerdict:
    """Combine metric judgements into "pass", "marginal" or "fail".

    Fail: a critical metric is worse or different, or at least half of the non-critical
    metrics are. Marginal: a non-critical metric is worse or different, a metric is
    "insufficient", or a metric has a status listed in ``marginal_if_any`` (statuses a
    caller adds, such as "same_underpowered"). Pass otherwise. ``score`` is Kayenta's: the
    percentage of metrics with data (not "insufficient") that are not worse or different.
    """
    js = tuple(judgements)
    if not js:
        raise ConfigError("verdict: no judgements given; compare at least one metric first.")
    extra = tuple(marginal_if_any)
    for j in js:
        if not isinstance(j, MetricJudgement):
            raise ConfigError(f"verdict: expected MetricJudgement objects; got {type(j).__name__}.")
        if j.status not in STATUSES and j.status not in extra:
            raise ConfigError(
                f"verdict: metric {j.name!r} has status {j.status!r}; use one of "
                f"{', '.join(STATUSES + extra)}."
            )
    critical_bad = [j for j in js if j.critical and j.status in _BAD]
    others = [j for j in js if not j.critical]
    others_bad = [j for j in others if j.status in _BAD]
    insufficient = [j for j in js if j.status == "insufficient"]
    flagged = [j for j in js if j.status in extra and j.status not in STATUSES]
    scored = [j for j in js if j.status != "insufficient"]
    score = 100.0 * sum(j.status not in _BAD for j in scored) / len(scored) if scored else None

    reasons = [f"critical metric {j.name!r} is {j.status}: {j.detail}" for j in critical_bad]
    half = bool(others_bad) and 2 * len(others_bad) >= len(others)
    if half:
        reasons.append(
            f"{len(others_bad)} of {len(others)} non-critical metrics are worse or different "
            "(half or more fails the rollout)"
        )
    reasons += [f"metric {j.name!r} is {j.status}: {j.detail}" for j in others_bad]
    reasons += [f"metric {j.name!r} has insufficient data: {j.detail}" for j in insufficient]
    reasons += [f"metric {j.name!r} is {j.status}: {j.detail}" for j in flagged]
    if critical_bad or half:
        decision = "fail"
    elif others_bad or insufficient or flagged:
        decision = "marginal"
    else:
        decision = "pass"
        reasons.append(f"all {len(js)} metrics are the same or better")
    score_text = "n/a" if score is None else f"{score:.0f}%"
    reasons.append(f"score {score_text} of {len(scored)} metrics with data")
    return RolloutVerdict(decision, score, tuple(reasons), js)
