"""Recommendations for a failure: specific fixes first, then the category's defaults.

Specific advice uses the evidence and the config ("Halve batch_size (512 -> 256)",
"Lower learning_rate (0.5 -> 0.05)"); fixes for config errors follow, then the
category's default advice from the taxonomy, then hints from informational config
issues. Duplicates are dropped and the list is capped.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from hindsight.diagnose.causes import numeric_setting, path_fact, search, symptom_block
from hindsight.diagnose.config_checks import ConfigIssue
from hindsight.diagnose.evidence import Evidence
from hindsight.diagnose.settings import (
    BATCH_KEYS,
    CLIP_KEYS,
    LR_KEYS,
    WORKER_KEYS,
    as_number,
    find_settings,
    fmt_number,
)
from hindsight.diagnose.taxonomy import CATEGORIES, Category

__all__ = ["MAX_RECOMMENDATIONS", "recommendations"]

MAX_RECOMMENDATIONS = 8

# Import names whose pip package is called something else.
_PIP_NAMES = {
    "sklearn": "scikit-learn",
    "cv2": "opencv-python",
    "PIL": "Pillow",
    "yaml": "PyYAML",
    "skimage": "scikit-image",
    "bs4": "beautifulsoup4",
    "attr": "attrs",
    "dateutil": "python-dateutil",
    "dotenv": "python-dotenv",
    "jwt": "PyJWT",
    "fitz": "PyMuPDF",
    "docx": "python-docx",
    "git": "GitPython",
    "Crypto": "pycryptodome",
    "OpenSSL": "pyOpenSSL",
    "serial": "pyserial",
    "magic": "python-magic",
    "google.protobuf": "protobuf",
    "tensorflow_hub": "tensorflow-hub",
    "pytorch_lightning": "pytorch-lightning",
    "Levenshtein": "python-Levenshtein",
}


def _pip_name(module: str) -> str:
    if module in _PIP_NAMES:
        return _PIP_NAMES[module]
    top = module.split(".", 1)[0]
    return _PIP_NAMES.get(top, top.replace("_", "-"))


def recommendations(
    category: Category, ev: Evidence, flat: Mapping[str, Any], issues: Sequence[ConfigIssue]
) -> tuple[str, ...]:
    """Specific fixes first, then fixes for config errors, the category's defaults, and hints."""
    text = ev.text()
    builder = _RECS.get(category)
    recs = list(builder(ev, text, flat)) if builder else []
    serious = [i for i in issues if i.severity != "info"]
    hints = [i for i in issues if i.severity == "info"]
    recs.extend(_issue_fixes(serious, recs))
    defaults = CATEGORIES[category].recommendations
    if recs and CATEGORIES[category].group == "train":
        defaults = ()  # the guard's advice for its own symptom is the specific version
    replaced = {i for marker, i in _REPLACES.get(category, ()) if any(marker in r for r in recs)}
    recs.extend(d for i, d in enumerate(defaults) if i not in replaced)
    recs.extend(_issue_fixes(hints, recs))
    unique = list(dict.fromkeys(r for r in recs if r))
    return tuple(unique[:MAX_RECOMMENDATIONS])


def _issue_fixes(issues: Sequence[ConfigIssue], already: Sequence[str]) -> list[str]:
    # A key the specific advice already covers would be said twice.
    return [
        i.fix
        for i in issues
        if i.fix and not any(re.search(rf"\b{re.escape(i.key)}\b", r) for r in already)
    ]


def _recs_gpu_oom(ev: Evidence, text: str, flat: Mapping[str, Any]) -> list[str]:
    bs = numeric_setting(flat, BATCH_KEYS)
    if bs is None:
        return []
    key, n = bs
    if n <= 1:
        return [
            f"{key} is already {fmt_number(n)}: use mixed precision, activation checkpointing "
            "or shard the model (FSDP/ZeRO) across GPUs."
        ]
    half = max(1, int(n) // 2)
    return [
        f"Halve {key} ({fmt_number(n)} -> {half}) or use gradient accumulation (2 steps of "
        f"{half}) to keep the effective batch size."
    ]


def _recs_cpu_oom(ev: Evidence, text: str, flat: Mapping[str, Any]) -> list[str]:
    recs = []
    if search(r"shm|shared memory|bus error", text):
        recs.append(
            "Raise shared memory (docker --shm-size=8g, or a memory-backed emptyDir "
            "on Kubernetes), or set num_workers=0 to confirm."
        )
    if search(r"data type float64", text):
        recs.append("Use float32 instead of float64: it halves the array's memory.")
    workers = numeric_setting(flat, WORKER_KEYS)
    if workers and workers[1] > 1:
        key, n = workers
        recs.append(
            f"Reduce {key} ({fmt_number(n)} -> {max(1, int(n) // 2)}): each worker holds its "
            "own copy of the data it touches."
        )
    bs = numeric_setting(flat, BATCH_KEYS)
    if bs and bs[1] > 1:
        recs.append(f"Lower {bs[0]} ({fmt_number(bs[1])} -> {max(1, int(bs[1]) // 2)}).")
    return recs


def _recs_symptom(ev: Evidence, text: str, flat: Mapping[str, Any]) -> list[str]:
    """The guard's own advice for the symptom that stopped the run, most specific first."""
    found = symptom_block(text)
    return list(found[2]) if found else []


def _recs_nan(ev: Evidence, text: str, flat: Mapping[str, Any]) -> list[str]:
    recs = _recs_symptom(ev, text, flat)
    lr = numeric_setting(flat, LR_KEYS)
    if lr and lr[1] > 0:
        recs.append(
            f"Lower {lr[0]} ({fmt_number(lr[1])} -> {fmt_number(lr[1] / 10)}) and add warmup."
        )
    clips = [as_number(v) for _, v in find_settings(flat, CLIP_KEYS)]
    if not any(c is not None and c > 0 for c in clips):
        recs.append(
            "Add gradient clipping (e.g. clip_grad_norm_(params, 1.0) or max_grad_norm=1.0)."
        )
    if search(r"loss scale|overflow|fp16|float16|half", text):
        recs.append("fp16 overflowed: switch to bf16, or use a dynamic loss scaler.")
    return recs


def _recs_dependency(ev: Evidence, text: str, flat: Mapping[str, Any]) -> list[str]:
    if m := search(r"No module named '?([\w.]+)'?", text):
        mod = m.group(1)
        return [
            f"Install the package that provides '{mod}' (pip install {_pip_name(mod)}), "
            f"or fix PYTHONPATH if '{mod}' is your own module."
        ]
    if m := search(r"cannot import name '(\w+)' from '([\w.]+)'", text):
        pkg = _pip_name(m.group(2))
        return [
            f"Check the installed {pkg} (pip show {pkg}) and pin the version the code "
            f"was written for, or update the import of '{m.group(1)}'."
        ]
    if m := search(r"module '([\w.]+)' has no attribute '(\w+)'", text):
        pkg = _pip_name(m.group(1))
        return [
            f"'{m.group(1)}.{m.group(2)}' was removed or renamed: update the code, or pin "
            f"the {pkg} version it was written for."
        ]
    return []


def _recs_path(ev: Evidence, text: str, flat: Mapping[str, Any]) -> list[str]:
    fact = path_fact(text)
    if fact is None:
        return []
    reason, path = fact
    if "ermission" in reason:
        return [f"Give the job's user access to '{path}', or write somewhere it owns."]
    return [
        f"Check that '{path}' exists inside the job (mounts, working directory); "
        "prefer absolute paths built from one configurable root."
    ]


def _recs_data(ev: Evidence, text: str, flat: Mapping[str, Any]) -> list[str]:
    if search(r"Input (?:\w+ )?contains (?:NaN|infinity)", text):
        return [
            "Impute or drop missing values before fitting (e.g. SimpleImputer or "
            "df.dropna()), and find where they come from upstream."
        ]
    if ev.exc_type.endswith("KeyError") and (
        m := re.match(r"^['\"](.+)['\"]$", ev.message.strip())
    ):
        return [
            f"Check '{m.group(1)}' against df.columns (spelling, case, whitespace) and "
            "against the upstream schema."
        ]
    if search(r"could not convert string to float", text):
        return [
            "Find the non-numeric values (pd.to_numeric(col, errors='coerce').isna()) and "
            "clean or drop those rows."
        ]
    if search(r"Target -?\d+ is out of bounds|n_classes|index out of range in self", text):
        return [
            "Check labels are in [0, num_classes) (print labels.min(), labels.max()) and "
            "that the model's output or vocabulary size matches."
        ]
    return []


def _recs_shape(ev: Evidence, text: str, flat: Mapping[str, Any]) -> list[str]:
    m = search(r"\((\d+)x(\d+) and (\d+)x(\d+)\)", text)
    if m:
        return [
            f"Set the Linear layer's in_features to {m.group(2)} (it is {m.group(3)}), or "
            "fix the flatten/reshape before it."
        ]
    return []


def _recs_api(ev: Evidence, text: str, flat: Mapping[str, Any]) -> list[str]:
    if search(r"same device|device type|different devices?", text):
        return [
            "Move the model and every input to one device: model.to(device) and "
            "x.to(device) for each batch."
        ]
    if m := search(r"expected scalar type (\w+) but found (\w+)", text):
        return [f"Cast the inputs to {m.group(1)} (e.g. x.to(model_dtype)) before the call."]
    return []


def _recs_preemption(ev: Evidence, text: str, flat: Mapping[str, Any]) -> list[str]:
    if search(r"TIME LIMIT|walltime", text):
        return [
            "Request a longer time limit, or checkpoint and requeue (e.g. sbatch "
            "--requeue with --signal=USR1@120 to save before the kill)."
        ]
    return []


def _recs_gpu_driver(ev: Evidence, text: str, flat: Mapping[str, Any]) -> list[str]:
    if search(r"device-side assert", text):
        return [
            "Rerun with CUDA_LAUNCH_BLOCKING=1 or on CPU to see the real error; "
            "device-side asserts are usually out-of-range labels or indices."
        ]
    return []


def _recs_code(ev: Evidence, text: str, flat: Mapping[str, Any]) -> list[str]:
    frames = ev.user_frames
    if not frames:
        return []
    f = frames[-1]
    name = f.filename.replace("\\", "/").rsplit("/", 1)[-1]
    return [f"Start at {name}:{f.lineno} in {f.function}(), the innermost frame in your code."]


_RECS = {
    Category.DL_GPU_OOM: _recs_gpu_oom,
    Category.DL_CPU_OOM: _recs_cpu_oom,
    Category.DL_NAN_DIVERGENCE: _recs_nan,
    Category.TRAIN_NO_LEARNING: _recs_symptom,
    Category.TRAIN_OVERFITTING: _recs_symptom,
    Category.TRAIN_UNSTABLE: _recs_symptom,
    Category.TRAIN_GRADIENT_FLOW: _recs_symptom,
    Category.TRAIN_RESOURCES: _recs_symptom,
    Category.ENV_DEPENDENCY: _recs_dependency,
    Category.ENV_PATH: _recs_path,
    Category.DATA_ERROR: _recs_data,
    Category.DL_SHAPE_MISMATCH: _recs_shape,
    Category.DL_API_MISUSE: _recs_api,
    Category.INFRA_PREEMPTION: _recs_preemption,
    Category.INFRA_GPU_DRIVER: _recs_gpu_driver,
    Category.CODE_ERROR: _recs_code,
}

# A specific recommendation (found by its marker) replaces the generic default it sharpens.
_REPLACES: dict[Category, tuple[tuple[str, int], ...]] = {
    Category.DL_GPU_OOM: (("Halve ", 0),),
    Category.DL_NAN_DIVERGENCE: (("Lower ", 0), ("Add gradient clipping", 1)),
}
