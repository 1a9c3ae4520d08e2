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

from hindsight.demo.recsys.data import RecsysData, make_dataset
from hindsight.demo.recsys.deep import DeepRecommender
from hindsight.demo.recsys.evaluation import evaluate, ranking_metrics
from hindsight.demo.recsys.factors import HybridRecommender, MatrixFactorization, Recommender
from hindsight.demo.recsys.types import (
    CTR_NEW_USERS_TARGET,
    CTR_TARGET,
    LATENCY_P99_MS_TARGET,
    ProgressCallback,
)

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
