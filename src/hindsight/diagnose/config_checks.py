"""Sanity checks on a training config: the settings that most often sink a run.

Each check looks for one kind of setting (see :mod:`hindsight.diagnose.settings` for
how keys are matched) and says what is wrong with it, the usual range, and what to do.

>>> [i.severity for i in check_config({"optimizer": {"lr": -0.1}, "seed": 0})]
['error']
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from hindsight.diagnose.settings import (
    BATCH_KEYS,
    CLIP_KEYS,
    DATASET_SIZE_KEYS,
    EPOCH_KEYS,
    LR_KEYS,
    SEED_KEYS,
    TOTAL_STEP_KEYS,
    TREE_KEYS,
    WARMUP_KEYS,
    WEIGHT_DECAY_KEYS,
    as_number,
    find_settings,
    flatten_config,
    fmt_number,
    setting_name,
)
from hindsight.errors import DiagnosisError

__all__ = ["HIGH_LR", "LR_RANGE", "ConfigIssue", "Severity", "check_config"]

Severity = Literal["error", "warning", "info"]
SEVERITIES: tuple[Severity, ...] = ("error", "warning", "info")

LR_RANGE = (1e-6, 1.0)
HIGH_LR = 1e-2  # above this, adaptive optimizers without clipping often diverge


@dataclass(frozen=True, slots=True)
class ConfigIssue:
    """One questionable setting: which key, its value, what is wrong and what to do.

    ``fix`` is the one-line action that ends up among a diagnosis's recommendations.
    """

    key: str
    value: Any
    message: str
    severity: Severity
    fix: str = ""

    def to_dict(self) -> dict[str, Any]:
        """A JSON-safe dict of the issue (values JSON cannot hold become their repr)."""
        value = self.value
        json_safe = (
            value is None
            or isinstance(value, bool | int | str)
            or (isinstance(value, float) and math.isfinite(value))
        )
        return {
            "key": self.key,
            "value": value if json_safe else repr(value),
            "message": self.message,
            "severity": self.severity,
            "fix": self.fix,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ConfigIssue:
        """The issue back from :meth:`to_dict`."""
        severity = data.get("severity")
        if severity not in SEVERITIES:
            raise DiagnosisError(
                f"A config issue's severity must be one of {SEVERITIES}; got {severity!r}."
            )
        if "key" not in data or "message" not in data:
            raise DiagnosisError("A config issue dict needs 'key' and 'message'.")
        fix = str(data.get("fix") or "")
        return cls(str(data["key"]), data.get("value"), str(data["message"]), severity, fix)


def check_config(config: Mapping[str, Any] | None) -> list[ConfigIssue]:
    """Issues found in a training config, errors first; an empty or absent config has none."""
    if config is None:
        return []
    if not isinstance(config, Mapping):
        raise DiagnosisError(
            f"check_config() needs a mapping of settings; got {type(config).__name__}. "
            "Pass vars(args) for argparse, OmegaConf.to_container(cfg) for Hydra."
        )
    flat = flatten_config(config)
    if not flat:
        return []
    issues = [issue for check in _CHECKS for issue in check(flat)]
    return sorted(issues, key=lambda i: SEVERITIES.index(i.severity))


_Flat = Mapping[str, Any]


def _numbers(flat: _Flat, names: Iterable[str]) -> list[tuple[str, Any, float]]:
    """``(key, raw value, number)`` for each numeric setting among ``names``."""
    out = []
    for key, value in find_settings(flat, names):
        x = as_number(value)
        if x is not None and not math.isnan(x):
            out.append((key, value, x))
    return out


def _check_lr(flat: _Flat) -> Iterator[ConfigIssue]:
    lo, hi = LR_RANGE
    usual = f"the usual range is [{lo:g}, {hi:g}]"
    for key, value, lr in _numbers(flat, LR_KEYS):
        if lr <= 0:
            msg = f"{key}={value!r} must be positive; {usual}."
            fix = f"Set {key} to a positive value (e.g. 1e-3 for Adam, 0.1 for SGD)."
            yield ConfigIssue(key, value, msg, "error", fix)
        elif lr < lo:
            msg = f"{key}={value!r} is below the usual range; {usual}. Training will barely move."
            fix = f"Raise {key} (e.g. 1e-4 to 1e-3) or check for a misplaced exponent."
            yield ConfigIssue(key, value, msg, "warning", fix)
        elif lr > hi:
            msg = (
                f"{key}={value!r} is above the usual range; {usual}. Training will likely diverge."
            )
            fix = f"Lower {key} ({fmt_number(lr)} -> {fmt_number(lr / 10)}) and add warmup."
            yield ConfigIssue(key, value, msg, "warning", fix)


def _check_batch(flat: _Flat) -> Iterator[ConfigIssue]:
    # train_size=0.8 is a split fraction (scikit-learn), not a count.
    sizes = [(k, n) for k, _, n in _numbers(flat, DATASET_SIZE_KEYS) if n > 1 and n.is_integer()]
    for key, value, bs in _numbers(flat, BATCH_KEYS):
        if bs <= 0:
            msg = f"{key}={value!r} must be a positive integer (usually 8 to 1024)."
            yield ConfigIssue(key, value, msg, "error", f"Set {key} to a positive integer.")
            continue
        for size_key, n in sizes:
            if bs > n:
                msg = (
                    f"{key}={value!r} is larger than the dataset ({size_key}={fmt_number(n)}); "
                    "each epoch is one partial batch, or none with drop_last=True."
                )
                fix = f"Lower {key} to at most {fmt_number(n)}, or check {size_key}."
                yield ConfigIssue(key, value, msg, "error", fix)


def _check_seed(flat: _Flat) -> Iterator[ConfigIssue]:
    if any(v is not None for _, v in find_settings(flat, SEED_KEYS)):
        return
    msg = (
        "No random seed is set (seed, random_seed, random_state, manual_seed): runs are not "
        "reproducible, and a failure may not recur when rerun."
    )
    fix = "Set a seed in the config and seed Python, NumPy and the framework with it."
    yield ConfigIssue("seed", None, msg, "info", fix)


def _check_epochs(flat: _Flat) -> Iterator[ConfigIssue]:
    for key, value, n in _numbers(flat, EPOCH_KEYS):
        if n == -1 and setting_name(key) == "max_epochs":
            msg = (
                f"{key}=-1 means unlimited epochs (Lightning); only max_steps or early "
                "stopping ends the run."
            )
            fix = f"Set {key} to a positive number unless unlimited training is intended."
            yield ConfigIssue(key, value, msg, "info", fix)
        elif n <= 0:
            msg = f"{key}={value!r} must be at least 1; no training would run."
            yield ConfigIssue(key, value, msg, "error", f"Set {key} to a positive number.")


def _check_dropout(flat: _Flat) -> Iterator[ConfigIssue]:
    for key, value in flat.items():
        name = setting_name(key)
        if not ("dropout" in name or name.endswith(("pdrop", "drop_rate"))):
            continue
        p = as_number(value)
        if p is not None and not 0.0 <= p < 1.0:
            msg = (
                f"{key}={value!r} is a probability and must be in [0, 1) (usually 0.1 to 0.5); "
                "1 drops every unit."
            )
            yield ConfigIssue(key, value, msg, "error", f"Set {key} in [0, 1), e.g. 0.1.")


def _check_weight_decay(flat: _Flat) -> Iterator[ConfigIssue]:
    for key, value, wd in _numbers(flat, WEIGHT_DECAY_KEYS):
        if wd < 0:
            msg = f"{key}={value!r} is negative; weight decay must be >= 0 (usually 0 to 0.1)."
            fix = f"Set {key} to 0 or a small positive value (e.g. 0.01)."
            yield ConfigIssue(key, value, msg, "error", fix)


def _check_momentum(flat: _Flat) -> Iterator[ConfigIssue]:
    for key, value, m in _numbers(flat, {"momentum", "beta1", "beta2"}):
        if not 0.0 <= m < 1.0:
            msg = f"{key}={value!r} must be in [0, 1) (usually 0.9 to 0.999)."
            yield ConfigIssue(key, value, msg, "error", f"Set {key} in [0, 1), e.g. 0.9.")


def _check_clipping(flat: _Flat) -> Iterator[ConfigIssue]:
    if find_settings(flat, TREE_KEYS):
        return
    clips = [as_number(v) for _, v in find_settings(flat, CLIP_KEYS)]
    if any(c is not None and c > 0 for c in clips):
        return
    for key, value, lr in _numbers(flat, LR_KEYS - {"eta"}):
        if lr > HIGH_LR:
            msg = (
                f"{key}={value!r} is high (> {HIGH_LR:g}) and no gradient clipping is set; "
                "one bad batch can blow the weights up."
            )
            fix = "Add gradient clipping (e.g. max_grad_norm=1.0)."
            yield ConfigIssue(key, value, msg, "info", fix)
            return


def _check_warmup(flat: _Flat) -> Iterator[ConfigIssue]:
    totals = [(k, t) for k, _, t in _numbers(flat, TOTAL_STEP_KEYS) if t > 0]
    for key, value, warm in _numbers(flat, WARMUP_KEYS):
        for total_key, total in totals:
            if warm > total:
                msg = (
                    f"{key}={value!r} is longer than the run ({total_key}={fmt_number(total)}); "
                    "the learning rate never reaches its peak."
                )
                tenth = fmt_number(total // 10)
                fix = f"Set {key} to a small fraction of {total_key} (e.g. {tenth})."
                yield ConfigIssue(key, value, msg, "warning", fix)
    for key, value, ratio in _numbers(flat, {"warmup_ratio"}):
        if not 0.0 <= ratio <= 1.0:
            msg = f"{key}={value!r} must be a fraction in [0, 1] (usually 0.03 to 0.1)."
            yield ConfigIssue(key, value, msg, "warning", f"Set {key} in [0, 1], e.g. 0.05.")
    epochs = [(k, e) for k, _, e in _numbers(flat, EPOCH_KEYS) if e > 0]
    for key, value, warm in _numbers(flat, {"warmup_epochs"}):
        for epoch_key, e in epochs:
            if warm > e:
                msg = f"{key}={value!r} is longer than the run ({epoch_key}={fmt_number(e)})."
                yield ConfigIssue(key, value, msg, "warning", f"Set {key} below {epoch_key}.")


_CHECKS: tuple[Callable[[_Flat], Iterable[ConfigIssue]], ...] = (
    _check_lr,
    _check_batch,
    _check_epochs,
    _check_dropout,
    _check_weight_decay,
    _check_momentum,
    _check_warmup,
    _check_clipping,
    _check_seed,
)
