"""Matrix factorisation (implicit ALS) and the hybrid that maps side features into factor space."""

from __future__ import annotations

from typing import Protocol, Self

import numpy as np

from hindsight.demo.recsys.data import RecsysData
from hindsight.demo.recsys.types import FloatArray, IntArray, ProgressCallback

# --------------------------------------------------------------------------------------------
# Models
# --------------------------------------------------------------------------------------------


class Recommender(Protocol):
    """What :func:`evaluate` needs from a fitted model."""

    name: str

    def score(self, user_ids: IntArray, *, new_users: bool = False) -> FloatArray:
        """Scores of every item for each user (offline, batched); higher is better."""
        ...

    def recommend(self, user_id: int, k: int = 10, *, new_user: bool = False) -> IntArray:
        """The online path: top ``k`` item ids for one user, unseen items only."""
        ...


def top_k(scores: FloatArray, k: int) -> IntArray:
    """Indices of the ``k`` best scores of a 1-D array, best first."""
    k = min(k, scores.shape[0])
    part = np.argpartition(-scores, k - 1)[:k]
    return part[np.argsort(-scores[part], kind="stable")].astype(np.int64)


def seen_items(data: RecsysData) -> list[IntArray]:
    """Training items of every existing user, for masking already-clicked items."""
    order = np.argsort(data.train_users, kind="stable")
    bounds = np.searchsorted(data.train_users[order], np.arange(data.n_users + 1))
    items = data.train_items[order]
    return [items[bounds[u] : bounds[u + 1]] for u in range(data.n_users)]


def _als_sweep(
    fixed: FloatArray,
    clicks: FloatArray,
    alpha: float,
    reg: float,
) -> FloatArray:
    """One half-step of implicit ALS: the best rows for ``clicks`` given the ``fixed`` factors.

    Solves ``(F'F + alpha F' diag(c_u) F + reg I) x_u = (1 + alpha) F' c_u`` for every row
    ``c_u`` of ``clicks`` at once; the per-row Gram matrices come from one matrix product with
    the flattened outer products of the fixed factors.
    """
    n_fixed, f = fixed.shape
    outer = (fixed[:, :, None] * fixed[:, None, :]).reshape(n_fixed, f * f)
    gram = (clicks @ outer).reshape(-1, f, f) * np.float32(alpha)
    gram += fixed.T @ fixed + np.float32(reg) * np.eye(f, dtype=np.float32)
    rhs = np.float32(1.0 + alpha) * (clicks @ fixed)
    # float64 for the small batched solves: LAPACK's batched float32 path is no faster here.
    solved = np.linalg.solve(gram.astype(np.float64), rhs[:, :, None].astype(np.float64))
    return solved[:, :, 0].astype(np.float32)


def fit_als(
    data: RecsysData,
    *,
    factors: int,
    iterations: int,
    reg: float,
    alpha: float,
    seed: int,
    progress: ProgressCallback | None,
) -> tuple[FloatArray, FloatArray]:
    """Implicit-feedback ALS (Hu, Koren and Volinsky) on the training clicks."""
    rng = np.random.default_rng(seed)
    clicks = data.train_matrix()
    user_f = (rng.standard_normal((data.n_users, factors)) * 0.1).astype(np.float32)
    item_f = (rng.standard_normal((data.n_items, factors)) * 0.1).astype(np.float32)
    confidence = 1.0 + alpha * clicks
    for sweep in range(1, iterations + 1):
        user_f = _als_sweep(item_f, clicks, alpha, reg)
        item_f = _als_sweep(user_f, clicks.T, alpha, reg)
        if progress is not None:
            residual = clicks - user_f @ item_f.T
            loss = float(np.mean(confidence * residual * residual))
            loss += reg * float(np.sum(user_f**2) + np.sum(item_f**2)) / clicks.size
            progress(sweep, {"loss": loss})
    return user_f, item_f


class MatrixFactorization:
    """Collaborative-filtering baseline: implicit ALS factors, popularity for unknown users.

    New users have no factors, so they get the most popular items -- the failure the demo's
    team runs into first.
    """

    name = "matrix_factorization"

    def __init__(self) -> None:
        self.user_factors: FloatArray | None = None
        self.item_factors: FloatArray | None = None
        self.popularity: FloatArray | None = None
        self._seen: list[IntArray] = []

    def fit(
        self,
        data: RecsysData,
        *,
        factors: int = 32,
        iterations: int = 8,
        reg: float = 1.0,
        alpha: float = 20.0,
        seed: int = 0,
        progress: ProgressCallback | None = None,
    ) -> Self:
        """Train the factors with ``iterations`` ALS sweeps; ``progress`` gets the loss per sweep."""
        self.user_factors, self.item_factors = fit_als(
            data,
            factors=factors,
            iterations=iterations,
            reg=reg,
            alpha=alpha,
            seed=seed,
            progress=progress,
        )
        self.popularity = data.item_popularity() / float(max(1, data.train_items.size))
        self._seen = seen_items(data)
        return self

    def _fitted(self) -> tuple[FloatArray, FloatArray, FloatArray]:
        """User factors, item factors and popularity; raises if :meth:`fit` has not run."""
        if self.user_factors is None or self.item_factors is None or self.popularity is None:
            raise RuntimeError(f"{type(self).__name__} is not fitted; call fit() first")
        return self.user_factors, self.item_factors, self.popularity

    def score(self, user_ids: IntArray, *, new_users: bool = False) -> FloatArray:
        """Factor dot products for existing users, item popularity for new ones."""
        user_f, item_f, popularity = self._fitted()
        if new_users:
            return np.broadcast_to(popularity, (len(user_ids), popularity.size)).copy()
        out: FloatArray = user_f[user_ids] @ item_f.T
        return out

    def recommend(self, user_id: int, k: int = 10, *, new_user: bool = False) -> IntArray:
        """Top ``k`` unseen items for one user (online path)."""
        user_f, item_f, popularity = self._fitted()
        if new_user:
            return top_k(popularity, k)
        scores = item_f @ user_f[user_id]
        scores[self._seen[user_id]] = -np.inf
        return top_k(scores, k)


class HybridRecommender:
    """ALS factors for existing users, a ridge map from side features to factors for new users.

    Both paths end in one dot product against the item factors, so serving stays cheap.
    """

    name = "hybrid"

    def __init__(self) -> None:
        self.mf = MatrixFactorization()
        self.feature_map: FloatArray | None = None
        self._feature_mean: FloatArray | None = None
        self._new_features: FloatArray = np.zeros((0, 0), dtype=np.float32)

    def fit(
        self,
        data: RecsysData,
        *,
        factors: int = 32,
        iterations: int = 8,
        reg: float = 1.0,
        alpha: float = 20.0,
        ridge: float = 10.0,
        seed: int = 0,
        progress: ProgressCallback | None = None,
    ) -> Self:
        """Train ALS, then regress the learned user factors on the users' side features."""
        self.mf.fit(
            data,
            factors=factors,
            iterations=iterations,
            reg=reg,
            alpha=alpha,
            seed=seed,
            progress=progress,
        )
        user_f, _, _ = self.mf._fitted()
        feats = data.user_features.astype(np.float64)
        mean = feats.mean(axis=0)
        design = np.hstack([feats - mean, np.ones((feats.shape[0], 1))])
        gram = design.T @ design + ridge * np.eye(design.shape[1])
        self.feature_map = np.linalg.solve(gram, design.T @ user_f).astype(np.float32)
        self._feature_mean = mean.astype(np.float32)
        self._new_features = data.new_user_features  # the feature store new users come from
        return self

    def _new_user_factors(self, features: FloatArray) -> FloatArray:
        """Factors predicted from side features (the ridge map)."""
        if self.feature_map is None or self._feature_mean is None:
            raise RuntimeError("HybridRecommender is not fitted; call fit() first")
        centred = features - self._feature_mean
        out: FloatArray = centred @ self.feature_map[:-1] + self.feature_map[-1]
        return out

    def score(self, user_ids: IntArray, *, new_users: bool = False) -> FloatArray:
        """Factor dot products; new users' factors are predicted from their side features."""
        if not new_users:
            return self.mf.score(user_ids)
        _, item_f, _ = self.mf._fitted()
        out: FloatArray = self._new_user_factors(self._new_features[user_ids]) @ item_f.T
        return out

    def recommend(self, user_id: int, k: int = 10, *, new_user: bool = False) -> IntArray:
        """Top ``k`` unseen items for one user (online path)."""
        if not new_user:
            return self.mf.recommend(user_id, k)
        _, item_f, _ = self.mf._fitted()
        factors = self._new_user_factors(self._new_features[user_id : user_id + 1])[0]
        return top_k(item_f @ factors, k)
