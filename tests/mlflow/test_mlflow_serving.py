"""Serving a model from a real MLflow registry (``mlflow server`` on loopback):
``kind: mlflow`` in service.yaml, ``models:/name/version``, and a canary of version 2."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from hindsight.serving import MlflowBackend
from hindsight.serving.config import load_service

pytestmark = [
    pytest.mark.mlflow,
    pytest.mark.slow,
    pytest.mark.filterwarnings(r"ignore:.*Any type hint is inferred as AnyType:UserWarning"),
]

FEATURES = ["x0", "x1"]


@pytest.fixture(scope="module")
def registry(mlflow_uri: str) -> Any:
    """Two versions of 'hs-loans' in the server's registry: v1 fits, v2 predicts one class."""
    mlflow = pytest.importorskip("mlflow")
    pytest.importorskip("mlflow.sklearn")
    pd = pytest.importorskip("pandas")
    from sklearn.dummy import DummyClassifier
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(5)
    X = pd.DataFrame(rng.normal(size=(400, 2)), columns=FEATURES)
    y = np.where(X["x0"] + 0.5 * X["x1"] > 0, "approve", "decline")
    mlflow.set_tracking_uri(mlflow_uri)
    mlflow.set_experiment("hs-serving")
    for model in (
        LogisticRegression().fit(X, y),
        DummyClassifier(strategy="most_frequent").fit(X, y),
    ):
        with mlflow.start_run():
            mlflow.sklearn.log_model(
                model, name="model", registered_model_name="hs-loans", pip_requirements=[]
            )
    return X, y


def test_models_uri_from_the_server_registry(
    registry: Any, mlflow_uri: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", mlflow_uri)
    X, y = registry
    backend = MlflowBackend("models:/hs-loans/1")
    assert (backend.name, backend.version) == ("hs-loans", "1")
    rows = X.head(50).to_dict("records")
    got = [backend.predict(r).output for r in rows]
    assert np.mean(np.asarray(got) == y[:50]) > 0.9


def test_service_yaml_with_an_mlflow_tier_and_candidate(
    registry: Any, mlflow_uri: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", mlflow_uri)
    X, y = registry
    (tmp_path / "service.yaml").write_text(
        "name: loans\nstore: none\ndeadline_ms: 2000\n"
        "tiers:\n"
        "  - {kind: mlflow, uri: 'models:/hs-loans/1'}\n"
        "  - {kind: rules, default: refer}\n"
        "candidates:\n"
        "  v2: {kind: mlflow, uri: 'models:/hs-loans/2'}\n"
    )
    service = load_service(tmp_path / "service.yaml")
    try:
        assert service.version == "1" and service.candidate("v2").version == "2"
        canary = service.start_canary(
            "v2", steps=[50, 100], interval_s=3600, min_requests=30, min_labels=30, tick_s=None
        )
        rows = X.to_dict("records")
        responses = [service.predict_sync(r, key=f"k{i}") for i, r in enumerate(rows[:300])]
        # Baseline requests are answered by the registry's v1, canary ones by v2.
        assert {(r.arm, r.tier, r.version) for r in responses} == {
            ("baseline", "hs-loans", "1"), ("canary", "v2", "2"),
        }  # fmt: skip
        service.record_outcomes(
            [
                {"prediction_id": r.id, "label": str(label)}
                for r, label in zip(responses, y, strict=False)
            ]
        )
        canary.tick()  # the always-valid test sees v2's accuracy collapse
        assert canary.status_name == "rolled_back" and "accuracy" in canary.reason
    finally:
        service.close()
