"""Decision patterns over time: how often a deployed model approves, blocks, recommends.

:func:`action_rates` counts each action (any hashable labels: ``"approve"``,
``"block"``, item ids) per window, and per segment when ``segments`` is given (customer
type, country). With a ``reference`` (the actions of a period taken as normal) every
rate of every window and segment is compared with the reference rate of its segment
by a two-proportion test (:func:`hindsight.serving.rollout.stats.compare_rates`), the
p-values are adjusted with Benjamini-Hochberg across all actions x windows x segments,
and a comparison is ``shifted`` when its adjusted p-value is below ``alpha`` and the
rate moved by more than ``min_effect``. Each comparison carries a plain-English
``reason``, e.g. ``"block rate for segment 'genuine' 2.1% -> 6.8% in window
2026-12-21 10:00; p=3.1e-09 (BH-adjusted over 60 comparisons)"``.

:class:`RateWatch` feeds one action's rate, window by window (or its per-request 0/1
indicator), to a streaming detector (:mod:`hindsight.drift.streaming`) and reports the
first window where the detector fired.

Counting is vectorised: labels are encoded with ``np.unique(return_inverse=True)`` and
counted with one ``np.bincount`` over ``(window * segments + segment) * actions +
action``; no Python loop runs over rows.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from hindsight._plain import plain_fields
from hindsight._validation import Interval, Options, validate_params
from hindsight.drift.streaming import get_detector
from hindsight.drift.streaming.base import StreamingDetector
from hindsight.errors import ConfigError, DataError
from hindsight.monitor.signals import bh_adjust
from hindsight.monitor.windows import WindowSpec
from hindsight.serving.rollout.stats import compare_rates

__all__ = [
    "DETECTORS",
    "ActionRates",
    "RateAlarm",
    "RateComparison",
    "RateWatch",
    "WindowActions",
    "action_rates",
    "benjamini_hochberg",
]

#: The streaming detectors :class:`RateWatch` can use.
DETECTORS: tuple[str, ...] = ("bernoulli_cusum", "cusum", "page_hinkley")


# --------------------------------------------------------------------------- helpers


def _py(value: Any) -> Any:
    """A plain Python value from a NumPy scalar (so labels print and serialise cleanly)."""
    return value.item() if isinstance(value, np.generic) else value


def _as_1d(name: str, values: ArrayLike, n: int | None, owner: str) -> NDArray[Any]:
    arr = np.asarray(values)
    if arr.ndim != 1:
        raise ConfigError(
            f"{owner}: {name!r} must be one-dimensional (one value per row); got shape {arr.shape}."
        )
    if n is not None and arr.shape[0] != n:
        raise ConfigError(
            f"{owner}: {name!r} has {arr.shape[0]} values but there are {n} rows; pass "
            "exactly one value per row."
        )
    return arr


def _encode(values: NDArray[Any], what: str, owner: str) -> tuple[NDArray[Any], NDArray[np.int64]]:
    """Sorted distinct labels and each value's code, with a readable error for bad labels."""
    if values.dtype.kind == "f" and np.isnan(values).any():
        raise DataError(f"{owner}: {what} contain NaN; drop or fill those rows first.")
    try:
        uniq, codes = np.unique(values, return_inverse=True)
    except TypeError:
        raise DataError(
            f"{owner}: {what} mix labels that cannot be sorted together (e.g. None next to "
            "strings); use one type of label."
        ) from None
    return uniq, codes.astype(np.int64).reshape(-1)


def _fmt_time(seconds: float) -> str:
    moment = datetime.fromtimestamp(seconds, tz=UTC)
    return moment.strftime("%Y-%m-%d %H:%M:%S" if moment.second else "%Y-%m-%d %H:%M")


def _window_label(window_id: int, spec: WindowSpec | None) -> str:
    if spec is None:
        return str(window_id)
    start, end = spec.bounds(window_id)
    if spec.is_count:
        return f"rows {int(start)}-{int(end) - 1}"
    return _fmt_time(start)


def window_codes(
    window: ArrayLike, n: int, owner: str, spec: WindowSpec | None
) -> tuple[NDArray[np.int64], NDArray[np.int64], tuple[str, ...]]:
    """Each row's window code, the sorted window ids and their labels.

    Without ``spec`` ``window`` holds integer window ids; with a
    :class:`~hindsight.monitor.windows.WindowSpec` it holds timestamps, which the spec
    cuts into windows labelled by their start time.
    """
    if spec is not None:
        if not isinstance(spec, WindowSpec):
            raise ConfigError(f"{owner}: 'spec' must be a WindowSpec or None; got {spec!r}.")
        if spec.is_count:
            ids_row, _ = spec.assign(np.arange(n))
        else:
            ts = _as_1d("window", window, n, owner)
            ids_row, _ = spec.assign(ts)
    else:
        arr = _as_1d("window", window, n, owner)
        if arr.dtype.kind not in "iu":
            integral = (
                arr.dtype.kind == "f"
                and bool(np.all(np.isfinite(arr)))
                and bool(np.all(arr == np.round(arr)))
            )
            if not (integral or arr.size == 0):
                raise ConfigError(
                    f"{owner}: 'window' must hold integer window ids (or pass spec= with "
                    f"timestamps); got dtype {arr.dtype}."
                )
        ids_row = arr.astype(np.int64)
    ids, codes = np.unique(ids_row, return_inverse=True)
    ids = ids.astype(np.int64)
    labels = tuple(_window_label(int(w), spec) for w in ids)
    return codes.astype(np.int64).reshape(-1), ids, labels


def benjamini_hochberg(p_values: ArrayLike) -> NDArray[np.float64]:
    """Benjamini-Hochberg adjusted p-values (q-values), in the input order (SciPy's
    ``false_discovery_control``, through :func:`hindsight.monitor.signals.bh_adjust`)."""
    p = np.asarray(p_values, dtype=np.float64).reshape(-1)
    if p.size and (not np.all(np.isfinite(p)) or p.min() < 0.0 or p.max() > 1.0):
        raise DataError("benjamini_hochberg: p-values must be finite numbers in [0, 1].")
    return bh_adjust(p)


# --------------------------------------------------------------------------- results


@dataclass(frozen=True)
class RateComparison:
    """One action's rate in one window (and segment) against its reference rate.

    ``difference`` is ``rate - reference_rate`` with its Newcombe interval ``ci``;
    ``q_value`` is the Benjamini-Hochberg adjusted p-value over every comparison of
    the call. ``p_value`` is ``None`` when either side had fewer than ``min_samples``
    rows (the comparison then takes no part in the adjustment).
    """

    action: Any
    window: int
    label: str
    segment: Any
    count: int
    n: int
    rate: float
    reference_count: int
    reference_n: int
    reference_rate: float | None
    difference: float | None
    ci: tuple[float, float] | None
    p_value: float | None
    q_value: float | None
    test: str
    shifted: bool
    reason: str

    def to_dict(self) -> dict[str, Any]:
        return plain_fields(self)


@dataclass(frozen=True)
class WindowActions:
    """Counts and rates of every action in one window (and one segment)."""

    window: int
    label: str
    segment: Any
    n: int
    counts: dict[Any, int]
    rates: dict[Any, float]
    comparisons: tuple[RateComparison, ...] = ()

    @property
    def shifted(self) -> bool:
        """Whether any action's rate shifted from the reference in this window."""
        return any(c.shifted for c in self.comparisons)

    def to_dict(self) -> dict[str, Any]:
        out = plain_fields(self)
        out["shifted"] = self.shifted
        return out


@dataclass(frozen=True)
class ActionRates:
    """What :func:`action_rates` found: one :class:`WindowActions` per window and segment.

    ``rows`` are sorted by window, then segment; windows in which a segment has no
    rows are left out. ``segments`` is ``None`` when no segments were given (then
    every row's ``segment`` is ``None``). ``reference_counts`` maps each segment to
    the reference count of each action.
    """

    actions: tuple[Any, ...]
    segments: tuple[Any, ...] | None
    rows: tuple[WindowActions, ...]
    reference_counts: dict[Any, dict[Any, int]] | None
    alpha: float
    min_effect: float
    n_tests: int

    def get(self, window: int, segment: Any = None) -> WindowActions:
        """The row of one window (and segment); ``KeyError`` when it has no rows."""
        for r in self.rows:
            if r.window == window and r.segment == segment:
                return r
        raise KeyError((window, segment))

    def shifts(self) -> list[RateComparison]:
        """Every comparison flagged ``shifted``, in window, segment, action order."""
        return [c for r in self.rows for c in r.comparisons if c.shifted]

    def series(
        self, action: Any, segment: Any = None
    ) -> tuple[NDArray[np.int64], NDArray[np.float64], tuple[str, ...]]:
        """Window ids, rates of ``action`` and window labels for one segment, in order."""
        if action not in self.actions:
            raise ConfigError(
                f"Unknown action {action!r}; the actions seen are {list(self.actions)}."
            )
        if self.segments is not None and segment not in self.segments:
            raise ConfigError(
                f"Unknown segment {segment!r}; the segments seen are {list(self.segments)}."
            )
        picked = [r for r in self.rows if r.segment == segment]
        ids = np.array([r.window for r in picked], dtype=np.int64)
        rates = np.array([r.rates[action] for r in picked], dtype=np.float64)
        return ids, rates, tuple(r.label for r in picked)

    def to_dict(self) -> dict[str, Any]:
        out = plain_fields(self)
        out["shifts"] = [c.to_dict() for c in self.shifts()]
        return out


# --------------------------------------------------------------------------- action rates


def _reason(
    action: Any,
    segment: Any,
    label: str,
    judged: Any,
    q: float | None,
    shifted: bool,
    n_tests: int,
    alpha: float,
    min_effect: float,
) -> str:
    seg = "" if segment is None else f" for segment {segment!r}"
    head = f"{action} rate{seg}"
    if judged.p_value is None:
        return f"{head} in window {label}: {judged.detail}"
    pb, pc = judged.baseline["rate"], judged.canary["rate"]
    text = (
        f"{head} {pb:.1%} -> {pc:.1%} in window {label}; p={q:.2g} "
        f"(BH-adjusted over {n_tests} comparisons)"
    )
    if shifted:
        return text
    if q is not None and q < alpha:
        return text + f"; a change of at most {min_effect:.1%} is not flagged"
    return text + "; within chance"


def action_rates(
    actions: ArrayLike,
    *,
    window: ArrayLike,
    segments: ArrayLike | None = None,
    reference: ArrayLike | None = None,
    reference_segments: ArrayLike | None = None,
    spec: WindowSpec | None = None,
    alpha: float = 0.05,
    min_effect: float = 0.005,
    min_samples: int = 30,
) -> ActionRates:
    """Counts and rates of each action per window (and segment), against a reference.

    ``actions`` holds one decision per row (any labels that sort together);
    ``window`` each row's integer window id, or its timestamp when ``spec`` (a
    :class:`~hindsight.monitor.windows.WindowSpec`) is given. ``segments`` splits every
    window by a row label such as the customer type. ``reference`` holds the actions
    of a normal period; with ``segments`` it needs ``reference_segments`` too, so that
    each segment is compared with its own reference rate.

    A comparison is ``shifted`` when its Benjamini-Hochberg adjusted p-value (over
    all actions x windows x segments compared) is below ``alpha`` and the rate moved
    by more than ``min_effect`` in either direction. Comparisons where either side
    has fewer than ``min_samples`` rows are reported without a test.
    """
    owner = "action_rates"
    validate_params(
        owner,
        {"alpha": alpha, "min_effect": min_effect, "min_samples": min_samples},
        {
            "alpha": Interval(float, 0.0, 1.0, closed="neither"),
            "min_effect": Interval(float, 0.0, 1.0),
            "min_samples": Interval(int, 1),
        },
    )
    acts = _as_1d("actions", actions, None, owner)
    n = acts.shape[0]
    w_code, w_ids, labels = window_codes(window, n, owner, spec)
    seg = None if segments is None else _as_1d("segments", segments, n, owner)
    ref = None if reference is None else _as_1d("reference", reference, None, owner)
    ref_seg = None
    if reference_segments is not None:
        if seg is None or ref is None:
            raise ConfigError(
                f"{owner}: 'reference_segments' needs both 'segments' and 'reference'."
            )
        ref_seg = _as_1d("reference_segments", reference_segments, ref.shape[0], owner)
    elif seg is not None and ref is not None:
        raise ConfigError(
            f"{owner}: with 'segments' and 'reference', pass 'reference_segments' too (the "
            "segment of each reference row), so each segment meets its own reference rate."
        )

    n_ref = 0 if ref is None else ref.shape[0]
    vocab, a_all = _encode(acts if ref is None else np.concatenate([acts, ref]), "actions", owner)
    a_code, ra_code = a_all[:n], a_all[n:]
    if seg is None:
        seg_vocab: NDArray[Any] = np.array([None], dtype=object)
        s_code = np.zeros(n, dtype=np.int64)
        rs_code = np.zeros(n_ref, dtype=np.int64)
    else:
        both = seg if ref_seg is None else np.concatenate([seg, ref_seg])
        seg_vocab, s_all = _encode(both, "segments", owner)
        s_code, rs_code = s_all[:n], s_all[n:]

    n_w, n_s, n_a = w_ids.size, seg_vocab.size, vocab.size
    counts = np.bincount((w_code * n_s + s_code) * n_a + a_code, minlength=n_w * n_s * n_a).reshape(
        n_w, n_s, n_a
    )
    totals = counts.sum(axis=2)
    action_labels = tuple(_py(a) for a in vocab)
    seg_labels = tuple(_py(s) for s in seg_vocab)

    ref_counts = None
    judged: dict[tuple[int, int, int], Any] = {}
    if ref is not None:
        ref_counts = np.bincount(rs_code * n_a + ra_code, minlength=n_s * n_a).reshape(n_s, n_a)
        ref_tot = ref_counts.sum(axis=1)
        for w, s in zip(*np.nonzero(totals), strict=True):
            for a in range(n_a):
                judged[(int(w), int(s), a)] = compare_rates(
                    int(ref_counts[s, a]),
                    int(ref_tot[s]),
                    int(counts[w, s, a]),
                    int(totals[w, s]),
                    alpha=alpha,
                    min_effect=min_effect,
                    min_samples=min_samples,
                    higher_is_worse=True,
                    name=f"{action_labels[a]} rate",
                )
    tested = [key for key, j in judged.items() if j.p_value is not None]
    q_all = benjamini_hochberg([judged[key].p_value for key in tested])
    q_of = dict(zip(tested, q_all.tolist(), strict=True))
    n_tests = len(tested)

    rows: list[WindowActions] = []
    for w, s in zip(*np.nonzero(totals), strict=True):
        w, s = int(w), int(s)
        tot = int(totals[w, s])
        comps: list[RateComparison] = []
        if ref_counts is not None:
            for a in range(n_a):
                j = judged[(w, s, a)]
                q = q_of.get((w, s, a))
                shifted = q is not None and q < alpha and abs(j.effect) > min_effect
                ref_n = int(ref_counts[s].sum())
                comps.append(
                    RateComparison(
                        action=action_labels[a],
                        window=int(w_ids[w]),
                        label=labels[w],
                        segment=seg_labels[s],
                        count=int(counts[w, s, a]),
                        n=tot,
                        rate=float(counts[w, s, a]) / tot,
                        reference_count=int(ref_counts[s, a]),
                        reference_n=ref_n,
                        reference_rate=float(ref_counts[s, a]) / ref_n if ref_n else None,
                        difference=j.effect,
                        ci=j.effect_ci,
                        p_value=j.p_value,
                        q_value=q,
                        test=j.test,
                        shifted=shifted,
                        reason=_reason(
                            action_labels[a],
                            seg_labels[s],
                            labels[w],
                            j,
                            q,
                            shifted,
                            n_tests,
                            alpha,
                            min_effect,
                        ),
                    )
                )
        rows.append(
            WindowActions(
                window=int(w_ids[w]),
                label=labels[w],
                segment=seg_labels[s],
                n=tot,
                counts={action_labels[a]: int(counts[w, s, a]) for a in range(n_a)},
                rates={action_labels[a]: float(counts[w, s, a]) / tot for a in range(n_a)},
                comparisons=tuple(comps),
            )
        )
    return ActionRates(
        actions=action_labels,
        segments=None if seg is None else seg_labels,
        rows=tuple(rows),
        reference_counts=None
        if ref_counts is None
        else {
            seg_labels[s]: {action_labels[a]: int(ref_counts[s, a]) for a in range(n_a)}
            for s in range(n_s)
        },
        alpha=float(alpha),
        min_effect=float(min_effect),
        n_tests=n_tests,
    )


# --------------------------------------------------------------------------- rate watch


@dataclass(frozen=True)
class RateAlarm:
    """Where a :class:`RateWatch` detector fired on one action's rate.

    ``window``/``label`` is the first window where it fired (``None`` if it never
    did), ``position`` the index of the value that completed the change among the
    ``n_values`` fed (windows, or requests), and ``windows`` every window where it fired
    (the detector restarts after each detection).
    """

    action: Any
    segment: Any
    detector: str
    fired: bool
    window: int | None
    label: str | None
    position: int | None
    windows: tuple[int, ...]
    n_values: int
    reason: str

    def to_dict(self) -> dict[str, Any]:
        return plain_fields(self)


class RateWatch:
    """Watch one action's rate with a streaming detector, window by window.

    ``detector`` is ``"cusum"``, ``"bernoulli_cusum"`` or ``"page_hinkley"``;
    ``**params`` go to it unchanged (:class:`~hindsight.drift.streaming.CUSUM` estimates
    its target and sigma from its first ``warmup`` values, 200 by default: fewer suit
    per-window rates). Left ``None``, per-window rates (``watch``, ``watch_rates``) use
    the CUSUM and per-request 0/1 indicators (``watch_requests``) the Bernoulli CUSUM,
    whose false-alarm rate holds on rare events where a normal CUSUM's does not.
    Each ``watch*`` call starts a fresh detector, so calls do not influence each other.
    """

    def __init__(self, action: Any, detector: str | None = None, **params: Any) -> None:
        if detector is not None:
            validate_params("RateWatch", {"detector": detector}, {"detector": Options(DETECTORS)})
        self.action = action
        self.detector = detector
        self.params = dict(params)
        self._used = detector or "cusum"
        if detector is not None:
            self._fresh(detector)  # validate the parameters now, not at the first watch

    def _fresh(self, default: str) -> StreamingDetector:
        name = default if self.detector is None else self.detector
        self._used = name
        try:
            return get_detector(name, **self.params)
        except TypeError as exc:
            raise ConfigError(f"RateWatch: bad parameters for {name!r}: {exc}") from None

    def _alarm(
        self,
        hits: NDArray[Any],
        value_window: NDArray[np.int64],
        label_of: Mapping[int, str],
        segment: Any,
        what: str,
    ) -> RateAlarm:
        hit_windows = tuple(int(value_window[h]) for h in hits.tolist())
        seg = "" if segment is None else f" for segment {segment!r}"
        if not hit_windows:
            reason = (
                f"{self._used} saw no change in the {self.action} rate{seg} over "
                f"{value_window.size} {what}"
            )
            return RateAlarm(
                action=self.action,
                segment=segment,
                detector=self._used,
                fired=False,
                window=None,
                label=None,
                position=None,
                windows=(),
                n_values=int(value_window.size),
                reason=reason,
            )
        first = hit_windows[0]
        reason = (
            f"{self._used} detected a change in the {self.action} rate{seg} in window "
            f"{label_of[first]} ({what[:-1]} {int(hits[0]) + 1} of {value_window.size})"
        )
        return RateAlarm(
            action=self.action,
            segment=segment,
            detector=self._used,
            fired=True,
            window=first,
            label=label_of[first],
            position=int(hits[0]),
            windows=hit_windows,
            n_values=int(value_window.size),
            reason=reason,
        )

    def watch(self, rates: ActionRates, *, segment: Any = None) -> RateAlarm:
        """Feed the per-window rates of :attr:`action` (one segment) from :func:`action_rates`."""
        ids, values, labels = rates.series(self.action, segment)
        return self.watch_rates(values, windows=ids, labels=labels, segment=segment)

    def watch_rates(
        self,
        rates: ArrayLike,
        *,
        windows: ArrayLike | None = None,
        labels: tuple[str, ...] | None = None,
        segment: Any = None,
    ) -> RateAlarm:
        """Feed a sequence of per-window rates, in window order (``windows`` names them)."""
        owner = "RateWatch"
        values = _as_1d("rates", rates, None, owner).astype(np.float64)
        ids = (
            np.arange(values.size, dtype=np.int64)
            if windows is None
            else _as_1d("windows", windows, values.size, owner).astype(np.int64)
        )
        names = labels if labels is not None else tuple(str(w) for w in ids.tolist())
        if len(names) != ids.size:
            raise ConfigError(f"{owner}: 'labels' must have one entry per window.")
        hits = self._fresh("cusum").update_many(values)
        return self._alarm(
            hits, ids, dict(zip(ids.tolist(), names, strict=True)), segment, "windows"
        )

    def watch_requests(
        self, actions: ArrayLike, *, window: ArrayLike, spec: WindowSpec | None = None
    ) -> RateAlarm:
        """Feed each request's 0/1 indicator of :attr:`action` in window order.

        Rows are ordered by window (stably, so the logged order is kept within a
        window) and fed with ``update_many``; the alarm names the window of the
        request that completed the change.
        """
        owner = "RateWatch"
        acts = _as_1d("actions", actions, None, owner)
        codes, ids, labels = window_codes(window, acts.shape[0], owner, spec)
        order = np.argsort(codes, kind="stable")
        indicator = (acts[order] == self.action).astype(np.float64)
        hits = self._fresh("bernoulli_cusum").update_many(indicator)
        label_of = dict(zip(ids.tolist(), labels, strict=True))
        return self._alarm(hits, ids[codes[order]], label_of, None, "requests")
