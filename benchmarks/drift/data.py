"""Seeded reference / current tables for the drift benchmark, with a known 7 drifted columns.

Each size ``n`` (100,000 and 1,000,000 rows) has a reference table and a current table
of ``n`` rows each, written once to ``benchmarks/drift/.data/{ref,cur}_{n}.parquet`` and
re-made when missing or written by another version of this generator. Every column is
drawn independently, from its own seeded stream, by the same function for both tables;
only the 7 columns in ``DRIFTED`` get a different parameter in the current table. The
other 18 come from exactly the same distribution in both (independent draws), so any
flag on them is a false alarm.

Numeric columns (``num_00`` .. ``num_19``; float64 unless marked int64):

======  ==========================================  =====================================
column  reference distribution                      drift in current
======  ==========================================  =====================================
num_00  normal(0, 1)
num_01  normal(50, 10)
num_02  normal(10, 2)                               mean +0.3 (a 0.15 sd shift)
num_03  lognormal(0, 0.75)
num_04  exponential(scale 3)
num_05  uniform(0, 100)
num_06  normal(0, 1), 5% nulls
num_07  normal(100, 15)                             sd 15 -> 17.25 (15% wider), same mean
num_08  poisson(3) (int64)
num_09  gamma(shape 2, scale 2)
num_10  97% normal(20, 3) + 3% tail 20+exp(15)      tail share 3% -> 6%
num_11  student t(5)
num_12  integer uniform 1..10 (int64)
num_13  zero-inflated poisson(4): 30% extra zeros   extra zeros 30% -> 36% (int64)
num_14  beta(2, 5)
num_15  lognormal(3, 1)
num_16  lognormal(1, 0.5)                           log-mean +0.1 (a 0.2 sd shift of log)
num_17  50/50 mix of normal(-2, 1), normal(2, 1)
num_18  weibull(1.5) x 10
num_19  binomial(20, 0.3) (int64)
======  ==========================================  =====================================

Categorical string columns (``cat_0`` .. ``cat_4``), Zipf-like shares (share of the
k-th value proportional to ``1 / k**s``), values ``v000``, ``v001``, ...:

=====  ===========  ===  ========================================================
column cardinality  s    drift in current
=====  ===========  ===  ========================================================
cat_0  3            1.2
cat_1  8            1.0  4 points of share move from v000 (36.8% -> 32.8%) to
                         v003 (9.2% -> 13.2%)
cat_2  20           1.0
cat_3  50           1.0  a new value ``new_value`` appears at 3% (the others x 0.97)
cat_4  200          1.1
=====  ===========  ===  ========================================================

Each drift is a change a person sees in an overlaid histogram or bar chart at 100,000
rows, and one that matters to a model, but none is large: small shifts of location,
spread, tail weight and discrete/category shares. Null cells are real Parquet nulls.

Run ``python benchmarks/drift/data.py`` to (re)make the files and print a summary.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

__all__ = [
    "CATEGORICAL",
    "COLUMNS",
    "DATA_DIR",
    "DRIFTED",
    "NUMERIC",
    "SIZES",
    "data_bytes",
    "ensure",
    "load",
    "load_pair",
    "path",
]

HERE = Path(__file__).resolve().parent
DATA_DIR = HERE / ".data"
SEED = 20_240_611
SIZES = (100_000, 1_000_000)
VERSION = "1"  # bump when a distribution changes: cached files are then re-made
_META_KEY = b"hindsight_drift_benchmark"

NUMERIC = [f"num_{i:02d}" for i in range(20)]
CATEGORICAL = [f"cat_{i}" for i in range(5)]
COLUMNS = NUMERIC + CATEGORICAL
DRIFTED = ["num_02", "num_07", "num_10", "num_13", "num_16", "cat_1", "cat_3"]

Gen = Callable[[np.random.Generator, int, bool], pa.Array]


def _f(values: np.ndarray) -> pa.Array:
    return pa.array(np.asarray(values, dtype=np.float64))


def _i(values: np.ndarray) -> pa.Array:
    return pa.array(np.asarray(values, dtype=np.int64))


def _with_nulls(values: np.ndarray, rng: np.random.Generator, share: float) -> pa.Array:
    mask = rng.random(values.shape[0]) < share
    return pa.array(np.asarray(values, dtype=np.float64), mask=mask)


def _mixture_tail(rng: np.random.Generator, n: int, tail_share: float) -> np.ndarray:
    body = rng.normal(20.0, 3.0, n)
    tail = 20.0 + rng.exponential(15.0, n)
    return np.where(rng.random(n) < tail_share, tail, body)


def _zero_inflated(rng: np.random.Generator, n: int, extra_zeros: float) -> np.ndarray:
    counts = rng.poisson(4.0, n)
    return np.where(rng.random(n) < extra_zeros, 0, counts)


def _bimodal(rng: np.random.Generator, n: int) -> np.ndarray:
    return np.where(rng.random(n) < 0.5, rng.normal(-2.0, 1.0, n), rng.normal(2.0, 1.0, n))


NUMERIC_GENERATORS: dict[str, Gen] = {
    "num_00": lambda r, n, d: _f(r.normal(0.0, 1.0, n)),
    "num_01": lambda r, n, d: _f(r.normal(50.0, 10.0, n)),
    "num_02": lambda r, n, d: _f(r.normal(10.3 if d else 10.0, 2.0, n)),
    "num_03": lambda r, n, d: _f(r.lognormal(0.0, 0.75, n)),
    "num_04": lambda r, n, d: _f(r.exponential(3.0, n)),
    "num_05": lambda r, n, d: _f(r.uniform(0.0, 100.0, n)),
    "num_06": lambda r, n, d: _with_nulls(r.normal(0.0, 1.0, n), r, 0.05),
    "num_07": lambda r, n, d: _f(r.normal(100.0, 17.25 if d else 15.0, n)),
    "num_08": lambda r, n, d: _i(r.poisson(3.0, n)),
    "num_09": lambda r, n, d: _f(r.gamma(2.0, 2.0, n)),
    "num_10": lambda r, n, d: _f(_mixture_tail(r, n, 0.06 if d else 0.03)),
    "num_11": lambda r, n, d: _f(r.standard_t(5.0, n)),
    "num_12": lambda r, n, d: _i(r.integers(1, 11, n)),
    "num_13": lambda r, n, d: _i(_zero_inflated(r, n, 0.36 if d else 0.30)),
    "num_14": lambda r, n, d: _f(r.beta(2.0, 5.0, n)),
    "num_15": lambda r, n, d: _f(r.lognormal(3.0, 1.0, n)),
    "num_16": lambda r, n, d: _f(r.lognormal(1.1 if d else 1.0, 0.5, n)),
    "num_17": lambda r, n, d: _f(_bimodal(r, n)),
    "num_18": lambda r, n, d: _f(10.0 * r.weibull(1.5, n)),
    "num_19": lambda r, n, d: _i(r.binomial(20, 0.3, n)),
}

# column -> (cardinality, Zipf exponent)
CATEGORY_SPECS: dict[str, tuple[int, float]] = {
    "cat_0": (3, 1.2),
    "cat_1": (8, 1.0),
    "cat_2": (20, 1.0),
    "cat_3": (50, 1.0),
    "cat_4": (200, 1.1),
}


def category_shares(column: str, drifted: bool) -> tuple[list[str], np.ndarray]:
    """The labels and shares of one categorical column, in the reference or current table."""
    k, s = CATEGORY_SPECS[column]
    labels = [f"v{i:03d}" for i in range(k)]
    shares = 1.0 / np.arange(1, k + 1, dtype=np.float64) ** s
    shares /= shares.sum()
    if drifted and column == "cat_1":
        shares[0] -= 0.04
        shares[3] += 0.04
    if drifted and column == "cat_3":
        labels.append("new_value")
        shares = np.append(shares * 0.97, 0.03)
    return labels, shares / shares.sum()


def _categorical(column: str, rng: np.random.Generator, n: int, drifted: bool) -> pa.Array:
    labels, shares = category_shares(column, drifted)
    codes = rng.choice(len(labels), size=n, p=shares).astype(np.int32)
    # Plain (not dictionary) strings, as a CSV or a warehouse export would give them.
    dictionary = pa.DictionaryArray.from_arrays(pa.array(codes), pa.array(labels))
    return dictionary.cast(pa.string())


def make_table(n: int, current: bool) -> pa.Table:
    """One table of ``n`` rows; ``current`` applies the documented drifts."""
    side = 1 if current else 0
    arrays: dict[str, pa.Array] = {}
    for j, name in enumerate(COLUMNS):
        rng = np.random.default_rng([SEED, n, side, j])  # its own stream per column
        drift = current and name in DRIFTED
        if name in NUMERIC_GENERATORS:
            arrays[name] = NUMERIC_GENERATORS[name](rng, n, drift)
        else:
            arrays[name] = _categorical(name, rng, n, drift)
    table = pa.table(arrays)
    return table.replace_schema_metadata({_META_KEY: VERSION.encode()})


def path(n: int, side: str) -> Path:
    """Where the ``side`` ("ref" or "cur") table of ``n`` rows lives."""
    if side not in ("ref", "cur"):
        raise ValueError(f"side must be 'ref' or 'cur', not {side!r}")
    return DATA_DIR / f"{side}_{n}.parquet"


def _is_current(p: Path) -> bool:
    if not p.exists():
        return False
    try:
        meta = pq.read_schema(p).metadata or {}
    except Exception:
        return False
    return meta.get(_META_KEY) == VERSION.encode()


def ensure(n: int) -> tuple[Path, Path]:
    """Write the reference and current files of ``n`` rows unless already there; their paths."""
    DATA_DIR.mkdir(parents=True, exist_ok=True)
    out = []
    for side in ("ref", "cur"):
        p = path(n, side)
        if not _is_current(p):
            tmp = p.with_suffix(".tmp")
            pq.write_table(make_table(n, current=side == "cur"), tmp)
            tmp.replace(p)
        out.append(p)
    return out[0], out[1]


def load(n: int, side: str) -> pa.Table:
    """The ``side`` ("ref" or "cur") table of ``n`` rows, as a pyarrow Table."""
    ensure(n)
    return pq.read_table(path(n, side))


def load_pair(n: int) -> tuple[pa.Table, pa.Table]:
    """(reference, current) tables of ``n`` rows."""
    return load(n, "ref"), load(n, "cur")


def data_bytes(tables: Sequence[pa.Table]) -> int:
    """Bytes the loaded Arrow tables take (buffers, as ``Table.nbytes`` counts them)."""
    return int(sum(t.nbytes for t in tables))


def _summary(n: int) -> str:
    ref, cur = load_pair(n)
    lines = [f"{n:,} rows: ref {ref.nbytes / 2**20:,.1f} MiB, cur {cur.nbytes / 2**20:,.1f} MiB"]
    for name in DRIFTED:
        r, c = ref.column(name), cur.column(name)
        if name in NUMERIC_GENERATORS:
            rv = r.to_numpy(zero_copy_only=False).astype(float)
            cv = c.to_numpy(zero_copy_only=False).astype(float)
            lines.append(f"  {name}: mean {np.nanmean(rv):.3f} -> {np.nanmean(cv):.3f}, "
                         f"sd {np.nanstd(rv):.3f} -> {np.nanstd(cv):.3f}")
        else:
            top = {v["values"]: v["counts"] / n for v in r.value_counts().to_pylist()}
            now = {v["values"]: v["counts"] / n for v in c.value_counts().to_pylist()}
            moved = sorted(set(top) | set(now), key=lambda v: -abs(now.get(v, 0) - top.get(v, 0)))[:2]
            lines.append(f"  {name}: " + ", ".join(
                f"{v} {top.get(v, 0):.1%} -> {now.get(v, 0):.1%}" for v in moved))
    return "\n".join(lines)


if __name__ == "__main__":
    sizes = [int(a) for a in sys.argv[1:]] or list(SIZES)
    for size in sizes:
        print(_summary(size))
