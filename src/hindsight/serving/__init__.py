"""Guarded serving: model backends, circuit breakers, a fallback chain under a deadline,
abstention and the prediction log.

Work in progress (issue 5): the service, review routing, rollouts and the HTTP API come next.
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
from hindsight.serving.breaker import CircuitBreaker
from hindsight.serving.fallback import Answer, Attempt, FallbackChain, Tier
from hindsight.serving.log import PredictionLog, PredictionRecord

__all__ = [
    "AbstentionPolicy",
    "Answer",
    "Attempt",
    "CallableBackend",
    "CircuitBreaker",
    "FallbackChain",
    "MlflowBackend",
    "MockBackend",
    "ModelBackend",
    "ModelOutput",
    "PredictionLog",
    "PredictionRecord",
    "RiskRule",
    "RulesBackend",
    "SklearnBackend",
    "Tier",
    "Verdict",
]
