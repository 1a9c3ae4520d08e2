"""The seeded synthetic click dataset with side features and cold-start users."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from hindsight.demo.recsys.types import FloatArray, IntArray


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
