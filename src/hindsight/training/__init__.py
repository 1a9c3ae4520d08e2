"""Training guard: catch doomed training runs early, say why, and stop them.

Feed :class:`TrainingGuard` each step's loss, gradients, learning rate, activations,
throughput and memory; its detectors read the running :class:`TrainingState` and
report :class:`Symptom` objects with evidence, a likely cause and recommendations.
"""

from __future__ import annotations

from hindsight.training.detectors import (
    Detector,
    DyingReLU,
    ExplodingGradients,
    GpuMemoryNearLimit,
    LearningRateOutOfRange,
    LossExplosion,
    LossSpike,
    MemoryGrowth,
    NoLearning,
    NonFiniteGradients,
    NonFiniteLoss,
    Oscillation,
    Overfitting,
    Plateau,
    SaturatedActivations,
    SlowConvergence,
    ThroughputCollapse,
    TimeBudget,
    VanishingGradients,
    default_detectors,
    strict_detectors,
)
from hindsight.training.guard import TrainingGuard, Verdict
from hindsight.training.reporting import SYMPTOM_CATEGORY, GuardReporter
from hindsight.training.resources import ResourceMonitor, ResourceSample
from hindsight.training.state import TrainingState
from hindsight.training.symptom import SYMPTOM_KINDS, Symptom

__all__ = [
    "SYMPTOM_CATEGORY",
    "SYMPTOM_KINDS",
    "Detector",
    "DyingReLU",
    "ExplodingGradients",
    "GpuMemoryNearLimit",
    "GuardReporter",
    "LearningRateOutOfRange",
    "LossExplosion",
    "LossSpike",
    "MemoryGrowth",
    "NoLearning",
    "NonFiniteGradients",
    "NonFiniteLoss",
    "Oscillation",
    "Overfitting",
    "Plateau",
    "ResourceMonitor",
    "ResourceSample",
    "SaturatedActivations",
    "SlowConvergence",
    "Symptom",
    "ThroughputCollapse",
    "TimeBudget",
    "TrainingGuard",
    "TrainingState",
    "VanishingGradients",
    "Verdict",
    "default_detectors",
    "strict_detectors",
]
