"""Guarded serving: model backends, circuit breakers and a fallback chain under a deadline.

Work in progress (issue 5): the service, abstention and review routing, rollouts, the
prediction log and the HTTP API come next.
"""

from __future__ import annotations

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

__all__ = [
    "Answer",
    "Attempt",
    "CallableBackend",
    "CircuitBreaker",
    "FallbackChain",
    "MlflowBackend",
    "MockBackend",
    "ModelBackend",
    "ModelOutput",
    "RulesBackend",
    "SklearnBackend",
    "Tier",
]
