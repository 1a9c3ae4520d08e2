"""The ready-made backends: callable, rules, scikit-learn, MLflow and the mock."""

from __future__ import annotations

import doctest
import json
import math
import os
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import hindsight.serving.backends as backends_module
from hindsight.errors import ConfigError, ServingError
from hindsight.serving.backend import ModelBackend, ModelOutput
from hindsight.serving.backends import (
    CallableBackend,
    MlflowBackend,
    MockBackend,
    RulesBackend,
    SklearnBackend,
)

FEATURES = ["x0", "x1", "x2"]


def test_docstring_examples() -> None:
    pytest.importorskip("sklearn")
    result = doctest.testmod(backends_module, optionflags=doctest.ELLIPSIS)
    assert result.failed == 0
    assert result.attempted > 0


@pytest.mark.parametrize("name", backends_module.__all__)
def test_every_backend_is_a_model_backend_with_an_example(name: str) -> None:
    cls = getattr(backends_module, name)
    assert issubclass(cls, ModelBackend)
    assert ">>>" in (cls.__doc__ or "")


# --- CallableBackend -------------------------------------------------------------------


def test_callable_plain_output() -> None:
    backend = CallableBackend(lambda x: x["a"] + 1, name="inc", version="2")
    assert backend.predict({"a": 1}) == ModelOutput(2, None)
    assert backend.describe() == {"name": "inc", "version": "2", "kind": "CallableBackend"}


def test_callable_pair_and_model_output() -> None:
    pair = CallableBackend(lambda x: ("yes", np.float64(0.75)), name="p", version="1")
    out = pair.predict({})
    assert out == ModelOutput("yes", 0.75)
    assert type(out.confidence) is float
    direct = CallableBackend(lambda x: ModelOutput(np.int64(3), 0.5), name="d", version="1")
    out = direct.predict({})
    assert out == ModelOutput(3, 0.5)
    assert type(out.output) is int


def test_callable_converts_numpy_to_plain_python() -> None:
    fn: Any = lambda x: {"scores": np.array([0.1, 0.9], dtype=np.float32), "n": np.int32(2)}  # noqa: E731
    out = CallableBackend(fn, name="np", version="1").predict({})
    json.dumps(out.output)  # serialisable
    assert out.output["n"] == 2
    assert type(out.output["n"]) is int
    assert out.output["scores"] == pytest.approx([0.1, 0.9])
    assert all(type(v) is float for v in out.output["scores"])


def test_callable_errors_propagate_unchanged() -> None:
    def boom(inputs: Any) -> Any:
        raise KeyError("a")

    with pytest.raises(KeyError):
        CallableBackend(boom, name="b", version="1").predict({})


def test_callable_rejects_bad_parameters() -> None:
    with pytest.raises(ConfigError, match="'fn' parameter of CallableBackend must be callable"):
        CallableBackend(3, name="x", version="1")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="'name' parameter"):
        CallableBackend(lambda x: 1, name="", version="1")


# --- RulesBackend ----------------------------------------------------------------------


def test_rules_first_match_wins_else_default() -> None:
    rules = RulesBackend(
        [
            (lambda x: x["amount"] > 1000, "block", 0.9),
            (lambda x: x["amount"] > 100, "review", None),
            (lambda x: x["amount"] > 10, "never-reached-first"),
        ],
        default="approve",
    )
    assert rules.predict({"amount": 5000}) == ModelOutput("block", 0.9)
    assert rules.predict({"amount": 500}) == ModelOutput("review", None)
    assert rules.predict({"amount": 50}) == ModelOutput("never-reached-first", None)
    assert rules.predict({"amount": 5}) == ModelOutput("approve", None)
    assert (rules.name, rules.version) == ("rules", "1")


def test_rules_default_may_carry_a_confidence() -> None:
    rules = RulesBackend([], default=ModelOutput(np.int64(0), np.float32(0.5)))  # type: ignore[arg-type]
    out = rules.predict({})
    assert out == ModelOutput(0, 0.5)
    assert type(out.output) is int


def test_rules_predicate_error_is_a_serving_error() -> None:
    rules = RulesBackend([(lambda x: x["missing"] > 1, "x", None)], default="d", name="r")
    with pytest.raises(ServingError, match=r"Rule 0 of RulesBackend 'r' raised KeyError"):
        rules.predict({})


@pytest.mark.parametrize("rule", [("not callable", "x"), (lambda x: True,), "abc"])
def test_rules_reject_malformed_rules(rule: Any) -> None:
    with pytest.raises(ConfigError, match="Rule 0 of RulesBackend"):
        RulesBackend([rule], default="d")


# --- SklearnBackend --------------------------------------------------------------------


@pytest.fixture(scope="module")
def training_data() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(42)
    X = rng.normal(size=(300, 3))
    y = np.where(X[:, 0] + 0.5 * X[:, 1] > 0, "churn", "stay")
    return X, y


@pytest.fixture(scope="module")
def classifier(training_data: tuple[np.ndarray, np.ndarray]) -> Any:
    linear_model = pytest.importorskip("sklearn.linear_model")
    X, y = training_data
    return linear_model.LogisticRegression().fit(X, y)


@pytest.fixture
def model_path(classifier: Any, tmp_path: Path) -> Path:
    joblib = pytest.importorskip("joblib")
    path = tmp_path / "model.joblib"
    joblib.dump(classifier, path)
    return path


def test_sklearn_from_joblib_path_matches_the_estimator(
    classifier: Any, model_path: Path, training_data: tuple[np.ndarray, np.ndarray]
) -> None:
    backend = SklearnBackend(model_path, features=FEATURES, name="lr", version="7")
    X, _ = training_data
    proba = classifier.predict_proba(X[:20])
    for row, p in zip(X[:20], proba, strict=True):
        out = backend.predict(dict(zip(FEATURES, row.tolist(), strict=True)))
        assert out.output == classifier.classes_[int(np.argmax(p))]
        assert type(out.output) is str
        assert out.confidence == pytest.approx(float(p.max()))
        assert out.problem() is None
    assert backend.describe()["path"] == str(model_path)
    assert backend.describe()["features"] == FEATURES


def test_sklearn_positive_class_gives_its_probability(classifier: Any) -> None:
    backend = SklearnBackend(
        classifier, features=FEATURES, name="lr", version="1", positive_class="churn"
    )
    inputs = {"x0": 1.0, "x1": 0.2, "x2": -0.3}
    out = backend.predict(inputs)
    expected = classifier.predict_proba(np.array([[1.0, 0.2, -0.3]]))[0][
        list(classifier.classes_).index("churn")
    ]
    assert out.output == pytest.approx(expected)
    assert out.confidence == pytest.approx(max(expected, 1 - expected))
    assert type(out.output) is float


def test_sklearn_without_predict_proba_uses_predict(
    training_data: tuple[np.ndarray, np.ndarray],
) -> None:
    linear_model = pytest.importorskip("sklearn.linear_model")
    X, _ = training_data
    reg = linear_model.LinearRegression().fit(X, X[:, 0] * 2.0 + 1.0)
    out = SklearnBackend(reg, features=FEATURES, name="reg", version="1").predict(
        {"x0": 1.0, "x1": 5.0, "x2": -5.0}
    )
    assert out.output == pytest.approx(3.0)
    assert type(out.output) is float
    assert out.confidence is None


def test_sklearn_model_fitted_on_a_dataframe_scores_without_warnings(
    training_data: tuple[np.ndarray, np.ndarray],
) -> None:
    pd = pytest.importorskip("pandas")
    linear_model = pytest.importorskip("sklearn.linear_model")
    X, y = training_data
    model = linear_model.LogisticRegression().fit(pd.DataFrame(X, columns=FEATURES), y)
    out = SklearnBackend(model, features=FEATURES, name="df", version="1").predict(
        {"x0": 2.0, "x1": 1.0, "x2": 0.0}
    )
    assert out.output == "churn"
    with pytest.raises(ConfigError, match="fitted on columns"):
        SklearnBackend(model, features=["x1", "x0", "x2"], name="df", version="1")


def test_sklearn_names_a_missing_feature(classifier: Any) -> None:
    backend = SklearnBackend(classifier, features=FEATURES, name="lr", version="1")
    with pytest.raises(
        ServingError, match=r"no 'x2' feature; SklearnBackend 'lr' needs x0, x1, x2"
    ):
        backend.predict({"x0": 1.0, "x1": 2.0})


@pytest.mark.parametrize("value", ["high", None, [1.0]])
def test_sklearn_names_a_non_numeric_value(classifier: Any, value: Any) -> None:
    backend = SklearnBackend(classifier, features=FEATURES, name="lr", version="1")
    with pytest.raises(ServingError, match="The 'x1' feature must be a number"):
        backend.predict({"x0": 1.0, "x1": value, "x2": 0.0})


def test_sklearn_scoring_failure_is_a_serving_error(classifier: Any) -> None:
    backend = SklearnBackend(classifier, features=FEATURES, name="lr", version="1")
    with pytest.raises(ServingError, match="could not score the request"):
        backend.predict({"x0": math.nan, "x1": 0.0, "x2": 0.0})


def test_sklearn_rejects_bad_models_and_parameters(classifier: Any, tmp_path: Path) -> None:
    linear_model = pytest.importorskip("sklearn.linear_model")
    with pytest.raises(ServingError, match="No model file at"):
        SklearnBackend(tmp_path / "nope.joblib", features=FEATURES, name="x", version="1")
    garbage = tmp_path / "garbage.joblib"
    garbage.write_bytes(b"not a pickle")
    with pytest.raises(ServingError, match="Cannot load the model file"):
        SklearnBackend(garbage, features=FEATURES, name="x", version="1")
    with pytest.raises(ServingError, match="is not fitted"):
        SklearnBackend(linear_model.LogisticRegression(), features=FEATURES, name="x", version="1")
    with pytest.raises(ServingError, match="has no predict method"):
        SklearnBackend(object(), features=FEATURES, name="x", version="1")
    with pytest.raises(ConfigError, match="fitted on 3"):
        SklearnBackend(classifier, features=["x0"], name="x", version="1")
    with pytest.raises(ConfigError, match="'features' parameter"):
        SklearnBackend(classifier, features="x0", name="x", version="1")
    with pytest.raises(ConfigError, match="'positive_class' parameter"):
        SklearnBackend(classifier, features=FEATURES, name="x", version="1", positive_class="?")


# --- MlflowBackend ---------------------------------------------------------------------

# mlflow builds its agent schemas from type hints on first use and warns about Any.
MLFLOW_ANY_HINT = pytest.mark.filterwarnings(
    r"ignore:.*Any type hint is inferred as AnyType:UserWarning"
)


@pytest.fixture(scope="module")
def registered_model(
    tmp_path_factory: pytest.TempPathFactory, training_data: tuple[np.ndarray, np.ndarray]
) -> Iterator[tuple[str, Any]]:
    """A LogisticRegression registered as version 1 of 'hs-churn' in a SQLite store."""
    mlflow = pytest.importorskip("mlflow")
    pytest.importorskip("mlflow.sklearn")
    pd = pytest.importorskip("pandas")
    linear_model = pytest.importorskip("sklearn.linear_model")
    X, y = training_data
    model = linear_model.LogisticRegression().fit(pd.DataFrame(X, columns=FEATURES), y)
    root = tmp_path_factory.mktemp("mlflow")
    previous = os.environ.get("MLFLOW_TRACKING_URI")
    # This mlflow refuses the ./mlruns file store; SQLite also gives us the model registry.
    mlflow.set_tracking_uri(f"sqlite:///{root / 'mlflow.db'}")
    try:
        mlflow.set_experiment("hs-backends")
        with mlflow.start_run():
            mlflow.sklearn.log_model(
                model,
                name="model",
                registered_model_name="hs-churn",
                pip_requirements=[],  # skips inferring requirements, which takes seconds
            )
        yield "models:/hs-churn/1", model
    finally:
        mlflow.set_tracking_uri(previous)


@pytest.mark.slow
@MLFLOW_ANY_HINT
def test_mlflow_loads_a_registered_version(registered_model: tuple[str, Any]) -> None:
    pd = pytest.importorskip("pandas")
    uri, model = registered_model
    backend = MlflowBackend(uri)
    assert (backend.name, backend.version) == ("hs-churn", "1")
    assert backend.describe()["model_uri"] == uri
    for row in ({"x0": 2.0, "x1": 0.0, "x2": 0.0}, {"x0": -2.0, "x1": 0.5, "x2": 1.0}):
        out = backend.predict(row)
        expected = model.predict(pd.DataFrame([row]))[0]
        assert out.output == expected
        assert type(out.output) is str
        assert out.confidence is None
        json.dumps(out.output)


@pytest.mark.slow
@MLFLOW_ANY_HINT
def test_mlflow_missing_version_is_a_serving_error(registered_model: tuple[str, Any]) -> None:
    with pytest.raises(ServingError, match="Cannot load the MLflow model 'models:/hs-churn/99'"):
        MlflowBackend("models:/hs-churn/99")


class _ProbaModel:
    def predict(self, frame: Any) -> Any:
        return np.array([[0.2, 0.7, 0.1]] * len(frame))


class _FrameModel:
    def predict(self, frame: Any) -> Any:
        return frame.assign(score=np.float32(0.25))


def _with_model(model: Any, uri: str = "runs:/abc123/clf") -> MlflowBackend:
    """An MlflowBackend around ``model`` without loading anything from MLflow."""
    backend = MlflowBackend.__new__(MlflowBackend)
    backend.model_uri = uri
    backend.name, backend.version = backends_module._uri_name_version(uri)
    backend.model = model
    return backend


def test_mlflow_probability_vector_gives_max_confidence() -> None:
    pytest.importorskip("pandas")
    out = _with_model(_ProbaModel()).predict({"a": 1})
    assert out.output == pytest.approx([0.2, 0.7, 0.1])
    assert out.confidence == pytest.approx(0.7)


def test_mlflow_dataframe_output_becomes_a_plain_row() -> None:
    pytest.importorskip("pandas")
    out = _with_model(_FrameModel()).predict({"a": np.int64(1)})
    assert out.output == {"a": 1, "score": 0.25}
    json.dumps(out.output)


@pytest.mark.parametrize(
    ("uri", "expected"),
    [
        ("models:/churn/3", ("churn", "3")),
        ("models:/churn@champion", ("churn", "champion")),
        ("models:/churn", ("churn", "latest")),
        ("runs:/abc123/clf", ("clf", "abc123")),
        ("s3://bucket/model", ("mlflow", "0")),
    ],
)
def test_mlflow_uri_name_and_version(uri: str, expected: tuple[str, str]) -> None:
    assert backends_module._uri_name_version(uri) == expected


def test_mlflow_missing_package_says_how_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "mlflow", None)
    monkeypatch.setitem(sys.modules, "mlflow.pyfunc", None)
    with pytest.raises(ServingError, match=r"pip install 'hindsight\[mlflow\]'"):
        MlflowBackend("models:/churn/1")


# --- MockBackend -----------------------------------------------------------------------


def test_mock_defaults_and_cycling() -> None:
    assert MockBackend().predict({}) == ModelOutput(0, None)
    mock = MockBackend(["a", "b", "c"], confidence=0.4)
    assert [mock.predict({}).output for _ in range(5)] == ["a", "b", "c", "a", "b"]
    assert mock.calls == 5
    assert MockBackend([[1, 2]]).predict({}).output == [1, 2]
    assert MockBackend({"k": np.float64(1.5)}).predict({}).output == {"k": 1.5}


def test_mock_fails_every_nth_call() -> None:
    mock = MockBackend("ok", fail_every=2)
    results = []
    for _ in range(6):
        try:
            results.append(mock.predict({}).output)
        except RuntimeError:
            results.append("fail")
    assert results == ["ok", "fail", "ok", "fail", "ok", "fail"]
    assert mock.calls == 6


def test_mock_latency() -> None:
    mock = MockBackend(latency_ms=50)
    start = time.perf_counter()
    mock.predict({})
    assert time.perf_counter() - start >= 0.045


def test_mock_nan_output_is_a_problem() -> None:
    out = MockBackend(nan=True, confidence=0.9).predict({})
    assert math.isnan(out.output)
    assert out.problem() == "the output contains NaN or infinity"
    assert MockBackend(1.0).predict({}).problem() is None


def test_mock_hang_until_released() -> None:
    mock = MockBackend("late", hang=True)
    results: list[ModelOutput] = []
    worker = threading.Thread(target=lambda: results.append(mock.predict({})))
    worker.start()
    deadline = time.monotonic() + 5
    while mock.hanging == 0 and time.monotonic() < deadline:
        time.sleep(0.005)
    assert mock.hanging == 1
    worker.join(timeout=0.05)
    assert worker.is_alive()
    assert results == []
    mock.release()
    worker.join(timeout=5)
    assert not worker.is_alive()
    assert results == [ModelOutput("late", None)]
    assert mock.hanging == 0
    assert mock.predict({}) == ModelOutput("late", None)  # released for good


def test_mock_counts_calls_across_threads() -> None:
    mock = MockBackend()
    threads = [
        threading.Thread(target=lambda: [mock.predict({}) for _ in range(200)]) for _ in range(8)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert mock.calls == 1600


@pytest.mark.parametrize(
    ("kwargs", "param"),
    [
        ({"latency_ms": -1}, "latency_ms"),
        ({"fail_every": 1.5}, "fail_every"),
        ({"fail_every": -1}, "fail_every"),
        ({"confidence": 1.5}, "confidence"),
    ],
)
def test_mock_rejects_bad_parameters(kwargs: dict[str, Any], param: str) -> None:
    with pytest.raises(ConfigError, match=f"The '{param}' parameter of MockBackend"):
        MockBackend(**kwargs)
    with pytest.raises(ConfigError, match="must not be an empty list"):
        MockBackend([])
