"""The deep two-tower ranker: accurate, and too slow to serve."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Self

import numpy as np
import numpy.typing as npt

from hindsight.demo.recsys.data import RecsysData
from hindsight.demo.recsys.factors import fit_als, seen_items, top_k
from hindsight.demo.recsys.types import FloatArray, IntArray, ProgressCallback

if TYPE_CHECKING:
    from hindsight.training import TrainingGuard, Verdict

#: Users whose held-out clicks (against as many random items) make the validation loss.
_VALIDATION_USERS = 256


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
        self.stopped: Verdict | None = None
        self.best_epoch: int | None = None

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
        guard: TrainingGuard | None = None,
    ) -> Self:
        """Train with Adam; ``progress(epoch, {"loss": ...})`` after every epoch.

        Raises ``FloatingPointError("loss became nan at epoch N step M")`` as soon as the
        training loss is not finite (a diverging run, e.g. ``lr=5.0``) rather than carrying on
        with NaN weights.

        With a ``guard``, every step feeds it the batch loss, the tower's per-layer gradient
        norms and the learning rate, and the last step of each epoch the validation loss
        (held-out clicks of a fixed sample of users against as many random items). When the
        guard says stop, training ends there (:attr:`stopped` holds the verdict) and the
        weights of the best validation epoch are put back.
        """
        rng = np.random.default_rng(seed)
        self._init_params(data, embedding_dim, hidden, head_units, als_iterations, seed, rng)
        self._data = data
        self._seen = seen_items(data)
        self._item_vectors = None
        opt = _Adam(self.params, lr)
        users = np.arange(data.n_users)
        self.stopped, self.best_epoch = None, None
        validation = self._validation_pairs(data, seed) if guard is not None else None
        best: dict[str, FloatArray] | None = None
        layers = [f"tower_w{i}" for i in range(1, self.depth + 1)] + ["tower_w_out"]
        n_steps = math.ceil(users.size / batch_users)
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
                    if guard is not None and validation is not None:
                        val_loss = self._loss_and_grads(*validation)[0] if step == n_steps else None
                        verdict = guard.update(
                            (epoch - 1) * n_steps + step,
                            loss=loss,
                            val_loss=val_loss,
                            grad_norms=[float(np.linalg.norm(grads[k])) for k in layers],
                            lr=lr,
                        )
                        if verdict.improved:
                            best = {k: v.copy() for k, v in self.params.items()}
                            self.best_epoch = epoch
                        if verdict.stop:
                            self.stopped = verdict
                            break
                    if not math.isfinite(loss):
                        raise FloatingPointError(f"loss became {loss} at epoch {epoch} step {step}")
                    opt.step(grads)
                    total += loss * pair_user.size
                    count += pair_user.size
                if progress is not None and count:
                    progress(epoch, {"loss": total / count})
                if self.stopped is not None:
                    break
        if self.stopped is not None and best is not None:
            self.params = best
        self._item_vectors = self._items()
        return self

    def _validation_pairs(
        self, data: RecsysData, seed: int
    ) -> tuple[IntArray, FloatArray, IntArray, IntArray, FloatArray]:
        """Held-out clicks of a fixed user sample plus as many random items, as a batch."""
        rng = np.random.default_rng(seed + 1)
        n = min(_VALIDATION_USERS, data.n_users)
        users = np.sort(rng.choice(data.n_users, size=n, replace=False))
        held = np.isin(data.test_users, users)
        pos_user = np.searchsorted(users, data.test_users[held])
        pair_user = np.concatenate([pos_user, pos_user])
        pair_item = np.concatenate(
            [data.test_items[held], rng.integers(0, data.n_items, pos_user.size)]
        )
        label = np.zeros(pair_user.size, dtype=np.float32)
        label[: pos_user.size] = 1.0
        return users, np.ones(n, dtype=np.float32), pair_user, pair_item, label

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
        user_emb, item_emb = fit_als(
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
        return top_k(scores, k)
