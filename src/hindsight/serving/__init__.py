"""Guarded serving: model backends, circuit breakers, a fallback chain under a deadline,
abstention, review routing, canary / shadow / A-B rollouts and the prediction log,
tied together by :class:`Service` and served over HTTP by :func:`serve`
(``hindsight serve service.yaml``; FastAPI from the ``serve`` extra, imported only then).
"""

from __future__ import annotations

from hindsight.serving.abstain import AbstentionPolicy, RiskRule, Verdict
from hindsight.serving.backend import ModelBackend, ModelOutput
from hindsight.serving.backends import (
    CallableBackend,
    MlflowBackend,
    MockBackend,
    RulesBackend,
    SklearnBackend,
)
from hindsight.serving.breaker import BreakerChange, CircuitBreaker
from hindsight.serving.config import load_service, service_from_dict
from hindsight.serving.fallback import Answer, Attempt, FallbackChain, Tier
from hindsight.serving.log import PredictionLog, PredictionRecord
from hindsight.serving.rollout import ABTest, Canary, Shadow
from hindsight.serving.service import Response, Service

__all__ = [
    "ABTest",
    "AbstentionPolicy",
    "Answer",
    "Attempt",
    "BreakerChange",
    "CallableBackend",
    "Canary",
    "CircuitBreaker",
    "FallbackChain",
    "MlflowBackend",
    "MockBackend",
    "ModelBackend",
    "ModelOutput",
    "PredictionLog",
    "PredictionRecord",
    "Response",
    "RiskRule",
    "RulesBackend",
    "Service",
    "Shadow",
    "SklearnBackend",
    "Tier",
    "Verdict",
    "load_service",
    "serve",
    "service_from_dict",
]


def serve(service: Service, **options: object) -> None:
    """Serve ``service`` over HTTP with uvicorn (see :func:`hindsight.serving.app.serve`)."""
    from hindsight.serving.app import serve as _serve

    _serve(service, **options)  # type: ignore[arg-type]
