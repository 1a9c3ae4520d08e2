"""The seeded faulty training set-ups and their healthy twins.

Each :class:`Case` holds a faulty :class:`~fault_harness.TrainConfig`, the changes that
fix it (the healthy twin is the faulty config with exactly those fields changed), the
symptom kinds that count as typing the fault right, and the step from which the fault
is present (0 for a faulty set-up; the injection step for a fault that starts mid-run).
The faults follow the training-problem taxonomies of AUTOTRAINER (Zhang et al., ICSE
2021), DeepDiagnosis (Wardat et al., ICSE 2022) and DeFault (Nikanjam et al.).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from fault_harness import TrainConfig

__all__ = ["CASES", "Case"]

#: A run that diverged: overflow, a blown-up loss or exploding gradients.
DIVERGED = ("loss_explosion", "nonfinite_loss", "nonfinite_gradients", "exploding_gradients")
#: With ReLU units a too-high learning rate often kills units before the loss blows up;
#: the dying-ReLU detector names a too-high learning rate as its likely cause.
DIVERGED_RELU = (*DIVERGED, "dying_relu")
#: Likewise, tanh / sigmoid units saturate at once after a huge update; the
#: saturated-activations detector names a too-high learning rate as a likely cause.
DIVERGED_TANH = (*DIVERGED, "saturated_activations")
NAN = ("nonfinite_loss", "nonfinite_gradients")


@dataclass(frozen=True)
class Case:
    """One faulty set-up, the fix that makes its healthy twin, and the accepted kinds."""

    name: str
    family: str
    fault: str
    fix_text: str
    faulty: TrainConfig
    fix: dict[str, Any]
    expected: tuple[str, ...]
    inject_step: int = 0
    tags: tuple[str, ...] = field(default=())

    @property
    def healthy(self) -> TrainConfig:
        return self.faulty.with_(**self.fix)


#: Per-data-set recipe shared by both twins: the small breast-cancer training set
#: overfits a 64x64 MLP within 300 SGD steps without weight decay.
RECIPES: dict[str, dict[str, Any]] = {"breast_cancer": {"weight_decay": 1e-2}}


def C(dataset: str, **kw: Any) -> TrainConfig:
    """A config on ``dataset`` with its recipe, then ``kw``."""
    return TrainConfig(dataset, **{**RECIPES.get(dataset, {}), **kw})


def _cases() -> list[Case]:
    out: list[Case] = []

    def add(name: str, family: str, fault: str, fix_text: str, faulty: TrainConfig,
            fix: dict[str, Any], expected: tuple[str, ...], inject_step: int = 0) -> None:
        out.append(Case(name, family, fault, fix_text, faulty, fix, expected, inject_step))

    # 1. Learning rate far too high: divergence.
    for ds, act in (("digits", "relu"), ("breast_cancer", "relu"), ("circles", "tanh"),
                    ("moons", "relu"), ("blobs", "tanh"), ("regression", "relu")):
        add(f"lr_high/{ds}", "lr_too_high", "SGD learning rate 20", "learning rate 0.1",
            C(ds, lr=20.0, activation=act), {"lr": 0.1},
            DIVERGED_RELU if act == "relu" else DIVERGED_TANH)

    # 2. Learning rate far too low: nothing is learned.
    for ds in ("digits", "breast_cancer", "circles", "moons", "blobs"):
        add(f"lr_low/{ds}", "lr_too_low", "SGD learning rate 1e-5", "learning rate 0.1",
            C(ds, lr=1e-5), {"lr": 0.1}, ("no_learning", "slow_convergence"))

    # 3. Learning rate too low for the budget: the loss falls, too slowly for the target.
    for ds, target in (("regression", 0.1), ("circles", 0.2), ("blobs", 0.2), ("digits", 0.3)):
        add(f"slow/{ds}", "slow_convergence",
            f"SGD learning rate 2e-3; target loss {target} within 300 steps",
            "learning rate 0.1", C(ds, lr=2e-3, target_loss=target, weight_decay=1e-3),
            {"lr": 0.1}, ("slow_convergence", "no_learning"))

    # 4. Unnormalised inputs with a large scale (tanh network).
    unnorm = ("exploding_gradients", "saturated_activations", *DIVERGED[:3])
    add("unnormalised/breast_cancer", "unnormalised_inputs",
        "raw features (areas in the thousands)", "standardise the inputs",
        C("breast_cancer", standardise=False, activation="tanh"), {"standardise": True}, unnorm)
    add("unnormalised/digits", "unnormalised_inputs", "raw pixel values 0..16",
        "standardise the inputs", C("digits", standardise=False, activation="tanh"),
        {"standardise": True}, unnorm)
    add("unnormalised/diabetes", "unnormalised_inputs",
        "raw features and raw target (25..346)", "standardise inputs and target",
        C("diabetes", standardise=False, scale_target=False, activation="tanh", lr=0.01),
        {"standardise": True, "scale_target": True}, unnorm)
    add("unnormalised/moons", "unnormalised_inputs", "inputs in metres x1000",
        "unit-scale inputs", C("moons", input_scale=1000.0, activation="tanh"),
        {"input_scale": 1.0}, unnorm)
    add("unnormalised/blobs", "unnormalised_inputs", "inputs x300",
        "unit-scale inputs", C("blobs", input_scale=300.0, activation="tanh"),
        {"input_scale": 1.0}, unnorm)

    # 5. Deep sigmoid stack with the default initialisation: vanishing gradients.
    vanish = ("vanishing_gradients", "saturated_activations")
    for ds in ("digits", "blobs", "moons", "circles"):
        add(f"deep_sigmoid/{ds}", "vanishing_gradients", "6 sigmoid layers, default init",
            "ReLU with He init",
            C(ds, hidden=(64,) * 6, activation="sigmoid", lr=0.05, weight_decay=1e-2),
            {"activation": "relu", "init": "he"}, vanish)

    # 6. Saturating units with a far too large initialisation.
    sat = ("saturated_activations", "vanishing_gradients", "exploding_gradients")
    for ds, act in (("digits", "tanh"), ("circles", "tanh"), ("classification", "tanh")):
        add(f"big_init/{ds}", "saturated_activations", f"4 {act} layers, N(0, 3^2) weights",
            "Xavier init", C(ds, hidden=(64,) * 4, activation=act, init="normal", init_std=3.0),
            {"init": "xavier"}, sat)

    # 7. Dying ReLU: a negative bias initialisation, or Adam with a large step.
    add("dying_relu/breast_cancer_bias", "dying_relu", "ReLU biases initialised to -0.7",
        "zero biases", C("breast_cancer", bias_init=-0.7), {"bias_init": None}, ("dying_relu",))
    add("dying_relu/digits_bias", "dying_relu", "ReLU biases initialised to -0.3",
        "zero biases", C("digits", bias_init=-0.3), {"bias_init": None}, ("dying_relu",))
    add("dying_relu/moons_bias", "dying_relu", "ReLU biases initialised to -2",
        "zero biases", C("moons", bias_init=-2.0), {"bias_init": None}, ("dying_relu",))
    add("dying_relu/digits_adam", "dying_relu", "Adam learning rate 0.1 on ReLU",
        "Adam learning rate 1e-3", C("digits", optimizer="adam", lr=0.1), {"lr": 1e-3},
        ("dying_relu",))

    # 8. The optimiser holds another model's parameters (model rebuilt after it).
    for ds in ("digits", "breast_cancer", "moons"):
        add(f"stale_optimizer/{ds}", "no_learning", "optimiser built on a stale model copy",
            "optimiser on the trained model", C(ds, stale_optimizer=True),
            {"stale_optimizer": False}, ("no_learning",))

    # 9. Labels shuffled against the inputs.
    for ds in ("breast_cancer", "moons"):
        add(f"shuffled_labels/{ds}", "no_learning", "labels permuted against inputs",
            "matching labels", C(ds, shuffle_labels=True), {"shuffle_labels": False},
            ("no_learning", "overfitting"))

    # 10. zero_grad forgotten: gradients accumulate, the effective step grows.
    for ds in ("digits", "breast_cancer", "moons", "circles"):
        add(f"no_zero_grad/{ds}", "accumulating_gradients", "optimizer.zero_grad() never called",
            "zero the gradients each step", C(ds, zero_grad=False), {"zero_grad": True},
            DIVERGED_RELU)

    # 11. A schedule bug multiplies the learning rate by 100 mid-run.
    for ds in ("digits", "blobs", "moons", "breast_cancer"):
        add(f"lr_jump/{ds}", "lr_too_high", "learning rate x100 from step 150",
            "constant learning rate", C(ds, lr_jump_at=150, lr_jump_factor=100.0),
            {"lr_jump_at": None}, DIVERGED_RELU, inject_step=150)

    # 12. A corrupt record (NaN feature) reaches a batch mid-run.
    for ds in ("digits", "blobs", "regression"):
        add(f"nan_batch/{ds}", "nonfinite", "NaN feature in a batch at step 120",
            "drop non-finite records", C(ds, nan_batch_at=120), {"nan_batch_fix": True},
            NAN, inject_step=120)

    # 13. Division by zero in preprocessing: constant pixel columns, std 0 -> 0/0.
    add("zero_std/digits", "nonfinite", "standardise by a zero std (constant pixels)",
        "add epsilon to the std", C("digits", std_eps=0.0), {"std_eps": 1e-8}, NAN)

    # 14. log(0) in a hand-written loss: sigmoid rounds to 1.0 on a confidently wrong label.
    add("bce_manual/breast_cancer", "nonfinite",
        "hand-written BCE on sigmoid, 10% label noise, lr 2", "add 1e-7 inside the logs",
        C("breast_cancer", loss="bce_manual", label_noise=0.1, lr=2.0, weight_decay=0.0),
        {"eps_in_log": 1e-7}, NAN)

    # 15. Overfitting: a big network on a tiny training set, no regularisation.
    for ds, n in (("digits", 60), ("breast_cancer", 30), ("moons_noisy", 30),
                  ("classification", 40), ("wine", 20)):
        add(f"overfit/{ds}", "overfitting", f"256x256 MLP, {n} training samples, Adam",
            "the full training set and weight decay",
            C(ds, hidden=(256, 256), n_train=n, optimizer="adam", lr=1e-3, batch_size=32),
            {"n_train": None, "weight_decay": 1e-2}, ("overfitting",))

    # 16. Oscillation: full-batch gradient descent with a step past the stable range.
    add("oscillation/moons", "oscillation", "full-batch GD, learning rate 4",
        "learning rate 0.5", C("moons", batch_size=100_000, activation="tanh", lr=4.0,
                               hidden=(16,)), {"lr": 0.5}, ("oscillation",))
    return out


CASES: tuple[Case, ...] = tuple(_cases())
