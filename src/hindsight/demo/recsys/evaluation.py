"""Offline evaluation: hit rate, NDCG, cold-start hit rate, p99 latency, coverage."""

from __future__ import annotations

import time

import numpy as np
import numpy.typing as npt

from hindsight.demo.recsys.data import RecsysData
from hindsight.demo.recsys.factors import Recommender, seen_items
from hindsight.demo.recsys.types import IntArray

BoolArray = npt.NDArray[np.bool_]
FloatArray64 = npt.NDArray[np.float64]

# --------------------------------------------------------------------------------------------
# Evaluation
# --------------------------------------------------------------------------------------------


def per_user_hits(top_items: IntArray, relevant: list[IntArray]) -> tuple[BoolArray, FloatArray64]:
    """Each user's hit (a relevant item in the list) and NDCG of ranked lists.

    ``top_items`` is ``(n_users, k)``, best first; ``relevant[j]`` are user ``j``'s held-out
    items. NDCG: binary gains, ``1 / log2(rank + 1)``, normalised by the ideal list of
    ``min(len(relevant), k)`` hits.
    """
    n_users, k = top_items.shape
    discounts = 1.0 / np.log2(np.arange(2, k + 2))
    hits = np.zeros(n_users, dtype=bool)
    ndcg = np.zeros(n_users)
    for j in range(n_users):
        gains = np.isin(top_items[j], relevant[j])
        hits[j] = bool(gains.any())
        ideal = float(discounts[: min(len(relevant[j]), k)].sum())
        ndcg[j] = float(discounts[gains].sum()) / ideal if ideal > 0 else 0.0
    return hits, ndcg


def ranking_metrics(
    top_items: IntArray, relevant: list[IntArray], n_items: int
) -> tuple[float, float, float]:
    """Hit rate, NDCG and catalogue coverage of ranked lists against held-out clicks.

    Hit rate: share of users with at least one relevant item in their list; NDCG as in
    :func:`per_user_hits`. Coverage: share of the ``n_items`` catalogue that appears in at
    least one list.
    """
    if top_items.shape[0] == 0:
        return 0.0, 0.0, 0.0
    hits, ndcg = per_user_hits(top_items, relevant)
    coverage = np.unique(top_items).size / float(n_items)
    return float(hits.mean()), float(ndcg.mean()), float(coverage)


def _group(users: IntArray, items: IntArray) -> tuple[IntArray, list[IntArray]]:
    """Distinct users (sorted) and each one's items."""
    order = np.argsort(users, kind="stable")
    distinct, starts = np.unique(users[order], return_index=True)
    return distinct.astype(np.int64), [
        chunk.astype(np.int64) for chunk in np.split(items[order], starts[1:])
    ]


def _batched_top_k(
    model: Recommender,
    user_ids: IntArray,
    k: int,
    *,
    new_users: bool,
    seen: list[IntArray] | None,
    batch: int = 256,
) -> IntArray:
    """Top ``k`` items of each user from ``model.score``, ``seen`` items excluded."""
    out = np.empty((user_ids.size, k), dtype=np.int64)
    for start in range(0, user_ids.size, batch):
        ids = user_ids[start : start + batch]
        scores = np.array(model.score(ids, new_users=new_users), dtype=np.float32, copy=True)
        if seen is not None:
            for row, user in enumerate(ids):
                scores[row, seen[int(user)]] = -np.inf
        part = np.argpartition(-scores, k - 1, axis=1)[:, :k]
        order = np.argsort(-np.take_along_axis(scores, part, axis=1), axis=1, kind="stable")
        out[start : start + ids.size] = np.take_along_axis(part, order, axis=1)
    return out


def evaluate(
    model: Recommender,
    data: RecsysData,
    k: int = 10,
    *,
    latency_requests: int = 200,
    latency_budget_s: float = 0.5,
    min_latency_requests: int = 3,
) -> dict[str, float]:
    """Offline evaluation of a fitted model: click-through proxies, ranking quality, latency.

    ``ctr`` and ``ndcg_at_{k}`` are over existing users with held-out clicks (already-clicked
    training items are excluded from their lists), ``ctr_new_users`` over the cold-start users.
    ``latency_p99_ms`` times ``model.recommend`` (one user against the whole catalogue, the
    online path) with ``time.perf_counter``, alternating existing and new users, for up to
    ``latency_requests`` requests; a slow model stops after ``latency_budget_s`` seconds of
    requests once ``min_latency_requests`` are in. ``coverage`` is the share of the catalogue
    in at least one user's top ``k`` (existing and new users together).
    """
    if k < 1 or k > data.n_items:
        raise ValueError(f"k must be in [1, {data.n_items}], got {k}")
    seen = seen_items(data)
    users, relevant = _group(data.test_users, data.test_items)
    new_users, new_relevant = _group(data.new_test_users, data.new_test_items)
    top = _batched_top_k(model, users, k, new_users=False, seen=seen)
    new_top = _batched_top_k(model, new_users, k, new_users=True, seen=None)
    ctr, ndcg, _ = ranking_metrics(top, relevant, data.n_items)
    ctr_new, _, _ = ranking_metrics(new_top, new_relevant, data.n_items)
    coverage = np.unique(np.concatenate([top.ravel(), new_top.ravel()])).size / data.n_items

    # Request traffic: existing and new users taking turns, then whoever is left.
    existing = [(int(u), False) for u in users]
    fresh = [(int(u), True) for u in new_users]
    n = min(len(existing), len(fresh))
    traffic = [r for pair in zip(existing[:n], fresh[:n], strict=True) for r in pair]
    traffic += existing[n:] + fresh[n:]
    timings: list[float] = []
    spent = 0.0
    for i in range(latency_requests if traffic else 0):
        user, is_new = traffic[i % len(traffic)]
        start = time.perf_counter()
        model.recommend(user, k, new_user=is_new)
        elapsed = time.perf_counter() - start
        timings.append(elapsed)
        spent += elapsed
        if spent > latency_budget_s and len(timings) >= min_latency_requests:
            break
    latency = float(np.percentile(timings, 99)) * 1000.0 if timings else 0.0
    return {
        "ctr": ctr,
        f"ndcg_at_{k}": ndcg,
        "ctr_new_users": ctr_new,
        "latency_p99_ms": latency,
        "coverage": float(coverage),
    }


def user_outcomes(model: Recommender, data: RecsysData, k: int = 10) -> dict[str, np.ndarray]:
    """One row per evaluated user: who they are and what their top ``k`` list earned.

    Columns: ``user`` (``"returning"`` or ``"new"``), ``history`` (training clicks; 0 for
    new users), ``held_out`` (held-out clicks), ``hit`` (at least one of them in the list)
    and ``ndcg``. Returning users come first, in user order, then the new users. The
    returning users' already-clicked items are left out of their lists, as in
    :func:`evaluate`.
    """
    if k < 1 or k > data.n_items:
        raise ValueError(f"k must be in [1, {data.n_items}], got {k}")
    users, relevant = _group(data.test_users, data.test_items)
    new_users, new_relevant = _group(data.new_test_users, data.new_test_items)
    top = _batched_top_k(model, users, k, new_users=False, seen=seen_items(data))
    new_top = _batched_top_k(model, new_users, k, new_users=True, seen=None)
    hits, ndcg = per_user_hits(top, relevant)
    new_hits, new_ndcg = per_user_hits(new_top, new_relevant)
    history = np.bincount(data.train_users, minlength=data.n_users)[users]
    return {
        "user": np.array(["returning"] * users.size + ["new"] * new_users.size),
        "history": np.concatenate([history, np.zeros(new_users.size, dtype=np.int64)]),
        "held_out": np.array([len(r) for r in relevant + new_relevant], dtype=np.int64),
        "hit": np.concatenate([hits, new_hits]),
        "ndcg": np.concatenate([ndcg, new_ndcg]),
    }
