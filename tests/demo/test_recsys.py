"""Tests for the demo's NumPy recommenders: data, metrics, the three models and the two failures."""

from __future__ import annotations

import math
import traceback
import warnings

import numpy as np
import pytest

from hindsight.demo.recsys import (
    CTR_NEW_USERS_TARGET,
    CTR_TARGET,
    LATENCY_P99_MS_TARGET,
    DeepRecommender,
    HybridRecommender,
    MatrixFactorization,
    RecsysData,
    evaluate,
    make_dataset,
    ranking_metrics,
)

CTR_MARGIN = 0.05


@pytest.fixture(scope="module")
def data() -> RecsysData:
    return make_dataset(seed=7)


@pytest.fixture(scope="module")
def mf_metrics(data: RecsysData) -> dict[str, float]:
    return evaluate(MatrixFactorization().fit(data), data)


@pytest.fixture(scope="module")
def hybrid_metrics(data: RecsysData) -> dict[str, float]:
    return evaluate(HybridRecommender().fit(data), data)


@pytest.fixture(scope="module")
def deep_run(data: RecsysData) -> tuple[DeepRecommender, list[tuple[int, dict[str, float]]]]:
    steps: list[tuple[int, dict[str, float]]] = []
    model = DeepRecommender().fit(data, progress=lambda step, m: steps.append((step, m)))
    return model, steps


@pytest.fixture(scope="module")
def deep_metrics(
    data: RecsysData, deep_run: tuple[DeepRecommender, list[tuple[int, dict[str, float]]]]
) -> dict[str, float]:
    return evaluate(deep_run[0], data)


# -- data -----------------------------------------------------------------------------------


def test_dataset_is_deterministic_and_seed_dependent(data: RecsysData) -> None:
    again = make_dataset(seed=7)
    for field in (
        "user_features",
        "item_features",
        "new_user_features",
        "train_users",
        "train_items",
        "test_users",
        "test_items",
        "new_test_users",
        "new_test_items",
    ):
        np.testing.assert_array_equal(getattr(data, field), getattr(again, field), err_msg=field)
    other = make_dataset(seed=8)
    assert not np.array_equal(data.train_items[:1000], other.train_items[:1000])


def test_dataset_shape_and_splits(data: RecsysData) -> None:
    sizes = data.summary()
    assert (sizes["users"], sizes["items"], sizes["new_users"]) == (2000, 500, 400)
    total = sizes["train_interactions"] + sizes["test_interactions"]
    assert 50_000 <= total <= 70_000
    assert data.user_features.shape == (2000, 32)
    assert data.item_features.shape == (500, 16)
    assert data.new_user_features.shape == (400, 32)
    train = set(zip(data.train_users.tolist(), data.train_items.tolist(), strict=True))
    test = set(zip(data.test_users.tolist(), data.test_items.tolist(), strict=True))
    assert len(train) == data.train_users.size  # no duplicate clicks
    assert not train & test  # held-out clicks are not in training
    assert set(np.unique(data.test_users).tolist()) <= set(np.unique(data.train_users).tolist())
    assert data.new_test_users.max() < data.n_new_users
    assert np.unique(data.new_test_users).size == data.n_new_users


# -- metrics on a hand-made case --------------------------------------------------------------


class _FixedScores:
    """A stand-in model whose scores are given by hand."""

    name = "fixed"

    def __init__(self, existing: np.ndarray, new: np.ndarray, seen: dict[int, list[int]]) -> None:
        self.existing = existing.astype(np.float32)
        self.new = new.astype(np.float32)
        self.seen = seen

    def score(self, user_ids: np.ndarray, *, new_users: bool = False) -> np.ndarray:
        return (self.new if new_users else self.existing)[user_ids]

    def recommend(self, user_id: int, k: int = 10, *, new_user: bool = False) -> np.ndarray:
        scores = self.score(np.array([user_id]), new_users=new_user)[0].copy()
        if not new_user:
            scores[self.seen.get(user_id, [])] = -np.inf
        return np.argsort(-scores, kind="stable")[:k].astype(np.int64)


def _ints(values: list[int]) -> np.ndarray:
    return np.array(values, dtype=np.int64)


def _tiny() -> tuple[RecsysData, _FixedScores]:
    data = RecsysData(
        user_features=np.zeros((3, 2), dtype=np.float32),
        item_features=np.zeros((5, 2), dtype=np.float32),
        new_user_features=np.zeros((2, 2), dtype=np.float32),
        train_users=_ints([0, 1]),
        train_items=_ints([0, 1]),
        test_users=_ints([0, 1, 1, 2]),
        test_items=_ints([2, 3, 4, 0]),
        new_test_users=_ints([0, 1]),
        new_test_items=_ints([3, 1]),
        seed=0,
    )
    existing = np.array(
        [
            [9, 1, 5, 8, 0],  # item 0 is seen -> [3, 2]: the held-out 2 at rank 2
            [0, 9, 1, 2, 3],  # item 1 is seen -> [4, 3]: both held-out items, ideal order
            [0, 1, 2, 3, 4],  # nothing seen -> [4, 3]: misses the held-out 0
        ]
    )
    new = np.array([[5, 0, 0, 4, 0], [5, 0, 0, 4, 0]])  # both -> [0, 3]; hits 3, misses 1
    return data, _FixedScores(existing, new, {0: [0], 1: [1]})


def test_evaluate_on_hand_made_case() -> None:
    data, model = _tiny()
    metrics = evaluate(model, data, k=2, latency_requests=4)
    rank2 = 1.0 / math.log2(3.0)
    assert metrics["ctr"] == pytest.approx(2 / 3)
    assert metrics["ndcg_at_2"] == pytest.approx((rank2 / 1.0 + 1.0 + 0.0) / 3)
    assert metrics["ctr_new_users"] == pytest.approx(0.5)
    assert metrics["coverage"] == pytest.approx(4 / 5)  # items 0, 2, 3, 4
    assert 0.0 < metrics["latency_p99_ms"] < 50.0


def test_ranking_metrics_by_hand() -> None:
    top = np.array([[1, 2, 3], [4, 5, 6]], dtype=np.int64)
    relevant = [np.array([3, 9], dtype=np.int64), np.array([7], dtype=np.int64)]
    hit, ndcg, coverage = ranking_metrics(top, relevant, n_items=12)
    assert hit == pytest.approx(0.5)
    ideal = 1.0 + 1.0 / math.log2(3.0)
    assert ndcg == pytest.approx((1.0 / math.log2(4.0) / ideal + 0.0) / 2)
    assert coverage == pytest.approx(6 / 12)


# -- models against the demo's criteria -------------------------------------------------------


def test_targets_are_the_documented_ones() -> None:
    assert LATENCY_P99_MS_TARGET == 50
    assert 0.0 < CTR_NEW_USERS_TARGET < CTR_TARGET < 1.0


def test_matrix_factorization_fails_on_new_users_only(mf_metrics: dict[str, float]) -> None:
    assert mf_metrics["ctr"] >= CTR_TARGET + CTR_MARGIN
    assert mf_metrics["ctr_new_users"] <= CTR_NEW_USERS_TARGET - CTR_MARGIN
    assert mf_metrics["latency_p99_ms"] <= LATENCY_P99_MS_TARGET / 2
    assert 0.0 < mf_metrics["ndcg_at_10"] < 1.0
    assert 0.0 < mf_metrics["coverage"] <= 1.0


def test_deep_is_accurate_but_slow(
    deep_metrics: dict[str, float], hybrid_metrics: dict[str, float]
) -> None:
    assert deep_metrics["ctr"] >= CTR_TARGET + CTR_MARGIN
    assert deep_metrics["ctr_new_users"] >= CTR_NEW_USERS_TARGET + CTR_MARGIN
    # Wall time varies with the machine: the demo needs the criterion missed, and the
    # deep model far slower than the hybrid, not an absolute number.
    assert deep_metrics["latency_p99_ms"] > LATENCY_P99_MS_TARGET
    assert deep_metrics["latency_p99_ms"] >= 5 * hybrid_metrics["latency_p99_ms"]


def test_hybrid_meets_every_criterion(hybrid_metrics: dict[str, float]) -> None:
    assert hybrid_metrics["ctr"] >= CTR_TARGET + CTR_MARGIN
    assert hybrid_metrics["ctr_new_users"] >= CTR_NEW_USERS_TARGET + CTR_MARGIN
    assert hybrid_metrics["latency_p99_ms"] <= LATENCY_P99_MS_TARGET / 2


def test_metrics_are_deterministic_except_latency() -> None:
    runs = [
        evaluate(MatrixFactorization().fit(make_dataset(seed=7), iterations=2), data, k=10)
        for data in (make_dataset(seed=7), make_dataset(seed=7))
    ]
    assert runs[0].keys() == runs[1].keys()
    for key in runs[0].keys() - {"latency_p99_ms"}:
        assert runs[0][key] == runs[1][key], key


def test_deep_training_is_deterministic(data: RecsysData) -> None:
    config = {"hidden": (16,), "epochs": 1, "batch_users": 500, "als_iterations": 1}
    first = DeepRecommender().fit(data, **config)  # type: ignore[arg-type]
    second = DeepRecommender().fit(data, **config)  # type: ignore[arg-type]
    assert first.params.keys() == second.params.keys()
    for name, value in first.params.items():
        np.testing.assert_array_equal(value, second.params[name], err_msg=name)


def test_progress_is_reported_once_per_epoch(
    data: RecsysData, deep_run: tuple[DeepRecommender, list[tuple[int, dict[str, float]]]]
) -> None:
    _, deep_steps = deep_run
    assert [step for step, _ in deep_steps] == [1, 2, 3]
    losses = [m["loss"] for _, m in deep_steps]
    assert all(math.isfinite(x) for x in losses) and losses[-1] < losses[0]

    mf_steps: list[tuple[int, dict[str, float]]] = []
    MatrixFactorization().fit(data, iterations=3, progress=lambda s, m: mf_steps.append((s, m)))
    assert [step for step, _ in mf_steps] == [1, 2, 3]
    assert mf_steps[-1][1]["loss"] <= mf_steps[0][1]["loss"]


def test_deep_online_path_scores_like_the_offline_path(
    data: RecsysData, deep_run: tuple[DeepRecommender, list[tuple[int, dict[str, float]]]]
) -> None:
    model = deep_run[0]
    items = [0, 17, 123, 499]
    for user, new in ((5, False), (3, True)):
        offline = model.score(np.array([user]), new_users=new)[0]
        feats, emb = (
            (data.new_user_features[user], np.zeros(32, dtype=np.float32))
            if new
            else (data.user_features[user], model.params["user_emb"][user])
        )
        online = [model.predict_pair(feats, emb, item) for item in items]
        np.testing.assert_allclose(online, offline[items], rtol=1e-4, atol=1e-4)
    top = model.recommend(5, k=10)
    offline = model.score(np.array([5]))[0]
    offline[data.train_items[data.train_users == 5]] = -np.inf
    assert set(top.tolist()) == set(np.argsort(-offline)[:10].tolist())


# -- the two failures the demo shows ----------------------------------------------------------


def test_embedding_dim_typo_crashes_inside_numpy_matmul(data: RecsysData) -> None:
    with pytest.raises(ValueError, match="matmul: Input operand 1 has a mismatch") as info:
        DeepRecommender().fit(data, embedding_dim=48)
    assert type(info.value) is ValueError
    assert "(size 96 is different from 80)" in str(info.value)
    last_frame = traceback.extract_tb(info.value.__traceback__)[-1]
    assert last_frame.name == "_tower"
    assert "@" in (last_frame.line or "")


def test_too_high_learning_rate_diverges_to_nan(data: RecsysData) -> None:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with pytest.raises(FloatingPointError, match=r"^loss became nan at epoch 1 step \d+$"):
            DeepRecommender().fit(data, lr=5.0)
    assert caught == []
