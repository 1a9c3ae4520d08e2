"""Label-free warning signals per window of a deployed model's prediction log.

Three checks that need no ground truth, each comparing every current window with a
reference window set:

* :func:`confidence_shift` — did the model become less (or more) sure of itself?
  Mean top-class confidence per window against the reference (Welch's t-test),
  the share of low-confidence predictions (two-proportion test with a Newcombe
  interval, via :func:`~hindsight.serving.rollout.stats.compare_rates`), and for
  class-probability matrices the mean entropy of each prediction.
* :func:`silent_failures` — is the model quietly broken? NaN/None bursts and
  constant or near-constant outputs (one value dominating, or a standard
  deviation that has collapsed against the reference).
* :func:`rate_shift` — serving-layer rates (fallbacks, abstentions, timeouts) per
  window against the reference rate.

Tests run once per window, so p-values are adjusted across windows with the
Benjamini-Hochberg procedure (:func:`bh_adjust`) before a window is flagged; a
flag also needs an effect at least ``min_effect`` in size, so a large, stable
deployment does not raise alarms over differences too small to matter.

Rows are grouped by window with ``np.unique``/``np.bincount``; no Python loop
runs over rows (only over windows, for the rate tests).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy import special
from scipy import stats as sps

from hindsight._plain import plain, plain_fields
from hindsight._validation import Interval, validate_params
from hindsight.errors import ConfigError, DataError
from hindsight.serving.rollout.stats import compare_rates

__all__ = [
    "ConfidenceWindow",
    "HealthWindow",
    "RateWindow",
    "bh_adjust",
    "confidence_shift",
    "rate_shift",
    "silent_failures",
]

_Float = NDArray[np.float64]
_ALPHA = Interval(float, 0.0, 1.0, closed="neither")
_SHARE = Interval(float, 0.0, 1.0)
_NONNEG = Interval(float, 0.0)
_MIN_SAMPLES = Interval(int, 2)
#: Rows of a probability matrix may miss summing to 1 by this much (rounding in logs).
_SUM_TOL = 1e-3


# --------------------------------------------------------------------------- JSON


def _opt(value: Any) -> float | None:
    """A plain float, or ``None`` for missing and non-finite values."""
    if value is None:
        return None
    v = float(value)
    return v if math.isfinite(v) else None


# --------------------------------------------------------------------------- results


@dataclass(frozen=True)
class ConfidenceWindow:
    """Confidence of one window against the reference (``None`` where undefined).

    ``shift`` is window mean minus reference mean, with a ``1 - alpha`` Welch
    interval; ``q_value`` is the Benjamini-Hochberg adjusted p-value across
    windows. The ``low_share_*`` fields compare the share of predictions with
    confidence below ``low``; the ``entropy_*`` fields are only set for
    class-probability matrices.
    """

    window: int
    n: int
    mean_confidence: float | None
    reference_mean: float | None
    shift: float | None
    shift_ci: tuple[float, float] | None
    t_statistic: float | None
    df: float | None
    p_value: float | None
    q_value: float | None
    low_share: float | None
    reference_low_share: float | None
    low_share_effect: float | None
    low_share_ci: tuple[float, float] | None
    low_share_p: float | None
    low_share_q: float | None
    mean_entropy: float | None
    reference_entropy: float | None
    entropy_shift: float | None
    entropy_p: float | None
    shifted: bool
    detail: str

    def to_dict(self) -> dict[str, Any]:
        return plain_fields(self)


@dataclass(frozen=True)
class HealthWindow:
    """Silent-failure checks of one window; ``reasons`` explains every raised flag."""

    window: int
    n: int
    n_missing: int
    nan_rate: float
    distinct: int
    top_value: Any
    top_share: float | None
    std: float | None
    reference_std: float | None
    std_ratio: float | None
    constant: bool
    nan: bool
    reasons: tuple[str, ...]

    @property
    def flagged(self) -> bool:
        return self.constant or self.nan

    def to_dict(self) -> dict[str, Any]:
        return plain_fields(self)


@dataclass(frozen=True)
class RateWindow:
    """One serving-layer rate of one window against the reference rate."""

    window: int
    name: str
    events: int
    n: int
    rate: float | None
    reference_rate: float | None
    effect: float | None
    effect_ci: tuple[float, float] | None
    test: str
    p_value: float | None
    q_value: float | None
    worse: bool
    detail: str

    def to_dict(self) -> dict[str, Any]:
        return plain_fields(self)


# --------------------------------------------------------------------------- helpers


def bh_adjust(p_values: ArrayLike) -> _Float:
    """Benjamini-Hochberg adjusted p-values (q-values), NaN kept as NaN.

    NaN entries (windows that were not tested) do not count towards the number of
    tests; the rest go to ``scipy.stats.false_discovery_control(p, method="bh")``.
    """
    from scipy.stats import false_discovery_control

    p = np.asarray(p_values, dtype=np.float64)
    if p.ndim != 1:
        raise ConfigError(f"bh_adjust: p-values must be one-dimensional; got shape {p.shape}.")
    finite = ~np.isnan(p)
    if np.any((p[finite] < 0.0) | (p[finite] > 1.0)):
        raise ConfigError("bh_adjust: p-values must lie in [0, 1]; check what was passed.")
    out = np.full(p.shape, np.nan)
    if finite.any():
        out[finite] = false_discovery_control(p[finite], method="bh")
    return out


def _window_codes(
    window: ArrayLike, n: int, owner: str
) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    arr = np.asarray(window)
    if arr.ndim != 1 or arr.shape[0] != n:
        raise ConfigError(
            f"{owner}: 'window' must hold one window index per prediction ({n}); got shape "
            f"{arr.shape}."
        )
    if arr.dtype.kind not in "iu":
        integral = (
            arr.dtype.kind == "f"
            and bool(np.all(np.isfinite(arr)))
            and bool(np.all(arr == np.round(arr)))
        )
        if not integral:
            raise ConfigError(
                f"{owner}: 'window' must hold integer window indices (e.g. day number or "
                f"batch id); got dtype {arr.dtype}. Map timestamps to windows first."
            )
    ids, codes = np.unique(arr.astype(np.int64), return_inverse=True)
    return codes.reshape(-1).astype(np.int64), ids.astype(np.int64)


def _missing_mask(arr: NDArray[Any]) -> NDArray[np.bool_]:
    """NaN in float arrays; ``None`` or NaN in object arrays; nothing otherwise."""
    if arr.dtype.kind in "fc":
        return np.isnan(arr)
    if arr.dtype.kind == "O":
        is_none = np.equal(arr, np.array(None, dtype=object)).astype(bool)
        is_nan = np.not_equal(arr, arr).astype(bool)
        return is_none | is_nan
    return np.zeros(arr.shape, dtype=bool)


def _group_moments(x: _Float, codes: NDArray[np.int64], k: int) -> tuple[_Float, _Float, _Float]:
    """Count, mean and unbiased variance per group (two-pass, NaN below two rows)."""
    count = np.bincount(codes, minlength=k).astype(np.float64)
    total = np.bincount(codes, weights=x, minlength=k)
    mean = np.full(k, np.nan)
    np.divide(total, count, out=mean, where=count > 0)
    dev = x - mean[codes]
    ss = np.bincount(codes, weights=dev * dev, minlength=k)
    var = np.full(k, np.nan)
    np.divide(ss, count - 1.0, out=var, where=count > 1)
    return count, mean, var


def _welch(
    ref: _Float, x: _Float, codes: NDArray[np.int64], k: int, alpha: float
) -> dict[str, _Float]:
    """Welch's t-test of each group's mean against ``ref`` (window minus reference)."""
    n_r = float(ref.size)
    m_r = float(ref.mean())
    v_r = float(ref.var(ddof=1))
    n_w, m_w, v_w = _group_moments(x, codes, k)
    with np.errstate(divide="ignore", invalid="ignore"):
        a, b = v_r / n_r, v_w / n_w
        se2 = a + b
        se = np.sqrt(se2)
        diff = m_w - m_r
        t = diff / se
        df = se2 * se2 / (a * a / (n_r - 1.0) + b * b / (n_w - 1.0))
    ok = np.isfinite(t) & np.isfinite(df) & (se > 0)
    t = np.where(ok, t, np.nan)
    df = np.where(ok, df, np.nan)
    p = np.full(k, np.nan)
    half = np.full(k, np.nan)
    if np.any(ok):
        p[ok] = np.minimum(2.0 * sps.t.sf(np.abs(t[ok]), df[ok]), 1.0)
        half[ok] = sps.t.ppf(1.0 - alpha / 2.0, df[ok]) * se[ok]
    return {"n": n_w, "mean": m_w, "diff": diff, "t": t, "df": df, "p": p, "half": half}


def _confidence_input(values: ArrayLike, what: str, owner: str) -> tuple[_Float, _Float | None]:
    """Top-class confidence per row, and entropy per row for probability matrices."""
    try:
        arr = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ConfigError(
            f"{owner}: {what} must be numbers ({exc}); pass the model's probabilities."
        ) from exc
    if arr.ndim not in (1, 2) or (arr.ndim == 2 and arr.shape[1] < 2):
        raise ConfigError(
            f"{owner}: {what} must be one confidence per prediction (1-D) or a class-"
            f"probability matrix with at least two columns (n x k); got shape {arr.shape}."
        )
    if arr.shape[0] == 0:
        raise ConfigError(f"{owner}: {what} is empty; it needs at least one prediction.")
    bad = int(np.count_nonzero(~np.isfinite(arr)))
    if bad:
        raise DataError(
            f"{owner}: {what} holds {bad} NaN or infinite values; run silent_failures() "
            "to find them, then drop those rows."
        )
    if arr.min() < 0.0 or arr.max() > 1.0:
        raise DataError(
            f"{owner}: {what} must be probabilities in [0, 1]; got values in "
            f"[{arr.min():g}, {arr.max():g}]. Apply softmax or sigmoid to logits first."
        )
    if arr.ndim == 1:
        return arr, None
    sums = arr.sum(axis=1)
    off = np.abs(sums - 1.0) > _SUM_TOL
    if np.any(off):
        row = int(np.argmax(off))
        raise DataError(
            f"{owner}: {what} rows must sum to 1 (class probabilities); row {row} sums to "
            f"{sums[row]:.6g}. Pass predict_proba output, not scores."
        )
    return arr.max(axis=1), special.entr(arr).sum(axis=1)


def _rate_judgements(
    ref_events: int,
    ref_n: int,
    events: NDArray[np.int64],
    n: NDArray[np.int64],
    *,
    alpha: float,
    min_effect: float,
    higher_is_worse: bool,
    min_samples: int,
    name: str,
) -> tuple[list[Any], _Float]:
    """``compare_rates`` per window, with BH-adjusted p-values across windows."""
    judged = [
        compare_rates(
            ref_events,
            ref_n,
            int(e),
            int(t),
            alpha=alpha,
            min_effect=min_effect,
            higher_is_worse=higher_is_worse,
            min_samples=min_samples,
            name=name,
        )
        for e, t in zip(events.tolist(), n.tolist(), strict=True)
    ]
    p = np.array([np.nan if j.p_value is None else j.p_value for j in judged], dtype=np.float64)
    return judged, bh_adjust(p)


def _bad_direction(effect: float | None, min_effect: float, higher_is_worse: bool) -> bool:
    if effect is None:
        return False
    return effect >= min_effect if higher_is_worse else effect <= -min_effect


# --------------------------------------------------------------------------- confidence


def confidence_shift(
    reference_conf: ArrayLike,
    current_conf: ArrayLike,
    *,
    window: ArrayLike,
    low: float = 0.6,
    alpha: float = 0.01,
    min_effect: float = 0.02,
    min_samples: int = 30,
) -> list[ConfidenceWindow]:
    """Per-window confidence against the reference, sorted by window.

    ``reference_conf`` and ``current_conf`` are either one confidence per prediction
    (1-D, in [0, 1]) or class-probability matrices (n x k, rows summing to 1); for a
    matrix the confidence is the top probability and the mean entropy (natural log)
    of each window is compared too. ``window`` gives the window index of each
    current prediction.

    A window is ``shifted`` when Welch's t-test of its mean confidence against the
    reference is significant at ``alpha`` after Benjamini-Hochberg across windows
    *and* the mean moved by at least ``min_effect``. The low-confidence share
    (confidence < ``low``) is tested with ``compare_rates`` and adjusted the same
    way; it is reported, and raises ``shifted`` too when it rises significantly by
    at least ``min_effect``. Windows with fewer than ``min_samples`` predictions are
    described but not tested.
    """
    owner = "confidence_shift"
    validate_params(
        owner,
        {"low": low, "alpha": alpha, "min_effect": min_effect, "min_samples": min_samples},
        {"low": _SHARE, "alpha": _ALPHA, "min_effect": _NONNEG, "min_samples": _MIN_SAMPLES},
    )
    ref_conf, ref_ent = _confidence_input(reference_conf, "reference_conf", owner)
    cur_conf, cur_ent = _confidence_input(current_conf, "current_conf", owner)
    ref_shape, cur_shape = np.shape(reference_conf), np.shape(current_conf)
    if ref_shape[1:] != cur_shape[1:]:
        raise ConfigError(
            f"{owner}: reference_conf and current_conf must have the same form; got shapes "
            f"{ref_shape} and {cur_shape}. Pass both as "
            "confidences or both as probability matrices with the same classes."
        )
    if ref_conf.size < min_samples:
        raise DataError(
            f"{owner}: the reference has {ref_conf.size} predictions, fewer than "
            f"min_samples={min_samples}; widen the reference window set."
        )
    codes, ids = _window_codes(window, cur_conf.size, owner)
    k = ids.size
    welch = _welch(ref_conf, cur_conf, codes, k, alpha)
    n_w = welch["n"].astype(np.int64)
    tested = n_w >= min_samples
    p = np.where(tested, welch["p"], np.nan)
    q = bh_adjust(p)

    ref_low = int(np.count_nonzero(ref_conf < low))
    low_events = np.bincount(
        codes, weights=(cur_conf < low).astype(np.float64), minlength=k
    ).astype(np.int64)
    judged, low_q = _rate_judgements(
        ref_low,
        ref_conf.size,
        low_events,
        n_w,
        alpha=alpha,
        min_effect=min_effect,
        higher_is_worse=True,
        min_samples=min_samples,
        name="low-confidence share",
    )
    ent: dict[str, _Float] | None = None
    ent_p = np.full(k, np.nan)
    if ref_ent is not None and cur_ent is not None:
        ent = _welch(ref_ent, cur_ent, codes, k, alpha)
        ent_p = np.where(tested, ent["p"], np.nan)

    out: list[ConfidenceWindow] = []
    for i in range(k):
        shift = _opt(welch["diff"][i])
        half = _opt(welch["half"][i])
        qi = _opt(q[i])
        mean_hit = qi is not None and qi < alpha and shift is not None and abs(shift) >= min_effect
        j = judged[i]
        lq = _opt(low_q[i])
        low_hit = lq is not None and lq < alpha and _bad_direction(j.effect, min_effect, True)
        reasons = []
        if not tested[i]:
            reasons.append(f"{int(n_w[i])} predictions, fewer than {min_samples}; not tested")
        if mean_hit and shift is not None:
            reasons.append(
                f"mean confidence {welch['mean'][i]:.3f} vs {ref_conf.mean():.3f} "
                f"({shift:+.3f}, Welch q={qi:.2g})"
            )
        if low_hit and j.effect is not None:
            reasons.append(
                f"share below {low:g} {j.canary['rate']:.1%} vs {j.baseline['rate']:.1%} "
                f"(q={lq:.2g})"
            )
        out.append(
            ConfidenceWindow(
                window=int(ids[i]),
                n=int(n_w[i]),
                mean_confidence=_opt(welch["mean"][i]),
                reference_mean=float(ref_conf.mean()),
                shift=shift,
                shift_ci=None if shift is None or half is None else (shift - half, shift + half),
                t_statistic=_opt(welch["t"][i]),
                df=_opt(welch["df"][i]),
                p_value=_opt(p[i]),
                q_value=qi,
                low_share=_opt(low_events[i] / n_w[i]),
                reference_low_share=ref_low / ref_conf.size,
                low_share_effect=_opt(j.effect),
                low_share_ci=j.effect_ci,
                low_share_p=_opt(j.p_value),
                low_share_q=lq,
                mean_entropy=None if ent is None else _opt(ent["mean"][i]),
                reference_entropy=None if ref_ent is None else float(ref_ent.mean()),
                entropy_shift=None if ent is None else _opt(ent["diff"][i]),
                entropy_p=None if ent is None else _opt(ent_p[i]),
                shifted=bool(mean_hit or low_hit),
                detail="; ".join(reasons) if reasons else "no significant shift",
            )
        )
    return out


# --------------------------------------------------------------------------- silent failures


def _numeric_values(arr: NDArray[Any], missing: NDArray[np.bool_]) -> _Float | None:
    """The non-missing values as floats, or ``None`` when the predictions are not numeric."""
    if arr.dtype.kind in "iuf":
        return arr[~missing].astype(np.float64)
    if arr.dtype.kind != "O":
        return None
    # Let numpy infer the element type in C: numbers give a numeric dtype, while
    # strings, booleans or a mix give something else and are treated as labels.
    try:
        inferred = np.asarray(arr[~missing].tolist())
    except ValueError:
        return None
    if inferred.ndim != 1 or inferred.dtype.kind not in "iuf":
        return None
    return inferred.astype(np.float64)


def silent_failures(
    predictions: ArrayLike,
    *,
    window: ArrayLike,
    reference: ArrayLike | None = None,
    nan_share: float = 0.01,
    top_share: float = 0.98,
    min_std_ratio: float = 0.05,
    min_samples: int = 20,
) -> list[HealthWindow]:
    """Per-window NaN/None bursts and constant outputs, sorted by window.

    For every window: the NaN/None rate, the number of distinct values, the most
    frequent value and its share of the non-missing predictions, and for numeric
    predictions the standard deviation, with its ratio to the ``reference``
    standard deviation when a reference is given.

    ``nan`` is raised when the NaN/None rate exceeds ``nan_share``. ``constant`` is
    raised, for windows with at least ``min_samples`` non-missing predictions, when
    the top value's share is at least ``top_share`` or the standard deviation has
    fallen below ``min_std_ratio`` times the reference's. ``reasons`` says why.
    """
    owner = "silent_failures"
    validate_params(
        owner,
        {
            "nan_share": nan_share,
            "top_share": top_share,
            "min_std_ratio": min_std_ratio,
            "min_samples": min_samples,
        },
        {
            "nan_share": _SHARE,
            "top_share": _SHARE,
            "min_std_ratio": _NONNEG,
            "min_samples": Interval(int, 1),
        },
    )
    try:
        arr = np.asarray(predictions)
    except ValueError as exc:
        raise ConfigError(f"{owner}: predictions could not be read as an array ({exc}).") from exc
    if arr.ndim != 1 or arr.size == 0:
        raise ConfigError(
            f"{owner}: predictions must be a non-empty 1-D sequence, one output per request; "
            f"got shape {arr.shape}. For probability matrices pass the top class or score."
        )
    codes, ids = _window_codes(window, arr.size, owner)
    k = ids.size
    missing = _missing_mask(arr)
    n_w = np.bincount(codes, minlength=k)
    n_miss = np.bincount(codes, weights=missing.astype(np.float64), minlength=k).astype(np.int64)
    n_ok = n_w - n_miss

    numeric = _numeric_values(arr, missing)
    ok_codes = codes[~missing]
    values: NDArray[Any] = numeric if numeric is not None else arr[~missing].astype(str)
    labels, vcodes = np.unique(values, return_inverse=True)
    vcodes = vcodes.reshape(-1)
    n_labels = max(int(labels.size), 1)
    pair, pair_count = np.unique(ok_codes * n_labels + vcodes, return_counts=True)
    pair_window = pair // n_labels
    distinct = np.bincount(pair_window, minlength=k)
    # Most frequent value per window: sort pairs by (window, count) and take each last.
    order = np.lexsort((pair_count, pair_window))
    last = np.ones(order.size, dtype=bool)
    last[:-1] = pair_window[order][1:] != pair_window[order][:-1]
    top_idx = order[last]
    top_count = np.zeros(k, dtype=np.int64)
    top_label = np.full(k, -1, dtype=np.int64)
    top_count[pair_window[top_idx]] = pair_count[top_idx]
    top_label[pair_window[top_idx]] = pair[top_idx] % n_labels

    std = np.full(k, np.nan)
    ref_std: float | None = None
    if numeric is not None:
        _, _, var = _group_moments(numeric, ok_codes, k)
        std = np.sqrt(var)
        if reference is not None:
            ref = np.asarray(reference)
            if ref.ndim != 1:
                raise ConfigError(
                    f"{owner}: reference must be 1-D like predictions; got shape {ref.shape}."
                )
            ref_vals = _numeric_values(ref, _missing_mask(ref))
            if ref_vals is None:
                raise ConfigError(
                    f"{owner}: predictions are numeric but the reference is not (dtype "
                    f"{ref.dtype}); pass the reference outputs of the same model."
                )
            if ref_vals.size < 2:
                raise DataError(
                    f"{owner}: the reference has {ref_vals.size} non-missing values; a "
                    "standard deviation needs at least two. Widen the reference window set."
                )
            ref_std = float(ref_vals.std(ddof=1))

    out: list[HealthWindow] = []
    for i in range(k):
        n, n_valid = int(n_w[i]), int(n_ok[i])
        nan_rate = int(n_miss[i]) / n
        share = float(top_count[i] / n_valid) if n_valid else None
        top_value = plain(labels[top_label[i]].item()) if top_label[i] >= 0 else None
        s = _opt(std[i])
        ratio = s / ref_std if s is not None and ref_std is not None and ref_std > 0 else None
        reasons: list[str] = []
        nan_flag = nan_rate > nan_share
        if nan_flag:
            reasons.append(
                f"{nan_rate:.1%} of {n} predictions ({int(n_miss[i])}) are NaN or None, "
                f"above the {nan_share:.1%} allowed"
            )
        constant = False
        if n_valid >= min_samples:
            if share is not None and share >= top_share:
                constant = True
                reasons.append(
                    f"{share:.1%} of {n_valid} predictions are the same value "
                    f"({top_value!r}), at or above the {top_share:.0%} threshold"
                )
            if ratio is not None and ratio < min_std_ratio and s is not None:
                constant = True
                reasons.append(
                    f"standard deviation {s:.4g} is {ratio:.3g} x the reference's "
                    f"{ref_std:.4g}, below {min_std_ratio:g} x"
                )
        out.append(
            HealthWindow(
                window=int(ids[i]),
                n=n,
                n_missing=int(n_miss[i]),
                nan_rate=nan_rate,
                distinct=int(distinct[i]),
                top_value=top_value,
                top_share=share,
                std=s,
                reference_std=ref_std,
                std_ratio=ratio,
                constant=constant,
                nan=nan_flag,
                reasons=tuple(reasons),
            )
        )
    return out


# --------------------------------------------------------------------------- rates


def _counts(values: ArrayLike, what: str, owner: str) -> NDArray[np.int64]:
    arr = np.atleast_1d(np.asarray(values))
    if arr.ndim != 1 or arr.size == 0:
        raise ConfigError(
            f"{owner}: {what} must be a non-empty 1-D array of per-window counts; got shape "
            f"{arr.shape}."
        )
    if arr.dtype.kind == "f" and bool(np.all(np.isfinite(arr) & (arr == np.round(arr)))):
        arr = arr.astype(np.int64)
    if arr.dtype.kind not in "iu" or bool(np.any(arr < 0)):
        raise ConfigError(
            f"{owner}: {what} must hold non-negative whole counts; got {arr.tolist()[:5]}."
        )
    return arr.astype(np.int64)


def rate_shift(
    reference_events: ArrayLike,
    reference_n: ArrayLike,
    events: ArrayLike,
    n: ArrayLike,
    *,
    name: str,
    window: ArrayLike | None = None,
    alpha: float = 0.01,
    min_effect: float = 0.01,
    higher_is_worse: bool = True,
    min_samples: int = 100,
) -> list[RateWindow]:
    """A serving-layer rate (fallbacks, abstentions, ...) per window against the reference.

    ``events`` and ``n`` are per-window counts (events out of requests); the reference
    counts may be one number each or per-reference-window arrays, which are summed.
    ``window`` labels the windows (default ``0, 1, ...``). Each window is compared
    with :func:`~hindsight.serving.rollout.stats.compare_rates` (Fisher or pooled z,
    Newcombe interval); ``worse`` needs the Benjamini-Hochberg adjusted p-value below
    ``alpha`` and a change of at least ``min_effect`` in the bad direction.
    """
    owner = "rate_shift"
    validate_params(
        owner,
        {"alpha": alpha, "min_effect": min_effect, "min_samples": min_samples},
        {"alpha": _ALPHA, "min_effect": _NONNEG, "min_samples": Interval(int, 1)},
    )
    if not isinstance(name, str) or not name:
        raise ConfigError(f"{owner}: name must be a non-empty string such as 'fallback_rate'.")
    ref_e = int(_counts(reference_events, "reference_events", owner).sum())
    ref_n = int(_counts(reference_n, "reference_n", owner).sum())
    ev = _counts(events, "events", owner)
    tr = _counts(n, "n", owner)
    if ev.shape != tr.shape:
        raise ConfigError(
            f"{owner}: events and n must have one count per window each; got {ev.size} and "
            f"{tr.size}."
        )
    if ref_e > ref_n or bool(np.any(ev > tr)):
        raise ConfigError(
            f"{owner}: events cannot exceed trials (n) in the reference or any window; "
            "pass the number of requests as n."
        )
    if ref_n < min_samples:
        raise DataError(
            f"{owner}: the reference has {ref_n} requests, fewer than min_samples="
            f"{min_samples}; widen the reference window set."
        )
    if window is None:
        labels = np.arange(ev.size, dtype=np.int64)
    else:
        labels = np.asarray(window)
        if labels.shape != ev.shape or labels.dtype.kind not in "iu":
            raise ConfigError(
                f"{owner}: window must hold one integer label per window ({ev.size}); got "
                f"shape {labels.shape}, dtype {labels.dtype}."
            )
    judged, q = _rate_judgements(
        ref_e,
        ref_n,
        ev,
        tr,
        alpha=alpha,
        min_effect=min_effect,
        higher_is_worse=higher_is_worse,
        min_samples=min_samples,
        name=name,
    )
    out: list[RateWindow] = []
    for i, j in enumerate(judged):
        qi = _opt(q[i])
        worse = (
            qi is not None and qi < alpha and _bad_direction(j.effect, min_effect, higher_is_worse)
        )
        detail = j.detail if qi is None else f"{j.detail}; BH-adjusted q={qi:.3g}"
        out.append(
            RateWindow(
                window=int(labels[i]),
                name=name,
                events=int(ev[i]),
                n=int(tr[i]),
                rate=j.canary["rate"],
                reference_rate=j.baseline["rate"],
                effect=_opt(j.effect),
                effect_ci=j.effect_ci,
                test=j.test,
                p_value=_opt(j.p_value),
                q_value=qi,
                worse=bool(worse),
                detail=detail,
            )
        )
    return out
