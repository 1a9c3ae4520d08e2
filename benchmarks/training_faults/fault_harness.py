"""The machinery behind the training-fault benchmark: data, models, one seeded run.

A :class:`TrainConfig` describes one small PyTorch training set-up completely (data
set, preprocessing, model, initialisation, optimiser, loss, schedule, injected data
corruption); a faulty case and its healthy twin are two configs that differ only in
the fields of the fix. :func:`run_config` trains a config under a
:class:`~hindsight.training.TrainingGuard` fed by the plain-PyTorch ``watch`` and
returns every symptom the guard reported, so several stop policies can be scored from
one run (see :func:`first_stop`).
"""

from __future__ import annotations

import functools
import logging
import math
import time
from collections.abc import Callable, Collection
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import torch
from torch import nn

from hindsight.training import (
    Detector,
    SlowConvergence,
    Symptom,
    TrainingGuard,
    default_detectors,
    strict_detectors,
)
from hindsight.training.integrations.torch import watch

__all__ = [
    "DEFAULT_STOP_KINDS",
    "STRICT_STOP_KINDS",
    "RunResult",
    "TrainConfig",
    "first_stop",
    "run_config",
]

logging.getLogger("hindsight.training").setLevel(logging.CRITICAL)

#: Symptom kinds that stop a run under the default severities of ``default_detectors()``.
DEFAULT_STOP_KINDS = frozenset(
    d.kind for d in default_detectors() if d.severity == "stop"
) | {"slow_convergence"}
#: Symptom kinds that stop a run with ``strict_detectors()``: the defaults plus saturated
#: activations (for models trained from scratch). Slow convergence stops by default
#: too; it joins when a case names a target loss.
STRICT_STOP_KINDS = frozenset(
    d.kind for d in strict_detectors() if d.severity == "stop"
) | {"slow_convergence"}


# -- data ------------------------------------------------------------------------------
@dataclass(frozen=True)
class Data:
    x_train: torch.Tensor
    y_train: torch.Tensor
    x_val: torch.Tensor
    y_val: torch.Tensor
    n_classes: int  # 0 for regression


@functools.cache
def _raw(name: str) -> tuple[np.ndarray, np.ndarray, int]:
    """Features, targets and class count (0: regression) of a built-in or seeded data set."""
    from sklearn import datasets as ds

    if name == "digits":
        x, y = ds.load_digits(return_X_y=True)
        return x, y, 10
    if name == "breast_cancer":
        x, y = ds.load_breast_cancer(return_X_y=True)
        return x, y, 2
    if name == "wine":
        x, y = ds.load_wine(return_X_y=True)
        return x, y, 3
    if name == "circles":
        x, y = ds.make_circles(n_samples=1000, noise=0.08, factor=0.5, random_state=0)
        return x, y, 2
    if name == "moons":
        x, y = ds.make_moons(n_samples=1000, noise=0.15, random_state=0)
        return x, y, 2
    if name == "moons_noisy":
        x, y = ds.make_moons(n_samples=1000, noise=0.35, random_state=1)
        return x, y, 2
    if name == "blobs":
        x, y = ds.make_blobs(
            n_samples=1000, n_features=8, centers=4, cluster_std=2.5, random_state=0
        )
        return x, y, 4
    if name == "classification":
        x, y = ds.make_classification(
            n_samples=1000, n_features=20, n_informative=8, n_classes=3, random_state=0
        )
        return x, y, 3
    if name == "regression":
        x, y = ds.make_regression(
            n_samples=1000, n_features=20, n_informative=10, noise=10.0, random_state=0
        )
        return x, y, 0
    if name == "diabetes":
        x, y = ds.load_diabetes(return_X_y=True, scaled=False)
        return x, y, 0
    raise ValueError(f"unknown data set {name!r}")


@functools.lru_cache(maxsize=256)
def load_data(
    name: str,
    *,
    standardise: bool,
    std_eps: float,
    input_scale: float,
    scale_target: bool,
    n_train: int | None,
    label_noise: float,
    seed: int,
) -> Data:
    """Split 75/25 (seeded), preprocess with training-set statistics, return tensors.

    ``std_eps=0`` divides by the raw per-feature std: a constant feature then gives 0/0.
    ``label_noise`` is the share of training labels replaced by random ones.
    """
    x, y, k = _raw(name)
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(x))
    cut = int(0.75 * len(x))
    tr, va = order[:cut], order[cut:]
    if n_train is not None:
        tr = tr[:n_train]
    x_tr, x_va = x[tr].astype(np.float64), x[va].astype(np.float64)
    y_tr, y_va = y[tr].astype(np.float64), y[va].astype(np.float64)
    if standardise:
        mu, sd = x_tr.mean(0), x_tr.std(0)
        with np.errstate(divide="ignore", invalid="ignore"):
            x_tr, x_va = (x_tr - mu) / (sd + std_eps), (x_va - mu) / (sd + std_eps)
    x_tr, x_va = x_tr * input_scale, x_va * input_scale
    if k == 0 and scale_target:
        my, sy = y_tr.mean(), y_tr.std()
        y_tr, y_va = (y_tr - my) / sy, (y_va - my) / sy
    if label_noise > 0 and k:
        flip = rng.random(len(y_tr)) < label_noise
        y_tr = np.where(flip, rng.integers(0, k, len(y_tr)), y_tr)
    ydt = torch.long if k else torch.float32
    return Data(
        torch.tensor(x_tr, dtype=torch.float32),
        torch.tensor(y_tr, dtype=ydt),
        torch.tensor(x_va, dtype=torch.float32),
        torch.tensor(y_va, dtype=ydt),
        k,
    )


# -- configuration ---------------------------------------------------------------------
@dataclass(frozen=True)
class TrainConfig:
    """One training set-up, complete; every field has a sensible (healthy) default."""

    dataset: str
    seed: int = 0
    steps: int = 300
    batch_size: int = 64
    # preprocessing
    standardise: bool = True
    std_eps: float = 1e-8
    input_scale: float = 1.0
    scale_target: bool = True
    n_train: int | None = None
    label_noise: float = 0.0
    shuffle_labels: bool = False  # labels permuted once: inputs and labels no longer match
    # model
    hidden: tuple[int, ...] = (64, 64)
    activation: str = "relu"  # relu | tanh | sigmoid
    init: str = "default"  # default | he | xavier | normal
    init_std: float = 1.0  # for init="normal"
    bias_init: float | None = None  # constant bias for every hidden layer
    dropout: float = 0.0
    # optimiser
    optimizer: str = "sgd"  # sgd | adam
    lr: float = 0.1
    momentum: float = 0.0
    weight_decay: float = 0.0
    clip_grad: float | None = None
    zero_grad: bool = True
    stale_optimizer: bool = False  # optimiser built on a copy of the model, not the model
    # loss
    loss: str = "auto"  # auto (CE / MSE) | log_softmax_manual | bce_manual | mse_onehot
    eps_in_log: float = 0.0  # added inside the manual log
    # schedule and injected corruption
    lr_jump_at: int | None = None
    lr_jump_factor: float = 1.0
    nan_batch_at: int | None = None
    nan_batch_fix: bool = False  # drop non-finite rows before the step
    val_every: int = 5
    # the guard: an optional slow-convergence goal (target loss by the planned last step)
    target_loss: float | None = None

    def with_(self, **changes: Any) -> TrainConfig:
        return replace(self, **changes)


@dataclass
class RunResult:
    """What one run produced: every symptom reported, the final losses, the wall time."""

    planned_steps: int
    steps_run: int
    symptoms: list[Symptom] = field(default_factory=list)
    losses: list[float] = field(default_factory=list)
    final_loss: float = math.nan
    final_val_loss: float = math.nan
    seconds: float = 0.0


def first_stop(result: RunResult, stop_kinds: Collection[str]) -> Symptom | None:
    """The first reported symptom whose kind stops the run under a policy, or ``None``.

    Symptoms reported at the same step keep the guard's detector order, which is the
    order of ``Verdict.symptoms``.
    """
    for s in result.symptoms:
        if s.kind in stop_kinds:
            return s
    return None


# -- model, loss, one run --------------------------------------------------------------
_ACTIVATIONS: dict[str, Callable[[], nn.Module]] = {
    "relu": nn.ReLU,
    "tanh": nn.Tanh,
    "sigmoid": nn.Sigmoid,
}


def build_model(cfg: TrainConfig, n_in: int, n_out: int) -> nn.Sequential:
    layers: list[nn.Module] = []
    width = n_in
    for h in cfg.hidden:
        lin = nn.Linear(width, h)
        if cfg.init == "he":
            nn.init.kaiming_normal_(lin.weight, nonlinearity="relu")
            nn.init.zeros_(lin.bias)
        elif cfg.init == "xavier":
            nn.init.xavier_normal_(lin.weight)
            nn.init.zeros_(lin.bias)
        elif cfg.init == "normal":
            nn.init.normal_(lin.weight, std=cfg.init_std)
            nn.init.zeros_(lin.bias)
        if cfg.bias_init is not None:
            nn.init.constant_(lin.bias, cfg.bias_init)
        layers += [lin, _ACTIVATIONS[cfg.activation]()]
        if cfg.dropout:
            layers.append(nn.Dropout(cfg.dropout))
        width = h
    layers.append(nn.Linear(width, n_out))
    return nn.Sequential(*layers)


def _loss(cfg: TrainConfig, out: torch.Tensor, y: torch.Tensor, k: int) -> torch.Tensor:
    if k == 0:
        return nn.functional.mse_loss(out.squeeze(-1), y)
    if cfg.loss == "auto":
        return nn.functional.cross_entropy(out, y)
    if cfg.loss == "log_softmax_manual":
        # log(softmax(z)): softmax underflows to exactly 0 for large logit gaps -> log(0).
        p = torch.softmax(out, dim=-1)
        return -torch.log(p.gather(1, y[:, None]) + cfg.eps_in_log).mean()
    if cfg.loss == "bce_manual":
        # Hand-written binary cross-entropy on a sigmoid: sigmoid rounds to 1.0 -> log(0).
        p = torch.sigmoid(out[:, 1] - out[:, 0])
        t = y.to(p.dtype)
        e = cfg.eps_in_log
        return -(t * torch.log(p + e) + (1 - t) * torch.log(1 - p + e)).mean()
    if cfg.loss == "mse_onehot":
        return nn.functional.mse_loss(out, nn.functional.one_hot(y, k).to(out.dtype))
    raise ValueError(f"unknown loss {cfg.loss!r}")


def make_guard(cfg: TrainConfig) -> TrainingGuard:
    """Every default detector at severity "stop" (policies are applied after the run),
    plus :class:`SlowConvergence` when the set-up names a target loss."""
    detectors: list[Detector] = [
        type(d)(**{**d.params, "severity": "stop"}) for d in default_detectors()
    ]
    if cfg.target_loss is not None:
        detectors.append(
            SlowConvergence(target=cfg.target_loss, budget=cfg.steps, severity="stop")
        )
    # "warn": report everything, train to the planned end; stops are scored afterwards.
    return TrainingGuard(detectors, on_failure="warn")


def run_config(cfg: TrainConfig, *, stop_kinds: Collection[str] | None = None) -> RunResult:
    """Train ``cfg`` to its planned end (or until a symptom in ``stop_kinds``, when given)
    and return every symptom the guard reported.

    With ``stop_kinds=None`` the run is not cut short: the symptoms of the whole run let
    any stop policy be scored afterwards exactly as if it had stopped the run, since the
    guard's reports up to a step do not depend on whether training goes on after it.
    """
    torch.manual_seed(cfg.seed)
    data = load_data(
        cfg.dataset,
        standardise=cfg.standardise,
        std_eps=cfg.std_eps,
        input_scale=cfg.input_scale,
        scale_target=cfg.scale_target,
        n_train=cfg.n_train,
        label_noise=cfg.label_noise,
        seed=cfg.seed,
    )
    k = data.n_classes
    x_tr, y_tr = data.x_train, data.y_train
    if cfg.shuffle_labels:
        gen = torch.Generator().manual_seed(cfg.seed + 1)
        y_tr = y_tr[torch.randperm(len(y_tr), generator=gen)]
    model = build_model(cfg, x_tr.shape[1], k or 1)
    # The stale-optimiser bug: the model is rebuilt after the optimiser was created.
    params = (build_model(cfg, x_tr.shape[1], k or 1) if cfg.stale_optimizer else model).parameters()
    opt: torch.optim.Optimizer
    if cfg.optimizer == "sgd":
        opt = torch.optim.SGD(
            params, lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay
        )
    else:
        opt = torch.optim.Adam(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    guard = make_guard(cfg)
    gen = torch.Generator().manual_seed(cfg.seed)
    n = len(x_tr)
    bs = min(cfg.batch_size, n)
    result = RunResult(planned_steps=cfg.steps, steps_run=0)
    t0 = time.perf_counter()
    order = torch.randperm(n, generator=gen)
    pos = 0
    with watch(model, guard, activations=True, optimizer=opt) as w:
        for step in range(cfg.steps):
            if pos + bs > n:
                order, pos = torch.randperm(n, generator=gen), 0
            idx = order[pos : pos + bs]
            pos += bs
            xb, yb = x_tr[idx], y_tr[idx]
            if cfg.nan_batch_at is not None and step == cfg.nan_batch_at:
                xb = xb.clone()
                xb[: max(1, bs // 8), 0] = math.nan  # a corrupt record in the batch
                if cfg.nan_batch_fix:
                    keep = torch.isfinite(xb).all(dim=1)
                    xb, yb = xb[keep], yb[keep]
            lr = cfg.lr
            if cfg.lr_jump_at is not None and step >= cfg.lr_jump_at:
                lr = cfg.lr * cfg.lr_jump_factor
            for group in opt.param_groups:
                group["lr"] = lr
            model.train()
            if cfg.zero_grad:
                opt.zero_grad(set_to_none=True)
            loss = _loss(cfg, model(xb), yb, k)
            loss.backward()
            if cfg.clip_grad is not None:
                nn.utils.clip_grad_norm_(model.parameters(), cfg.clip_grad)
            opt.step()
            val_loss = None
            if cfg.val_every and (step + 1) % cfg.val_every == 0:
                model.eval()
                with torch.no_grad():
                    val_loss = float(_loss(cfg, model(data.x_val), data.y_val, k))
                result.final_val_loss = val_loss
            verdict = w.step(step, loss, val_loss=val_loss, batch_size=len(xb))
            result.steps_run = step + 1
            result.final_loss = float(loss.detach())
            result.losses.append(result.final_loss)
            # A symptom counts from the step whose verdict carried it: with the watch's
            # sampling, that can be later than the step the symptom names.
            result.symptoms.extend(replace(sym, step=verdict.step) for sym in verdict.symptoms)
            if stop_kinds is not None and any(s.kind in stop_kinds for s in verdict.symptoms):
                break
    result.seconds = time.perf_counter() - t0
    return result
