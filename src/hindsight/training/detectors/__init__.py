"""Training-symptom detectors, one per module, all behind :class:`Detector`."""

from __future__ import annotations

from hindsight.training.detectors.base import Detector
from hindsight.training.detectors.dying_relu import DyingReLU
from hindsight.training.detectors.exploding_gradients import ExplodingGradients
from hindsight.training.detectors.gpu_memory import GpuMemoryNearLimit
from hindsight.training.detectors.loss_explosion import LossExplosion
from hindsight.training.detectors.loss_spike import LossSpike
from hindsight.training.detectors.lr_out_of_range import LearningRateOutOfRange
from hindsight.training.detectors.memory_growth import MemoryGrowth
from hindsight.training.detectors.no_learning import NoLearning
from hindsight.training.detectors.nonfinite_gradients import NonFiniteGradients
from hindsight.training.detectors.nonfinite_loss import NonFiniteLoss
from hindsight.training.detectors.oscillation import Oscillation
from hindsight.training.detectors.overfitting import Overfitting
from hindsight.training.detectors.plateau import Plateau
from hindsight.training.detectors.saturated_activations import SaturatedActivations
from hindsight.training.detectors.slow_convergence import SlowConvergence
from hindsight.training.detectors.throughput_collapse import ThroughputCollapse
from hindsight.training.detectors.time_budget import TimeBudget
from hindsight.training.detectors.vanishing_gradients import VanishingGradients

__all__ = [
    "Detector",
    "DyingReLU",
    "ExplodingGradients",
    "GpuMemoryNearLimit",
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
    "SaturatedActivations",
    "SlowConvergence",
    "ThroughputCollapse",
    "TimeBudget",
    "VanishingGradients",
    "default_detectors",
    "strict_detectors",
]


def default_detectors() -> list[Detector]:
    """A fresh set of every built-in detector with its default thresholds.

    :class:`SlowConvergence` and :class:`TimeBudget` are left out: they need a target
    loss and a step budget, or a time budget.
    """
    return [
        NonFiniteLoss(),
        NonFiniteGradients(),
        LossExplosion(),
        LossSpike(),
        NoLearning(),
        Plateau(),
        Overfitting(),
        Oscillation(),
        ExplodingGradients(),
        # Dead ReLUs also starve the gradients: name the specific cause first.
        DyingReLU(),
        VanishingGradients(),
        SaturatedActivations(),
        LearningRateOutOfRange(),
        ThroughputCollapse(),
        MemoryGrowth(),
        GpuMemoryNearLimit(),
    ]


def strict_detectors() -> list[Detector]:
    """:func:`default_detectors`, with saturated activations stopping the run too.

    For models trained from scratch, where a saturated hidden layer is a set-up fault
    (unnormalised inputs, a too-large initialisation). Left at ``warn`` by default because
    fine-tuned models can saturate by design (BERT's pooler tanh) and a too-high learning
    rate saturates layers before it blows up the loss.
    """
    return [
        SaturatedActivations(severity="stop") if isinstance(d, SaturatedActivations) else d
        for d in default_detectors()
    ]
