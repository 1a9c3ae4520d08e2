"""Finding settings in a run's config, whatever the config calls them.

Configs come from argparse, Hydra, YAML or a plain dict and name the same setting in
many ways (``lr``, ``learning_rate``, ``optimizer.lr``, ``eta``). Nested dicts are
flattened to dotted keys and settings are matched by the last segment of the key,
case-insensitively, with ``-`` read as ``_``.

>>> flat = flatten_config({"optimizer": {"LR": "3e-4"}})
>>> find_setting(flat, LR_KEYS)
('optimizer.LR', '3e-4')
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

__all__ = [
    "BATCH_KEYS",
    "CLIP_KEYS",
    "DATASET_SIZE_KEYS",
    "EPOCH_KEYS",
    "LR_KEYS",
    "SEED_KEYS",
    "TOTAL_STEP_KEYS",
    "TREE_KEYS",
    "WARMUP_KEYS",
    "WEIGHT_DECAY_KEYS",
    "WORKER_KEYS",
    "as_number",
    "find_setting",
    "find_settings",
    "flatten_config",
    "fmt_number",
    "setting_name",
]


def _names(words: str) -> frozenset[str]:
    return frozenset(words.split())


LR_KEYS = _names(
    "lr learning_rate learningrate eta base_lr max_lr init_lr initial_lr "
    "initial_learning_rate lr0 peak_lr"
)
BATCH_KEYS = _names(
    "batch_size batchsize bs train_batch_size per_device_train_batch_size micro_batch_size "
    "mini_batch_size minibatch_size global_batch_size"
)
DATASET_SIZE_KEYS = _names(
    "n_samples dataset_size train_size num_train_samples n_train num_samples num_train "
    "train_samples n_train_samples num_examples n_examples train_examples"
)
SEED_KEYS = _names(
    "seed random_seed random_state manual_seed rng_seed global_seed torch_seed np_seed data_seed"
)
EPOCH_KEYS = _names("epochs max_epochs num_epochs n_epochs num_train_epochs")
WEIGHT_DECAY_KEYS = _names("weight_decay wd l2 l2_reg weight_decay_rate")
CLIP_KEYS = _names(
    "grad_clip clip_grad clip_grad_norm max_grad_norm gradient_clip_val clip_norm clipnorm "
    "clipvalue clip_value grad_norm_clip gradient_clipping max_norm"
)
WARMUP_KEYS = _names("warmup_steps num_warmup_steps warmup_iters warmup")
TOTAL_STEP_KEYS = _names(
    "max_steps total_steps num_training_steps max_iters train_steps num_steps total_iters "
    "max_iterations"
)
WORKER_KEYS = _names("num_workers n_jobs workers dataloader_num_workers")
# Boosted trees call their step size "learning_rate" too; gradient clipping means nothing there.
TREE_KEYS = _names(
    "n_estimators num_boost_round num_leaves max_depth booster min_child_weight "
    "colsample_bytree subsample"
)


def flatten_config(config: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested mappings flattened to dotted keys: ``{"opt": {"lr": 1}} -> {"opt.lr": 1}``."""
    out: dict[str, Any] = {}
    for k, v in config.items():
        key = f"{prefix}{k}"
        if isinstance(v, Mapping) and v:
            out.update(flatten_config(v, key + "."))
        else:
            out[key] = v
    return out


def setting_name(key: str) -> str:
    """The part of a dotted key that names the setting: ``"Optimizer.Learning-Rate"`` ->
    ``"learning_rate"``."""
    return key.rsplit(".", 1)[-1].strip().lower().replace("-", "_").lstrip("_")


def find_settings(flat: Mapping[str, Any], names: Iterable[str]) -> list[tuple[str, Any]]:
    """Every ``(dotted key, value)`` whose setting name is one of ``names``."""
    wanted = frozenset(names)
    return [(k, v) for k, v in flat.items() if setting_name(k) in wanted]


def find_setting(flat: Mapping[str, Any], names: Iterable[str]) -> tuple[str, Any] | None:
    """The first ``(dotted key, value)`` with a numeric value among ``names``, or None."""
    for key, value in find_settings(flat, names):
        if as_number(value) is not None:
            return key, value
    return None


def as_number(value: Any) -> float | None:
    """``value`` as a float when it is a number or a numeric string; bools are not numbers."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value.strip())
        except ValueError:
            return None
    try:  # numpy scalars and the like
        return float(value)
    except (TypeError, ValueError):
        return None


def fmt_number(x: float) -> str:
    """A number as people write it in configs: ``512``, ``0.05``, ``3e-05``."""
    return str(int(x)) if float(x).is_integer() and abs(x) < 1e15 else f"{x:g}"
