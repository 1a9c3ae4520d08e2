"""Small, seeded, NumPy-only recommender training used to replay a team's journey in the demo.

Everything here is real training on synthetic data: a click dataset with side features, three
recommenders and an offline evaluation. The whole set (dataset, the three fits, three
evaluations) runs in a few seconds on two CPU cores.

The dataset (:func:`make_dataset`) has existing users with training clicks and held-out clicks,
and *new* (cold-start) users who have side features but no training clicks at all.

The models, in the order the demo's team tries them:

* :class:`MatrixFactorization` -- implicit-feedback ALS. Strong on existing users, but it has no
  factors for new users and falls back to item popularity, so it misses
  :data:`CTR_NEW_USERS_TARGET`.
* :class:`DeepRecommender` -- a wide-and-deep ranker trained with Adam, forward and backward pass
  written out in NumPy. It meets both click-through targets, but its serving path scores every
  (user, item) candidate with a separate pass through a wide user tower (2048 and 1024 units),
  so one request takes well over 100 ms and misses :data:`LATENCY_P99_MS_TARGET`.
* :class:`HybridRecommender` -- the ALS factors for existing users plus a ridge map from side
  features into the factor space for new users. Meets all three criteria.

Two failures the demo shows on purpose come from the real code paths, nothing is hand-raised:

* ``DeepRecommender().fit(data, embedding_dim=48)`` -- a config typo. The user tower concatenates
  the 32-d pretrained side features with the id embedding and sizes its first layer as
  ``2 * embedding_dim`` (the author assumed both are ``embedding_dim`` wide), so the first
  forward pass fails inside ``matmul`` with NumPy's own ``ValueError`` (``matmul: Input operand
  1 has a mismatch in its core dimension 0 ... (size 96 is different from 80)``).
* ``DeepRecommender().fit(data, lr=5.0)`` -- a learning rate far too high: after the first Adam
  step the logits are in the millions, the click probabilities saturate to exactly 0 and 1, the
  cross-entropy turns NaN and the training-loop guard raises
  ``FloatingPointError("loss became nan at epoch 1 step 2")``. (Any ``lr`` from about 0.03 up
  diverges the same way; the default is ``1e-3``.)

:func:`evaluate` reports ``ctr`` (hit rate at ``k`` over existing test users: at least one
held-out click in the top ``k``), ``ndcg_at_10`` (``ndcg_at_{k}``), ``ctr_new_users`` (the same hit rate over the
cold-start users), ``latency_p99_ms`` (p99 wall time of one online request, one user scored
against the whole catalogue) and ``coverage`` (share of the catalogue that shows up in anyone's
top ``k``).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, Self

import numpy as np
import numpy.typing as npt

__all__ = [
    "CTR_NEW_USERS_TARGET",
    "CTR_TARGET",
    "LATENCY_P99_MS_TARGET",
    "DeepRecommender",
    "HybridRecommender",
    "MatrixFactorization",
    "ProgressCallback",
    "Recommender",
    "RecsysData",
    "evaluate",
    "make_dataset",
    "ranking_metrics",
]

#: Hit rate at 10 over existing users' held-out clicks that a model must reach (``ctr``).
CTR_TARGET = 0.65
#: Hit rate at 10 over cold-start users that a model must reach (``ctr_new_users``).
CTR_NEW_USERS_TARGET = 0.55
#: p99 latency of one online request (one user against the whole catalogue), milliseconds.
LATENCY_P99_MS_TARGET = 50.0

FloatArray = npt.NDArray[np.float32]
IntArray = npt.NDArray[np.int64]

#: ``progress(step, metrics)``: called once per epoch (ALS sweep) with the 1-based epoch number.
ProgressCallback = Callable[[int, dict[str, float]], None]


# --------------------------------------------------------------------------------------------
# Data
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class RecsysData:
    """A click dataset split for training and for offline evaluation.

    Users ``0 .. n_users-1`` are existing users: their clicks are split into ``train_*`` and
    ``test_*``. New users are indexed separately (``0 .. n_new_users-1``, rows of
    ``new_user_features``); they have no training clicks, only the held-out ``new_test_*`` clicks.
    Interaction arrays are parallel arrays of user and item indices.
    """

    user_features: FloatArray
    item_features: FloatArray
    new_user_features: FloatArray
    train_users: IntArray
    train_items: IntArray
    test_users: IntArray
    test_items: IntArray
    new_test_users: IntArray
    new_test_items: IntArray
    seed: int

    @property
    def n_users(self) -> int:
        """Number of existing users (those with training clicks)."""
        return int(self.user_features.shape[0])

    @property
    def n_new_users(self) -> int:
        """Number of cold-start users."""
        return int(self.new_user_features.shape[0])

    @property
    def n_items(self) -> int:
        """Size of the item catalogue."""
        return int(self.item_features.shape[0])

    @property
    def user_feature_dim(self) -> int:
        """Width of the users' side-feature vectors."""
        return int(self.user_features.shape[1])

    @property
    def item_feature_dim(self) -> int:
        """Width of the items' content-feature vectors."""
        return int(self.item_features.shape[1])

    def train_matrix(self) -> FloatArray:
        """Dense 0/1 user-by-item matrix of the training clicks."""
        matrix = np.zeros((self.n_users, self.n_items), dtype=np.float32)
        matrix[self.train_users, self.train_items] = 1.0
        return matrix

    def item_popularity(self) -> FloatArray:
        """Training clicks per item."""
        return np.bincount(self.train_items, minlength=self.n_items).astype(np.float32)

    def summary(self) -> dict[str, int]:
        """Sizes of the dataset, for logging."""
        return {
            "users": self.n_users,
            "new_users": self.n_new_users,
            "items": self.n_items,
            "train_interactions": int(self.train_users.size),
            "test_interactions": int(self.test_users.size),
            "new_user_test_interactions": int(self.new_test_users.size),
        }


def make_dataset(
    seed: int = 7,
    n_users: int = 2000,
    n_items: int = 500,
    n_new_users: int = 400,
    *,
    user_feature_dim: int = 32,
    item_feature_dim: int = 16,
    latent_dim: int = 16,
    clicks_per_user: float = 30.0,
    test_fraction: float = 0.2,
    feature_share: float = 0.7,
    affinity_scale: float = 2.0,
    popularity_scale: float = 1.0,
) -> RecsysData:
    """Generate the seeded synthetic click dataset the demo trains on.

    Each user and item has a latent taste vector, partly explained by its observable side
    features (``feature_share`` of the variance) and partly idiosyncratic. A user's click
    propensity for an item is ``affinity_scale * taste_u . taste_i / sqrt(latent_dim)`` plus the
    item's log-popularity; each user clicks about ``clicks_per_user`` distinct items, drawn
    without replacement in proportion to ``exp(propensity)`` (Gumbel top-k).
    ``test_fraction`` of every user's clicks are held out. New users get the same treatment,
    but only their held-out clicks are kept: they have no training history.
    """
    if not 0.0 < test_fraction < 1.0:
        raise ValueError(f"test_fraction must be in (0, 1), got {test_fraction}")
    if not 0.0 <= feature_share <= 1.0:
        raise ValueError(f"feature_share must be in [0, 1], got {feature_share}")
    rng = np.random.default_rng(seed)
    n_total = n_users + n_new_users

    user_features = rng.standard_normal((n_total, user_feature_dim))
    item_features = rng.standard_normal((n_items, item_feature_dim))
    user_map = rng.standard_normal((user_feature_dim, latent_dim)) / math.sqrt(user_feature_dim)
    item_map = rng.standard_normal((item_feature_dim, latent_dim)) / math.sqrt(item_feature_dim)
    explained, own = math.sqrt(feature_share), math.sqrt(1.0 - feature_share)
    user_taste = explained * (user_features @ user_map) + own * rng.standard_normal(
        (n_total, latent_dim)
    )
    item_taste = explained * (item_features @ item_map) + own * rng.standard_normal(
        (n_items, latent_dim)
    )
    log_popularity = popularity_scale * rng.standard_normal(n_items)

    propensity = (affinity_scale / math.sqrt(latent_dim)) * (user_taste @ item_taste.T)
    propensity += log_popularity[None, :]
    gumbel = -np.log(-np.log(rng.uniform(1e-12, 1.0, size=propensity.shape)))
    ranked = np.argsort(-(propensity + gumbel), axis=1)
    counts = np.clip(rng.poisson(clicks_per_user, size=n_total), 10, n_items // 4)
    n_test = np.maximum(1, np.rint(counts * test_fraction).astype(np.int64))

    # Each user's clicks are ranked[u, :counts[u]]; a random subset of n_test[u] is held out.
    col = np.arange(n_items)[None, :]
    clicked = col < counts[:, None]
    order = np.argsort(np.where(clicked, rng.uniform(size=clicked.shape), 2.0), axis=1)
    held_out_cols = np.zeros_like(clicked)
    np.put_along_axis(held_out_cols, order, col < n_test[:, None], axis=1)
    is_test = clicked & held_out_cols
    is_train = clicked & ~held_out_cols

    rows = np.broadcast_to(np.arange(n_total)[:, None], ranked.shape)
    train_u, train_i = rows[is_train], ranked[is_train]
    test_u, test_i = rows[is_test], ranked[is_test]
    keep_train = train_u < n_users
    existing_test = test_u < n_users
    return RecsysData(
        user_features=user_features[:n_users].astype(np.float32),
        item_features=item_features.astype(np.float32),
        new_user_features=user_features[n_users:].astype(np.float32),
        train_users=train_u[keep_train].astype(np.int64),
        train_items=train_i[keep_train].astype(np.int64),
        test_users=test_u[existing_test].astype(np.int64),
        test_items=test_i[existing_test].astype(np.int64),
        new_test_users=(test_u[~existing_test] - n_users).astype(np.int64),
        new_test_items=test_i[~existing_test].astype(np.int64),
        seed=seed,
    )


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


def _top_k(scores: FloatArray, k: int) -> IntArray:
    """Indices of the ``k`` best scores of a 1-D array, best first."""
    k = min(k, scores.shape[0])
    part = np.argpartition(-scores, k - 1)[:k]
    return part[np.argsort(-scores[part], kind="stable")].astype(np.int64)


def _seen_items(data: RecsysData) -> list[IntArray]:
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


def _fit_als(
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
        self.user_factors, self.item_factors = _fit_als(
            data,
            factors=factors,
            iterations=iterations,
            reg=reg,
            alpha=alpha,
            seed=seed,
            progress=progress,
        )
        self.popularity = data.item_popularity() / float(max(1, data.train_items.size))
        self._seen = _seen_items(data)
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
            return _top_k(popularity, k)
        scores = item_f @ user_f[user_id]
        scores[self._seen[user_id]] = -np.inf
        return _top_k(scores, k)


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
        return _top_k(item_f @ factors, k)


class _Adam:
    """Adam over a dict of parameter arrays, updated in place."""

    def __init__(
        self, params: dict[str, FloatArray], lr: float, beta1: float = 0.9, beta2: float = 0.999
    ) -> None:
        self.params = params
        self.lr, self.beta1, self.beta2 = lr, beta1, beta2
        self.m = {name: np.zeros_like(p) for name, p in params.items()}
        self.v = {name: np.zeros_like(p) for name, p in params.items()}
        self.t = 0

    def step(self, grads: dict[str, FloatArray]) -> None:
        """Apply one update from ``grads``, whose arrays are reused as scratch space."""
        self.t += 1
        b1, b2 = self.beta1, self.beta2
        scale = self.lr * math.sqrt(1.0 - b2**self.t) / (1.0 - b1**self.t)
        for name, grad in grads.items():
            m, v, param = self.m[name], self.v[name], self.params[name]
            m *= b1
            m += (1.0 - b1) * grad
            np.multiply(grad, grad, out=grad)
            grad *= 1.0 - b2
            v *= b2
            v += grad
            np.sqrt(v, out=grad)
            grad += 1e-8
            np.divide(m, grad, out=grad)
            grad *= scale
            param -= grad


def _scatter_rows(index: IntArray, values: FloatArray, n_rows: int) -> FloatArray:
    """``out[index[j]] += values[j]`` for all ``j``, as a sort and a segmented sum."""
    out = np.zeros((n_rows, values.shape[1]), dtype=values.dtype)
    if index.size == 0:
        return out
    order = np.argsort(index, kind="stable")
    sorted_index = index[order]
    starts = np.flatnonzero(np.r_[True, sorted_index[1:] != sorted_index[:-1]])
    out[sorted_index[starts]] = np.add.reduceat(values[order], starts, axis=0)
    return out


def _relu(x: npt.NDArray[np.floating[Any]]) -> FloatArray:
    """Elementwise ``max(x, 0)`` as float32."""
    return np.maximum(x, 0.0).astype(np.float32, copy=False)


class DeepRecommender:
    """Wide-and-deep ranker: accurate for existing and new users, too slow to serve.

    Model (float32 throughout):

    * user tower -- ``[side features, user id embedding]`` through ReLU layers of ``hidden``
      units (default 2048 and 1024) down to an ``embedding_dim`` vector ``t``. The code sizes
      the first layer for ``2 * embedding_dim`` inputs: it takes the pretrained side features to
      be ``embedding_dim`` wide, which holds only for the default 32. New users have no id
      embedding (zeros); during training it is dropped for ``embedding_dropout`` of the users so
      the tower learns to rank from side features alone.
    * item vector -- ``q = item id embedding + item features @ W_item``.
    * logit -- ``t.q + MLP([t, q, t*q]) + w_gmf.(e_user * e_item) + item bias``. The id
      embeddings start from a short implicit-ALS run, everything else from random weights.

    Trained with Adam on binary cross-entropy: every training click of a batch of
    ``batch_users`` users against ``negatives`` uniformly drawn items each.

    Two scoring paths. :meth:`score` is the offline batch path: the tower runs once per user.
    :meth:`recommend` is the online path as the team deployed it: the exported pairwise
    predictor :meth:`predict_pair` is called once per catalogue item, so every (user, item)
    candidate pays a full pass through the wide tower (reading its ~9 MB of weights each
    time). A request takes about 150 ms on two cores, 300 ms on one.
    """

    name = "deep"

    def __init__(self) -> None:
        self.params: dict[str, FloatArray] = {}
        self.depth = 0
        self._data: RecsysData | None = None
        self._seen: list[IntArray] = []
        self._item_vectors: FloatArray | None = None

    # -- training ------------------------------------------------------------------------

    def fit(
        self,
        data: RecsysData,
        *,
        embedding_dim: int = 32,
        hidden: Sequence[int] = (2048, 1024),
        head_units: int = 64,
        epochs: int = 3,
        batch_users: int = 128,
        negatives: int = 1,
        lr: float = 1e-3,
        embedding_dropout: float = 0.7,
        als_iterations: int = 4,
        seed: int = 0,
        progress: ProgressCallback | None = None,
    ) -> Self:
        """Train with Adam; ``progress(epoch, {"loss": ...})`` after every epoch.

        Raises ``FloatingPointError("loss became nan at epoch N step M")`` as soon as the
        training loss is not finite (a diverging run, e.g. ``lr=5.0``) rather than carrying on
        with NaN weights.
        """
        rng = np.random.default_rng(seed)
        self._init_params(data, embedding_dim, hidden, head_units, als_iterations, seed, rng)
        self._data = data
        self._seen = _seen_items(data)
        self._item_vectors = None
        opt = _Adam(self.params, lr)
        users = np.arange(data.n_users)
        # Overflow in a diverging run shows up as a non-finite loss, checked below.
        with np.errstate(over="ignore", invalid="ignore", divide="ignore", under="ignore"):
            for epoch in range(1, epochs + 1):
                rng.shuffle(users)
                total, count = 0.0, 0
                for step, start in enumerate(range(0, users.size, batch_users), start=1):
                    batch = users[start : start + batch_users]
                    pair_user, pair_item, label = self._sample_pairs(batch, negatives, rng)
                    keep = (rng.uniform(size=batch.size) >= embedding_dropout).astype(np.float32)
                    loss, grads = self._loss_and_grads(batch, keep, pair_user, pair_item, label)
                    if not math.isfinite(loss):
                        raise FloatingPointError(f"loss became {loss} at epoch {epoch} step {step}")
                    opt.step(grads)
                    total += loss * pair_user.size
                    count += pair_user.size
                if progress is not None:
                    progress(epoch, {"loss": total / max(1, count)})
        self._item_vectors = self._items()
        return self

    def _init_params(
        self,
        data: RecsysData,
        embedding_dim: int,
        hidden: Sequence[int],
        head_units: int,
        als_iterations: int,
        seed: int,
        rng: np.random.Generator,
    ) -> None:
        """Fresh parameters: ALS-initialised id embeddings, He-initialised dense layers."""
        user_emb, item_emb = _fit_als(
            data,
            factors=embedding_dim,
            iterations=als_iterations,
            reg=1.0,
            alpha=20.0,
            seed=seed,
            progress=None,
        )

        def dense(fan_in: int, fan_out: int, gain: float = 1.0) -> FloatArray:
            scale = gain * math.sqrt(2.0 / fan_in)
            return (rng.standard_normal((fan_in, fan_out)) * scale).astype(np.float32)

        d = embedding_dim
        params: dict[str, FloatArray] = {"user_emb": user_emb, "item_emb": item_emb}
        # Side features and id embedding, both embedding_dim wide.
        width = 2 * d
        for i, units in enumerate(hidden, start=1):
            params[f"tower_w{i}"] = dense(width, units)
            params[f"tower_b{i}"] = np.zeros(units, dtype=np.float32)
            width = units
        params["tower_w_out"] = dense(width, d, gain=0.1)
        params["tower_b_out"] = np.zeros(d, dtype=np.float32)
        params["w_item"] = dense(data.item_feature_dim, d, gain=0.1)
        params["head_w1"] = dense(3 * d, head_units)
        params["head_b1"] = np.zeros(head_units, dtype=np.float32)
        params["head_w2"] = dense(head_units, 1, gain=0.1)[:, 0]
        params["w_gmf"] = np.full(d, 4.0, dtype=np.float32)
        params["item_bias"] = np.zeros(data.n_items, dtype=np.float32)
        self.params = params
        self.depth = len(hidden)

    def _sample_pairs(
        self, batch: IntArray, negatives: int, rng: np.random.Generator
    ) -> tuple[IntArray, IntArray, FloatArray]:
        """Training pairs of a user batch: every click (label 1) plus random items (label 0)."""
        assert self._data is not None
        clicked = [self._seen[int(u)] for u in batch]
        pos_user = np.repeat(np.arange(batch.size), [c.size for c in clicked])
        neg_user = np.repeat(pos_user, negatives)
        pair_user = np.concatenate([pos_user, neg_user])
        pair_item = np.concatenate(
            [np.concatenate(clicked), rng.integers(0, self._data.n_items, neg_user.size)]
        )
        label = np.zeros(pair_user.size, dtype=np.float32)
        label[: pos_user.size] = 1.0
        return pair_user, pair_item, label

    def _items(self) -> FloatArray:
        """Item vectors ``q`` of the whole catalogue."""
        assert self._data is not None
        p = self.params
        out: FloatArray = p["item_emb"] + self._data.item_features @ p["w_item"]
        return out

    def _tower(self, z: FloatArray) -> tuple[list[FloatArray], FloatArray]:
        """Hidden pre-activations and output ``t`` of the user tower for inputs ``z``."""
        p = self.params
        pre: list[FloatArray] = []
        h = z
        for i in range(1, self.depth + 1):
            a = h @ p[f"tower_w{i}"] + p[f"tower_b{i}"]
            pre.append(a)
            h = _relu(a)
        t: FloatArray = h @ p["tower_w_out"] + p["tower_b_out"]
        return pre, t

    def _loss_and_grads(
        self,
        batch: IntArray,
        keep: FloatArray,
        pair_user: IntArray,
        pair_item: IntArray,
        label: FloatArray,
    ) -> tuple[float, dict[str, FloatArray]]:
        """Forward and backward pass over one batch of (user, item, label) pairs."""
        assert self._data is not None
        p = self.params
        d = p["item_emb"].shape[1]
        n_items = p["item_emb"].shape[0]
        eu = p["user_emb"][batch] * keep[:, None]
        z = np.concatenate([self._data.user_features[batch], eu], axis=1)
        pre, t = self._tower(z)
        q = self._items()
        tp, qp = t[pair_user], q[pair_item]
        eup, eip = eu[pair_user], p["item_emb"][pair_item]
        g = np.concatenate([tp, qp, tp * qp], axis=1)
        c1 = g @ p["head_w1"] + p["head_b1"]
        r1 = _relu(c1)
        gmf = eup * eip
        logit = r1 @ p["head_w2"] + np.sum(tp * qp, axis=1) + gmf @ p["w_gmf"]
        logit += p["item_bias"][pair_item]

        # Binary cross-entropy from the click probabilities. A healthy run keeps |logit| well
        # below 36, where float64 probabilities never round to exactly 0 or 1; a diverging
        # run saturates them and the loss turns nan, which fit() checks for.
        prob = 1.0 / (1.0 + np.exp(-logit.astype(np.float64)))
        loss = float(-np.mean(label * np.log(prob) + (1.0 - label) * np.log(1.0 - prob)))

        dl = ((prob - label) / pair_user.size).astype(np.float32)
        grads: dict[str, FloatArray] = {}
        grads["head_w2"] = r1.T @ dl
        dc1 = np.outer(dl, p["head_w2"]) * (c1 > 0)
        grads["head_w1"] = g.T @ dc1
        grads["head_b1"] = dc1.sum(axis=0)
        dg = dc1 @ p["head_w1"].T
        dtp = dg[:, :d] + (dg[:, 2 * d :] + dl[:, None]) * qp
        dqp = dg[:, d : 2 * d] + (dg[:, 2 * d :] + dl[:, None]) * tp
        grads["w_gmf"] = gmf.T @ dl
        grads["item_bias"] = np.bincount(pair_item, weights=dl, minlength=n_items).astype(
            np.float32
        )
        dq = _scatter_rows(pair_item, dqp, n_items)
        grads["w_item"] = self._data.item_features.T @ dq
        deip = dl[:, None] * eup * p["w_gmf"]
        grads["item_emb"] = dq + _scatter_rows(pair_item, deip, n_items)

        dt = _scatter_rows(pair_user, dtp, batch.size)
        last = _relu(pre[-1]) if pre else z
        grads["tower_w_out"] = last.T @ dt
        grads["tower_b_out"] = dt.sum(axis=0)
        dh = dt @ p["tower_w_out"].T
        for i in range(self.depth, 0, -1):
            da = dh * (pre[i - 1] > 0)
            inputs = _relu(pre[i - 2]) if i > 1 else z
            grads[f"tower_w{i}"] = inputs.T @ da
            grads[f"tower_b{i}"] = da.sum(axis=0)
            dh = da @ p[f"tower_w{i}"].T
        deup = dl[:, None] * eip * p["w_gmf"]
        deu = dh[:, -d:] + _scatter_rows(pair_user, deup, batch.size)
        duser = np.zeros_like(p["user_emb"])
        duser[batch] = deu * keep[:, None]
        grads["user_emb"] = duser
        return loss, grads

    # -- scoring -------------------------------------------------------------------------

    def _fitted(self) -> tuple[RecsysData, FloatArray]:
        """The training data (feature store) and item vectors; raises before :meth:`fit`."""
        if self._data is None or self._item_vectors is None:
            raise RuntimeError("DeepRecommender is not fitted; call fit() first")
        return self._data, self._item_vectors

    def _user_inputs(self, user_ids: IntArray, new_users: bool) -> tuple[FloatArray, FloatArray]:
        """Side features and id embeddings of users (zero embeddings for new users)."""
        data, _ = self._fitted()
        emb = self.params["user_emb"]
        if new_users:
            zeros = np.zeros((user_ids.size, emb.shape[1]), dtype=np.float32)
            return data.new_user_features[user_ids], zeros
        return data.user_features[user_ids], emb[user_ids]

    def _head(self, t: FloatArray, eu: FloatArray, items: IntArray) -> FloatArray:
        """Logits of every (user, item) combination: users' ``t`` and ``eu`` rows, ``items``.

        Returns ``(len(t), len(items))``. The head's first layer on ``[t, q, t*q]`` is applied
        as three products and the two dot-product terms as matrix products, so only ``t*q``
        is formed per pair.
        """
        _, vectors = self._fitted()
        p = self.params
        q = vectors[items]
        d = q.shape[1]
        w = p["head_w1"]
        pair = (t[:, None, :] * q[None, :, :]).reshape(-1, d) @ w[2 * d :]
        pre = pair.reshape(t.shape[0], q.shape[0], -1)
        pre += (t @ w[:d] + p["head_b1"])[:, None, :]
        pre += (q @ w[d : 2 * d])[None, :, :]
        out: FloatArray = _relu(pre) @ p["head_w2"]
        out += t @ q.T + (eu * p["w_gmf"]) @ p["item_emb"][items].T
        out += p["item_bias"][items]
        return out

    def score(self, user_ids: IntArray, *, new_users: bool = False) -> FloatArray:
        """Offline batch scoring: the tower runs once per user, the head on every pair."""
        data, _ = self._fitted()
        feats, eu = self._user_inputs(np.asarray(user_ids, dtype=np.int64), new_users)
        t = self._tower(np.concatenate([feats, eu], axis=1))[1]
        return self._head(t, eu, np.arange(data.n_items))

    def predict_pair(
        self, user_features: FloatArray, user_embedding: FloatArray, item: int
    ) -> float:
        """The exported pairwise predictor: the click logit of one (user, item) candidate."""
        z = np.concatenate([user_features, user_embedding])[None, :]
        t = self._tower(z)[1]
        return float(self._head(t, user_embedding[None, :], np.array([item]))[0, 0])

    def recommend(self, user_id: int, k: int = 10, *, new_user: bool = False) -> IntArray:
        """Online path: every catalogue item is scored by its own :meth:`predict_pair` call."""
        data, _ = self._fitted()
        feats, eu = self._user_inputs(np.array([user_id]), new_user)
        scores = np.array(
            [self.predict_pair(feats[0], eu[0], item) for item in range(data.n_items)],
            dtype=np.float32,
        )
        if not new_user:
            scores[self._seen[user_id]] = -np.inf
        return _top_k(scores, k)


# --------------------------------------------------------------------------------------------
# Evaluation
# --------------------------------------------------------------------------------------------


def ranking_metrics(
    top_items: IntArray, relevant: list[IntArray], n_items: int
) -> tuple[float, float, float]:
    """Hit rate, NDCG and catalogue coverage of ranked lists against held-out clicks.

    ``top_items`` is ``(n_users, k)``, best first; ``relevant[j]`` are user ``j``'s held-out
    items. Hit rate: share of users with at least one relevant item in their list. NDCG: binary
    gains, ``1 / log2(rank + 1)``, normalised by the ideal list of ``min(len(relevant), k)``
    hits. Coverage: share of the ``n_items`` catalogue that appears in at least one list.
    """
    n_users, k = top_items.shape
    if n_users == 0:
        return 0.0, 0.0, 0.0
    discounts = 1.0 / np.log2(np.arange(2, k + 2))
    hits = np.zeros(n_users, dtype=bool)
    ndcg = np.zeros(n_users)
    for j in range(n_users):
        gains = np.isin(top_items[j], relevant[j])
        hits[j] = bool(gains.any())
        ideal = float(discounts[: min(len(relevant[j]), k)].sum())
        ndcg[j] = float(discounts[gains].sum()) / ideal if ideal > 0 else 0.0
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
    seen = _seen_items(data)
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
