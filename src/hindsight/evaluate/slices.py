"""Where a model does worse: slices written as predicates, and slices found automatically.

:func:`parse_slice` and :func:`slice_mask` read a slice such as
``"age < 25 and channel == 'web'"`` (the language is described in
:mod:`hindsight.evaluate._predicates`). :func:`find_slices` searches for slices whose
loss (a 0/1 error, a per-row cost, an absolute error; higher is worse) is significantly
higher than the rest of the data's, in the spirit of SliceFinder (Chung et al. 2019):

1. Each column becomes a few conditions. Numeric columns: ``bins`` quantile bins with
   readable edges (``a <= x < b``) and the lower and upper tails (``x < b``, ``x >= a``),
   or ``x == v`` for columns with at most ``bins`` distinct values; booleans
   ``x == True`` / ``x == False``; strings the ``max_levels`` most frequent levels
   ``x == 'v'`` (the others are not tested); and ``x == None`` where values are missing.
2. Order 2: every conjunction of two conditions on different columns. All counts come
   from ``np.bincount`` over combined integer codes (O(n) per pair of columns).
3. Each candidate with at least ``min_size`` rows is tested against the rest with
   Welch's t-test, one-sided, from sums and sums of squares. A two-condition slice must
   also be worse than the rest of each of its one-condition parents; its p-value for the
   false-discovery control is the largest of the three (an intersection-union test), so a
   conjunction is only reported when both conditions matter. Benjamini-Hochberg runs over
   every candidate tested: ``significant = q <= alpha and excess >= min_effect``.
4. Significant slices are ranked by ``excess_total`` (the excess errors or cost they
   carry, ``size * (loss - rest_loss)``), and each is dropped when it is redundant with a
   better-ranked slice ``K`` already reported:

   * it lies inside ``K`` (by its conditions, or because all its rows are ``K``'s) and is
     not significantly worse (one-sided Welch, ``alpha``) than the rest of ``K``
     (``country == 'BR' and age >= 40`` inside ``country == 'BR'``);
   * it contains ``K`` and its rows outside ``K`` are not worse than the rows outside it
     (``channel == 'web'`` around ``age < 25 and channel == 'web'``);
   * its rows are at least 90% the same as ``K``'s (Jaccard index >= 0.9);
   * its rows outside the reported slices (but those that contain it) are no worse than
     the rows outside all of them: its excess is already reported (``channel == 'web' and
     plan == 'free'`` when ``age < 25 and channel == 'web'`` and ``plan == 'free' and
     is_new == True`` are).

   Conversely a reported ``K`` is withdrawn when a later slice inside it carries its
   excess (the rest of ``K`` is no worse than the rows outside ``K``), or when ``K`` lies
   inside a later slice and is no worse than that slice's other rows; and at the end
   each reported slice, worst-ranked first, is checked again against the last rule.

Every reported ``expr`` reads back with :func:`parse_slice` to exactly the same rows.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from numpy.typing import ArrayLike, NDArray
from scipy import special

from hindsight._plain import plain_fields
from hindsight._validation import Interval, validate_params
from hindsight.data.frames import to_arrow
from hindsight.errors import ConfigError, DataError
from hindsight.evaluate._predicates import Slice, parse_slice, quote_name, slice_mask

__all__ = ["FoundSlice", "Slice", "SliceReport", "find_slices", "parse_slice", "slice_mask"]

_Float = NDArray[np.float64]
_Mask = NDArray[np.bool_]
_SAME_ROWS = 0.9  # Jaccard index above which two slices are the same finding


@dataclass(frozen=True)
class FoundSlice:
    """A slice whose loss is significantly higher than the rest of the data's."""

    expr: str
    columns: tuple[str, ...]
    order: int  # conditions joined: 1 or 2
    size: int
    share: float
    loss: float  # mean loss in the slice
    rest_loss: float  # mean loss of the other rows
    excess: float  # loss - rest_loss
    ratio: float  # loss / rest_loss (inf when the rest has no loss)
    excess_total: float  # size * excess: the excess errors (or cost) the slice carries
    statistic: float  # Welch's t, slice against the rest
    df: float  # Welch-Satterthwaite degrees of freedom
    p_value: float  # one-sided: the slice is worse than the rest
    p_within: float | None  # order 2: the larger p of the slice against each parent's rest
    q_value: float  # Benjamini-Hochberg, over every candidate tested

    def mask(self, data: Any) -> _Mask:
        """The rows of ``data`` in this slice."""
        return slice_mask(data, self.expr)

    def to_dict(self) -> dict[str, Any]:
        return plain_fields(self)


@dataclass(frozen=True)
class SliceReport:
    """What :func:`find_slices` found: the significant, non-redundant slices, best first."""

    slices: list[FoundSlice]
    tested: int  # candidates tested (and corrected for)
    significant: int  # candidates significant before redundant ones were dropped
    overall_loss: float
    n: int
    alpha: float
    min_size: int  # in rows
    columns: tuple[str, ...]  # columns sliced
    skipped: dict[str, str] = field(default_factory=dict)  # column -> why it was not sliced

    def to_dict(self) -> dict[str, Any]:
        return plain_fields(self)


# ----------------------------------------------------------------------------- encoding


@dataclass(frozen=True)
class _Feature:
    """One column as an integer code per row (its atoms) and conditions over the atoms."""

    name: str
    codes: NDArray[np.intp]
    member: _Float  # (conditions, atoms): 1 where a condition covers an atom
    exprs: tuple[str, ...]

    @property
    def k(self) -> int:
        return int(self.member.shape[1])


def _number(v: float, integer: bool) -> str:
    if integer or (float(v).is_integer() and abs(v) < 2**53):
        return str(int(v))
    return repr(float(v))


def _edges(x: _Float, bins: int, integer: bool) -> _Float:
    """Readable inner bin edges near the quantiles of ``x``, inside ``(min, max]``."""
    lo, hi = float(x.min()), float(x.max())
    probs = np.arange(1, bins) / bins
    q = np.quantile(x, probs)
    if np.count_nonzero(q > lo) < bins - 1 and (x > lo).any():
        # Many rows tie at the minimum (zero amounts): cut the other values too.
        above = x[x > lo]
        q = np.concatenate([q, [above.min()], np.quantile(above, probs)])
    q = np.unique(q)
    q = q[(q > lo) & (q <= hi) & np.isfinite(q)]
    if integer:
        e = np.unique(np.ceil(q))
        return e[(e > lo) & (e <= hi)]
    e = q
    for digits in range(2, 18):  # the fewest significant digits that keep the edges apart
        e = np.array([float(f"{v:.{digits}g}") for v in q])
        if np.all(np.diff(e) > 0) and np.all((e > lo) & (e <= hi)):
            break
    return np.unique(e[(e > lo) & (e <= hi)])


def _numeric(name: str, col: pa.ChunkedArray, bins: int) -> _Feature | None:
    integer = pa.types.is_integer(col.type)
    arr = np.asarray(pc.cast(col, pa.float64(), safe=False).to_numpy(zero_copy_only=False),
                     dtype=np.float64)
    missing = np.isnan(arr)
    x = arr[~missing]
    q = quote_name(name)
    exprs: list[str] = []
    if x.size:
        distinct = np.unique(x)
        few = distinct.size <= bins
        edges = distinct[1:] if few else _edges(x, bins, integer)
        b = edges.size + 1
        codes = np.searchsorted(edges, np.where(missing, 0.0, arr), side="right")
        cover: list[tuple[int, int]] = []  # atoms [first, last] of each condition
        txt = [_number(e, integer) for e in edges]
        for a in range(b):
            if few:
                exprs.append(f"{q} == {_number(distinct[a], integer)}")
            elif b == 1:
                continue
            elif a == 0:
                exprs.append(f"{q} < {txt[0]}")
            elif a == b - 1:
                exprs.append(f"{q} >= {txt[-1]}")
            else:
                exprs.append(f"{txt[a - 1]} <= {q} < {txt[a]}")
            cover.append((a, a))
        for j in range(1, b - 1):  # tails of at least two bins and at most all but one
            exprs.append(f"{q} < {txt[j]}")
            cover.append((0, j))
        for j in range(b - 2):
            exprs.append(f"{q} >= {txt[j]}")
            cover.append((j + 1, b - 1))
    else:
        b, codes, cover = 0, np.zeros(arr.size, dtype=np.intp), []
    k = b + int(missing.any())
    member = np.zeros((len(cover) + int(missing.any()), max(k, 1)))
    for i, (first, last) in enumerate(cover):
        member[i, first:last + 1] = 1.0
    if missing.any():
        codes = np.where(missing, b, codes)
        member[-1, b] = 1.0
        exprs.append(f"{q} == None")
    return _Feature(name, codes.astype(np.intp), member, tuple(exprs)) if exprs else None


def _categorical(name: str, col: pa.ChunkedArray, max_levels: int) -> _Feature | None:
    enc = pc.dictionary_encode(col.combine_chunks())
    idx = np.asarray(pc.fill_null(enc.indices, -1).to_numpy(zero_copy_only=False), dtype=np.intp)
    counts = np.bincount(idx[idx >= 0], minlength=len(enc.dictionary))
    order = np.argsort(-counts, kind="stable")[:max_levels]  # ties: first seen first
    order = order[counts[order] > 0]
    t = order.size
    lookup = np.full(len(enc.dictionary), t, dtype=np.intp)
    lookup[order] = np.arange(t)
    other = bool(t < np.count_nonzero(counts))
    null_code = t + int(other)
    codes = np.where(idx >= 0, lookup[np.maximum(idx, 0)], null_code)
    missing = bool((idx < 0).any())
    q = quote_name(name)
    exprs = [f"{q} == {v!r}" for v in enc.dictionary.take(pa.array(order)).to_pylist()]
    member = np.zeros((t + int(missing), null_code + int(missing)))
    member[np.arange(t), np.arange(t)] = 1.0
    if missing:
        member[-1, null_code] = 1.0
        exprs.append(f"{q} == None")
    return _Feature(name, codes, member, tuple(exprs)) if exprs else None


def _boolean(name: str, col: pa.ChunkedArray) -> _Feature | None:
    missing = np.asarray(pc.is_null(col).to_numpy(zero_copy_only=False), dtype=bool)
    value = np.asarray(pc.fill_null(col, False).to_numpy(zero_copy_only=False), dtype=bool)
    codes = np.where(missing, 2, value.astype(np.intp))
    q = quote_name(name)
    exprs = [f"{q} == False", f"{q} == True"] + ([f"{q} == None"] if missing.any() else [])
    return _Feature(name, codes, np.eye(len(exprs), 3)[:, : len(exprs)], tuple(exprs))


def _encode(table: pa.Table, name: str, bins: int, max_levels: int) -> _Feature | str:
    """The column as a feature, or why it cannot be sliced."""
    col = table.column(name)
    if pa.types.is_dictionary(col.type):
        col = col.cast(col.type.value_type)
    dtype = col.type
    if pa.types.is_boolean(dtype):
        feature = _boolean(name, col)
    elif pa.types.is_integer(dtype) or pa.types.is_floating(dtype) or pa.types.is_decimal(dtype):
        feature = _numeric(name, col, bins)
    elif pa.types.is_string(dtype) or pa.types.is_large_string(dtype):
        feature = _categorical(name, col, max_levels)
    elif pa.types.is_string_view(dtype):
        feature = _categorical(name, col.cast(pa.string()), max_levels)
    elif pa.types.is_timestamp(dtype) or pa.types.is_date(dtype):
        return ("dates and times are not sliced automatically; pass a slice such as "
                f"{quote_name(name)} >= '2024-01-31' to slice_mask")
    else:
        return f"type {dtype} cannot be sliced"
    return feature if feature is not None else "no values to slice on"


# ----------------------------------------------------------------------------- statistics


def _welch(n1: _Float, s1: _Float, q1: _Float, n0: _Float, s0: _Float,
           q0: _Float) -> tuple[_Float, _Float, _Float]:
    """Welch's t, its degrees of freedom and one-sided p (group 1 higher), from sums."""
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        m1, m0 = s1 / n1, s0 / n0
        a = np.maximum(q1 - s1 * m1, 0.0) / (n1 - 1) / n1  # var / n, each group
        b = np.maximum(q0 - s0 * m0, 0.0) / (n0 - 1) / n0
        se2 = a + b
        diff = m1 - m0
        t = diff / np.sqrt(se2)
        df = se2**2 / (a**2 / (n1 - 1) + b**2 / (n0 - 1))
        p = special.stdtr(df, -t)
    flat = se2 <= 0  # no spread on either side: worse only if the means differ upwards
    p = np.where(flat, np.where(diff > 0, 0.0, 1.0), p)
    p = np.where((n1 < 2) | (n0 < 2) | ~np.isfinite(p), 1.0, p)
    return t, df, np.clip(p, 0.0, 1.0)


def _bh(p: _Float) -> _Float:
    """Benjamini-Hochberg q-values (adjusted p-values)."""
    m = p.size
    if m == 0:
        return p.copy()
    order = np.argsort(p, kind="stable")
    scaled = p[order] * m / np.arange(1, m + 1)
    q = np.minimum.accumulate(scaled[::-1])[::-1]
    out = np.empty(m)
    out[order] = np.minimum(q, 1.0)
    return out


@dataclass(frozen=True)
class _Candidates:
    """Every candidate tested: its conditions and statistics, one entry per candidate."""

    parts: list[tuple[tuple[int, int], ...]]  # (feature, condition) per condition
    n: _Float
    s: _Float  # sum of the centred loss
    q: _Float  # sum of its squares
    t: _Float
    df: _Float
    p: _Float  # against the rest
    p_within: _Float  # against each parent's rest (order 2; nan for order 1)
    p_joint: _Float  # the p Benjamini-Hochberg reads
    q_value: _Float


def _score(features: list[_Feature], y: _Float, min_count: int, max_order: int) -> _Candidates:
    total_n, total_s, total_q = float(y.size), float(y.sum()), float((y * y).sum())
    parts: list[tuple[tuple[int, int], ...]] = []
    stats: list[tuple[_Float, ...]] = []  # n, s, q, p_within per block of candidates
    one: list[tuple[_Float, _Float, _Float]] = []
    for f, feat in enumerate(features):
        atoms = [np.bincount(feat.codes, weights=w, minlength=feat.k) for w in (None, y, y * y)]
        n, s, q = (feat.member @ a for a in atoms)
        one.append((n, s, q))
        keep = np.flatnonzero((n >= min_count) & (total_n - n >= 2))
        parts += [((f, int(c)),) for c in keep]
        stats.append((n[keep], s[keep], q[keep], np.full(keep.size, np.nan)))
    for fa in range(len(features) if max_order >= 2 else 0):
        for fb in range(fa + 1, len(features)):
            a, b = features[fa], features[fb]
            combined = a.codes * b.k + b.codes
            cells = [np.bincount(combined, weights=w, minlength=a.k * b.k).reshape(a.k, b.k)
                     for w in (None, y, y * y)]
            n, s, q = (a.member @ c @ b.member.T for c in cells)
            pa_, pb_ = one[fa], one[fb]
            ok = ((n >= min_count) & (total_n - n >= 2)
                  & (pa_[0][:, None] - n >= 2) & (pb_[0][None, :] - n >= 2))
            ia, ib = np.nonzero(ok)
            n1, s1, q1 = n[ia, ib], s[ia, ib], q[ia, ib]
            within = [_welch(n1, s1, q1, par[0][i] - n1, par[1][i] - s1, par[2][i] - q1)[2]
                      for par, i in ((pa_, ia), (pb_, ib))]
            parts += [((fa, int(i)), (fb, int(j))) for i, j in zip(ia, ib, strict=True)]
            stats.append((n1, s1, q1, np.maximum(within[0], within[1])))
    n1, s1, q1, p_within = (np.concatenate([blk[i] for blk in stats]) if stats else np.zeros(0)
                            for i in range(4))
    t, df, p = _welch(n1, s1, q1, total_n - n1, total_s - s1, total_q - q1)
    p_joint = np.where(np.isnan(p_within), p, np.maximum(p, np.nan_to_num(p_within, nan=1.0)))
    return _Candidates(parts, n1, s1, q1, t, df, p, p_within, p_joint, _bh(p_joint))


# ----------------------------------------------------------------------------- selection


class _Picker:
    """Drops redundant slices, best-ranked first (the rules in the module docstring)."""

    def __init__(self, features: list[_Feature], cand: _Candidates, y: _Float, alpha: float):
        self.features, self.cand, self.alpha = features, cand, alpha
        self.total = (float(y.size), float(y.sum()), float((y * y).sum()))
        # subset[f][c1, c2]: condition c1 of feature f covers only atoms that c2 covers
        self.subset = [np.all(f.member[:, None, :] <= f.member[None, :, :], axis=2)
                       for f in features]
        self.masks: dict[int, _Mask] = {}
        self.y = y

    def _inside(self, i: int, k: int) -> bool:
        """Whether slice ``i``'s rows all lie in slice ``k``: by its conditions, or in the
        data (``user == 'new'`` inside ``history < 17`` when every new user has none)."""
        mine = dict(self.cand.parts[i])
        if all(f in mine and self.subset[f][mine[f], c] for f, c in self.cand.parts[k]):
            return True
        if self.cand.n[i] > self.cand.n[k]:
            return False
        return not np.any(self._mask(i) & ~self._mask(k))

    def _stats(self, i: int) -> _Float:
        return np.array([self.cand.n[i], self.cand.s[i], self.cand.q[i]])

    def _worse(self, one: _Float, other: _Float) -> bool:
        """Whether the rows summed in ``one`` are significantly worse than ``other``'s."""
        p = _welch(*(np.atleast_1d(v) for v in (*one, *other)))[2]
        return bool(p[0] <= self.alpha)

    def _mask(self, i: int) -> _Mask:
        if i not in self.masks:
            m = np.ones(self.features[0].codes.size, dtype=bool)
            for f, c in self.cand.parts[i]:
                feat = self.features[f]
                m &= feat.member[c][feat.codes] > 0
            self.masks[i] = m
        return self.masks[i]

    def _sums(self, mask: _Mask) -> _Float:
        y = self.y[mask]
        return np.array([float(y.size), float(y.sum()), float((y * y).sum())])

    def _explained(self, i: int, others: list[int]) -> bool:
        """Whether slice ``i``'s rows outside the ``others`` (none of which contains it) are
        no worse than the rows outside all of them: its excess has been reported already."""
        if not others:
            return False
        union = np.zeros(self.y.size, dtype=bool)
        for k in others:
            union |= self._mask(k)
        own = self._mask(i)
        return not self._worse(self._sums(own & ~union), self._sums(~(own | union)))

    def pick(self, ranked: NDArray[np.intp], top: int) -> list[int]:
        kept: list[int] = []
        total = np.array(self.total)
        for i in map(int, ranked):
            x, drop, withdraw = self._stats(i), False, set()
            for k in kept:
                kk = self._stats(k)
                if self._inside(i, k):  # x within k: worse than k's other rows?
                    if not self._worse(x, kk - x):
                        drop = True
                    elif not self._worse(kk - x, total - kk):
                        withdraw.add(k)  # k's excess is x's
                elif self._inside(k, i):  # k within x: do x's other rows add anything?
                    if not self._worse(x - kk, total - x):
                        drop = True
                    elif not self._worse(kk, x - kk):
                        withdraw.add(k)  # k is just a part of x
                elif min(x[0], kk[0]) >= _SAME_ROWS * max(x[0], kk[0]):
                    a, b = self._mask(i), self._mask(k)
                    both = np.count_nonzero(a & b)
                    drop = both >= _SAME_ROWS * (x[0] + kk[0] - both)
                if drop:
                    break
            if drop:
                continue
            kept = [k for k in kept if k not in withdraw]
            if len(kept) >= top or self._explained(i, [k for k in kept if not self._inside(i, k)]):
                continue
            kept.append(i)
        # A slice reported early can be explained by those found after it: check again,
        # worst-ranked first, so that of two slices explaining each other the better stays.
        for i in reversed(list(kept)):
            if self._explained(i, [k for k in kept if k != i and not self._inside(i, k)]):
                kept.remove(i)
        return kept


# ----------------------------------------------------------------------------- API


def _loss(table: pa.Table, loss: ArrayLike | str) -> tuple[_Float, str | None]:
    if isinstance(loss, str):
        if loss not in table.column_names:
            raise DataError(f"find_slices: loss column {loss!r} is not in the data; its columns "
                            f"are {', '.join(map(repr, table.column_names[:8]))}.")
        col = table.column(loss)
        if not (pa.types.is_integer(col.type) or pa.types.is_floating(col.type)
                or pa.types.is_boolean(col.type) or pa.types.is_decimal(col.type)):
            raise DataError(f"find_slices: loss column {loss!r} is {col.type}; it must hold "
                            "one number per row (a 0/1 error, a cost, an absolute error).")
        values = pc.cast(col, pa.float64()).to_numpy(zero_copy_only=False)
        return np.asarray(values, dtype=np.float64), loss
    try:
        return np.asarray(loss, dtype=np.float64), None
    except (TypeError, ValueError) as exc:
        raise DataError(f"find_slices: loss must be one number per row: {exc}.") from exc


def find_slices(
    data: Any,
    loss: ArrayLike | str,
    *,
    columns: list[str] | tuple[str, ...] | None = None,
    max_order: int = 2,
    bins: int = 5,
    min_size: int | float = 0.01,
    alpha: float = 0.05,
    min_effect: float = 0.0,
    top: int = 20,
    max_levels: int = 20,
) -> SliceReport:
    """Find the slices of ``data`` where ``loss`` is significantly higher than elsewhere.

    ``loss`` holds one number per row, higher is worse (or names a column of ``data``).
    ``min_size`` is a share of the rows when a float below 1, else a row count. See the
    module docstring for the candidates, the tests and the redundancy rules.

    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> country = rng.choice(["FR", "BR", "US", "DE"], 4000)
    >>> error = rng.random(4000) < np.where(country == "BR", 0.3, 0.1)
    >>> report = find_slices({"country": country}, error)
    >>> [s.expr for s in report.slices]
    ["country == 'BR'"]
    """
    validate_params("find_slices", locals(), {
        "max_order": Interval(int, 1, 2), "bins": Interval(int, 2, None),
        "alpha": Interval(float, 0, 1, closed="neither"), "min_effect": Interval(float, 0, None),
        "top": Interval(int, 1, None), "max_levels": Interval(int, 1, None),
        "min_size": Interval(float, 0, None, closed="neither"),
    })
    table = to_arrow(data, what="data")
    y, loss_column = _loss(table, loss)
    n = table.num_rows
    if y.shape != (n,):
        raise DataError(f"find_slices: need one loss per row ({n}); got shape {y.shape}.")
    if n < 4:
        raise DataError(f"find_slices needs at least 4 rows to compare slices; got {n}.")
    if not np.isfinite(y).all():
        bad = int(np.count_nonzero(~np.isfinite(y)))
        raise DataError(f"find_slices: {bad} losses are missing or not finite; drop those rows.")
    if isinstance(min_size, float) and min_size < 1:
        min_count = math.ceil(min_size * n)
    elif float(min_size).is_integer():
        min_count = int(min_size)
    else:
        raise ConfigError("The 'min_size' parameter of find_slices must be a share in (0, 1) "
                          f"or a row count >= 1. Got {min_size!r}.")
    min_count = max(min_count, 2)

    names = [c for c in table.column_names if c != loss_column] if columns is None else list(columns)
    unknown = [c for c in names if c not in table.column_names]
    if unknown:
        raise DataError(f"find_slices: no column {unknown[0]!r} in the data; its columns are "
                        f"{', '.join(map(repr, table.column_names[:8]))}.")
    if loss_column is not None and loss_column in names:
        raise ConfigError(f"find_slices: the loss column {loss_column!r} cannot also be sliced; "
                          "leave it out of columns.")
    features: list[_Feature] = []
    skipped: dict[str, str] = {}
    for name in names:
        encoded = _encode(table, name, bins, max_levels)
        if isinstance(encoded, str):
            if columns is not None:
                raise DataError(f"find_slices: column {name!r} cannot be sliced: {encoded}.")
            skipped[name] = encoded
        else:
            features.append(encoded)

    mean = float(y.mean())
    centred = y - mean  # centred sums keep the variances accurate for large costs
    cand = _score(features, centred, min_count, max_order)
    with np.errstate(divide="ignore", invalid="ignore"):
        rest = (float(centred.sum()) - cand.s) / (n - cand.n)
        excess = cand.s / cand.n - rest
    significant = (cand.q_value <= alpha) & (excess >= min_effect) & (excess > 0)
    idx = np.flatnonzero(significant)
    ranked = idx[np.lexsort((-cand.n[idx], -(cand.n[idx] * excess[idx])))]
    kept = _Picker(features, cand, centred, alpha).pick(ranked, top)

    found = []
    for i in kept:
        expr = " and ".join(features[f].exprs[c] for f, c in cand.parts[i])
        loss_in, loss_out = float(cand.s[i] / cand.n[i]) + mean, float(rest[i]) + mean
        with np.errstate(divide="ignore", invalid="ignore"):
            ratio = float(np.float64(loss_in) / loss_out)
        found.append(FoundSlice(
            expr=parse_slice(expr).expr,
            columns=tuple(features[f].name for f, _ in cand.parts[i]),
            order=len(cand.parts[i]), size=int(cand.n[i]), share=float(cand.n[i] / n),
            loss=loss_in, rest_loss=loss_out, excess=float(excess[i]), ratio=ratio,
            excess_total=float(cand.n[i] * excess[i]), statistic=float(cand.t[i]),
            df=float(cand.df[i]), p_value=float(cand.p[i]),
            p_within=None if np.isnan(cand.p_within[i]) else float(cand.p_within[i]),
            q_value=float(cand.q_value[i]),
        ))
    return SliceReport(
        slices=found, tested=len(cand.parts), significant=int(idx.size), overall_loss=mean,
        n=n, alpha=float(alpha), min_size=min_count,
        columns=tuple(f.name for f in features), skipped=skipped,
    )
