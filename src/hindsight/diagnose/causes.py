"""The likely cause of a failure, in one sentence, from the facts in its evidence.

The taxonomy has a generic likely cause per category. Here it is made specific with
facts pulled from the evidence (how much memory was requested, which module, path or
column was missing, which devices clashed) and from the run's config (the batch size
or learning rate in force). The small fact finders are shared with
:mod:`hindsight.diagnose.advice`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from hindsight.diagnose.evidence import Evidence
from hindsight.diagnose.logtext import error_lines
from hindsight.diagnose.settings import BATCH_KEYS, LR_KEYS, as_number, find_setting, fmt_number
from hindsight.diagnose.taxonomy import CATEGORIES, Category

__all__ = [
    "first_line",
    "likely_cause",
    "numeric_setting",
    "path_fact",
    "search",
    "symptom_block",
]

_SIZE = r"[\d.]+ ?[KMGTP]i?B"


def search(pattern: str, text: str) -> re.Match[str] | None:
    """The first match of ``pattern`` in ``text``, case-insensitive, ``^``/``$`` per line."""
    return re.search(pattern, text, re.IGNORECASE | re.MULTILINE)


def first_line(text: str, limit: int = 200) -> str:
    """The first line of ``text``, shortened to ``limit`` characters."""
    line = text.strip().split("\n", 1)[0] if text.strip() else ""
    return line if len(line) <= limit else line[: limit - 3] + "..."


def numeric_setting(flat: Mapping[str, Any], names: frozenset[str]) -> tuple[str, float] | None:
    """``(dotted key, number)`` of the first numeric setting among ``names``, or None."""
    found = find_setting(flat, names)
    if found is None:
        return None
    value = as_number(found[1])
    return (found[0], value) if value is not None else None


def likely_cause(category: Category, ev: Evidence, flat: Mapping[str, Any]) -> str:
    """One sentence on why this failure happened, as specific as the evidence allows."""
    text = ev.text()
    builder = _CAUSES.get(category)
    specific = builder(ev, text, flat) if builder else None
    if specific:
        return specific
    default = CATEGORIES[category].likely_cause
    headline = ev.headline or (error_lines(text, 1) or [""])[0]
    return f"{default} Last error: {first_line(headline)}" if headline else default


def _with_batch(flat: Mapping[str, Any]) -> str:
    bs = numeric_setting(flat, BATCH_KEYS)
    return f" with {bs[0]}={fmt_number(bs[1])}" if bs else ""


def _cause_gpu_oom(ev: Evidence, text: str, flat: Mapping[str, Any]) -> str | None:
    m = search(rf"Tried to allocate ({_SIZE})", text)
    what = f"allocating {m.group(1)}" if m else ""
    if not m and (m := search(r"OOM when allocating tensor with shape\s*\[?([\d, ]+)\]?", text)):
        what = f"allocating a tensor of shape [{m.group(1).strip()}]"
    free = search(rf"total capacity of ({_SIZE}) of which ({_SIZE}) is free", text)
    if free is None:
        free = search(rf"({_SIZE}) total capacity;[^)]*?({_SIZE}) free", text)
    tail = f" ({free.group(2)} free of {free.group(1)})" if free else ""
    verb = f" {what}" if what else ""
    return f"The GPU ran out of memory{verb}{_with_batch(flat)}{tail}."


def _cause_cpu_oom(ev: Evidence, text: str, flat: Mapping[str, Any]) -> str | None:
    m = search(
        rf"Unable to allocate ({_SIZE}) for an array with shape (\([^)]*\)) and data type (\w+)",
        text,
    )
    if m:
        return (
            f"Host memory ran out allocating {m.group(1)} for a {m.group(3)} array of shape "
            f"{m.group(2)}."
        )
    if search(r"shm|shared memory|bus error", text):
        return (
            "Shared memory (/dev/shm) ran out, typically from DataLoader workers passing batches."
        )
    if ev.signal == 9 or search(r"oom-kill|Killed process|^\s*Killed\s*$|SIGKILL|OOMKilled", text):
        code = f" (exit {ev.exit_code})" if ev.exit_code is not None else ""
        return (
            f"The process was killed{code}, most likely by the kernel's OOM killer because "
            f"it exceeded the machine's or container's memory limit{_with_batch(flat)}."
        )
    return None


def _cause_dependency(ev: Evidence, text: str, flat: Mapping[str, Any]) -> str | None:
    if m := search(r"No module named '?([\w.]+)'?", text):
        return f"The module '{m.group(1)}' is not installed in the job's environment."
    if m := search(r"cannot import name '(\w+)' from '([\w.]+)'", text):
        return (
            f"'{m.group(1)}' does not exist in the installed version of '{m.group(2)}' "
            "(renamed, removed, or not yet added)."
        )
    if m := search(r"module '([\w.]+)' has no attribute '(\w+)'", text):
        return (
            f"'{m.group(1)}.{m.group(2)}' is not in the installed version of "
            f"{m.group(1)}: the code was written for a different version."
        )
    if m := search(r"(lib[\w.+-]+\.so[\w.]*): cannot open shared object file", text):
        return f"The shared library {m.group(1)} is missing or not on the library path."
    if m := search(r"undefined symbol: (\S+)", text):
        return (
            f"A compiled extension was built against a different version of a library "
            f"(undefined symbol {m.group(1)})."
        )
    return None


def path_fact(text: str) -> tuple[str, str] | None:
    """``(OS reason, path)`` from an ``[Errno N] reason: 'path'`` message, or any quoted path."""
    m = search(r"\[Errno \d+\] ([^:\n]+): '([^'\n]+)'", text)
    if m:
        return m.group(1).strip(), m.group(2)
    m = search(r"'([^'\n]*[/\\][^'\n]*)'", text)
    return ("", m.group(1)) if m else None


def _cause_path(ev: Evidence, text: str, flat: Mapping[str, Any]) -> str | None:
    fact = path_fact(text)
    if fact is None:
        return None
    reason, path = fact
    if "ermission" in reason or "ermission denied" in text:
        return f"The job has no permission to access '{path}'."
    return (
        f"The path '{path}' does not exist where the job ran (relative paths resolve "
        "against the working directory)."
    )


def _cause_config(ev: Evidence, text: str, flat: Mapping[str, Any]) -> str | None:
    if m := search(r"^\S+: error: (.+)$", text):
        return f"The command line was rejected: {m.group(1).strip()}."
    if ev.exc_type.endswith("KeyError") and (
        m := re.match(r"^'([A-Z][A-Z0-9_]{2,})'$", ev.message)
    ):
        return f"The environment variable {m.group(1)} is not set."
    if m := search(r"environment variable (\w+)", text):
        return f"The environment variable {m.group(1)} is missing or invalid."
    return f"A setting was rejected: {first_line(ev.headline)}" if ev.headline else None


def _cause_data(ev: Evidence, text: str, flat: Mapping[str, Any]) -> str | None:
    if search(r"Input (?:\w+ )?contains (?:NaN|infinity)", text):
        return "The input data contains missing (NaN) or infinite values."
    if ev.exc_type.endswith("KeyError") and (
        m := re.match(r"^['\"](.+)['\"]$", ev.message.strip())
    ):
        return f"The column or key '{m.group(1)}' is not in the data."
    if m := search(r"could not convert string to float: '?([^'\n]*)'?", text):
        return f"A numeric column contains non-numeric text (e.g. '{m.group(1)}')."
    if m := search(r"'([\w-]+)' codec can't decode byte", text):
        return f"A file is not valid {m.group(1)} text (wrong encoding or a corrupt file)."
    if m := search(r"Target (-?\d+) is out of bounds", text):
        return f"A label ({m.group(1)}) is outside [0, num_classes) of the loss."
    if search(
        r"t >= 0 && t < n_classes|srcIndex < srcSelectDimSize|index out of range in self", text
    ):
        return "A label or token id is outside the range the model's output or embedding supports."
    if search(r"Found array with 0 sample|num_samples=0|is empty|No objects to concatenate", text):
        return "The dataset is empty (after loading or filtering)."
    return None


def _cause_shape(ev: Evidence, text: str, flat: Mapping[str, Any]) -> str | None:
    m = search(r"\((\d+)x(\d+) and (\d+)x(\d+)\)", text)
    if m:
        got, want = int(m.group(2)), int(m.group(3))
        return (
            f"A Linear layer expects {want} input features but received "
            f"{got} (input {m.group(1)}x{m.group(2)}, weight "
            f"{m.group(3)}x{m.group(4)})." + _sizes_from_config(flat, (got, want))
        )
    m = search(r"core dimension \d+.*?\(size (\d+) is different from (\d+)\)", text)
    if m:
        got, want = int(m.group(1)), int(m.group(2))
        return (
            f"A matrix product got an operand of size {got} where {want} was expected on the "
            "shared dimension: two layers disagree on a width." + _sizes_from_config(flat, (got, want))
        )
    return f"Shapes do not line up: {first_line(ev.headline)}" if ev.headline else None


def _sizes_from_config(flat: Mapping[str, Any], sizes: tuple[int, int]) -> str:
    """Config values that explain a mismatched size (equal to it, or half of it)."""
    links = []
    for key, value in flat.items():
        if isinstance(value, bool) or not isinstance(value, int) or value <= 1:
            continue
        for size in sizes:
            if value == size:
                links.append(f"{size} is {key}={value}")
            elif 2 * value == size:
                links.append(f"{size} is 2 x {key} ({value})")
    return f" From the config: {'; '.join(dict.fromkeys(links))}." if links else ""


_SYMPTOM_HEAD = re.compile(r"^TrainingSymptom: (\w+) \(severity=(stop|warn)\)[^\n]*$", re.M)


def symptom_block(text: str) -> tuple[str, str, list[str]] | None:
    """The training guard's symptom that decided a failure: kind, likely cause, advice.

    The first ``severity=stop`` symptom wins, else the first symptom. Returns ``None``
    when the text holds no guard symptom.

    >>> symptom_block("TrainingSymptom: overfitting (severity=stop) at step 9\n"
    ...               "Likely cause: Too little data.\nRecommendation: Add dropout.")
    ('overfitting', 'Too little data.', ['Add dropout.'])
    """
    heads = list(_SYMPTOM_HEAD.finditer(text))
    if not heads:
        return None
    blocks = []
    for i, head in enumerate(heads):
        end = heads[i + 1].start() if i + 1 < len(heads) else len(text)
        body = text[head.end() : end]
        cause = re.search(r"^Likely cause: (.+)$", body, re.M)
        recs = [r.strip() for r in re.findall(r"^Recommendation: (.+)$", body, re.M)]
        blocks.append((head.group(2) == "stop", bool(cause or recs), i, head.group(1),
                       cause.group(1).strip() if cause else "", recs))
    # A stop beats a warning, a block with advice beats a bare headline, earlier beats later.
    _, _, _, kind, cause_text, advice = min(blocks, key=lambda b: (not b[0], not b[1], b[2]))
    return kind, cause_text, advice


def _cause_symptom(ev: Evidence, text: str, flat: Mapping[str, Any]) -> str | None:
    found = symptom_block(text)
    if found is None or not found[1]:
        return None
    kind, cause, _ = found
    return f"The training guard saw {kind.replace('_', ' ')}: {cause}"


def _cause_nan(ev: Evidence, text: str, flat: Mapping[str, Any]) -> str | None:
    if specific := _cause_symptom(ev, text, flat):
        return specific
    lr = numeric_setting(flat, LR_KEYS)
    with_lr = f" with {lr[0]}={fmt_number(lr[1])}" if lr else ""
    return f"Training diverged: the loss or gradients became NaN/Inf{with_lr}."


def _cause_api(ev: Evidence, text: str, flat: Mapping[str, Any]) -> str | None:
    if m := search(r"found at least two devices, ([\w:]+) and ([\w:]+)", text):
        return f"Tensors on different devices ({m.group(1)} and {m.group(2)}) met in one operation."
    if m := search(r"expected scalar type (\w+) but found (\w+)", text):
        return f"An operation expected {m.group(1)} tensors but got {m.group(2)}."
    return f"The framework rejected a call: {first_line(ev.headline)}" if ev.headline else None


def _cause_disk(ev: Evidence, text: str, flat: Mapping[str, Any]) -> str | None:
    fact = path_fact(text)
    where = f" while writing '{fact[1]}'" if fact else ""
    quota = "quota" if search(r"quota", text) else "disk"
    return f"The {quota} filled up{where}."


def _cause_network(ev: Evidence, text: str, flat: Mapping[str, Any]) -> str | None:
    m = search(r"host='([^']+)'", text) or search(r"https?://([^/\s'\"]+)", text)
    if m:
        return f"The job could not talk to {m.group(1)} ({first_line(ev.headline, 120)})."
    return None


def _cause_distributed(ev: Evidence, text: str, flat: Mapping[str, Any]) -> str | None:
    op = search(r"OpType=(\w+)", text)
    ms = search(r"Timeout\(ms\)=(\d+)", text)
    if op or ms:
        kind = op.group(1) if op else "A collective"
        after = f" after {int(ms.group(1)) / 1000:g}s" if ms else ""
        return (
            f"{kind} timed out{after}: a rank crashed, hung or fell behind, and the "
            "others waited for it."
        )
    return None


def _cause_preemption(ev: Evidence, text: str, flat: Mapping[str, Any]) -> str | None:
    if search(r"TIME LIMIT|walltime", text):
        return "The scheduler stopped the job at its time limit."
    if search(r"preempt|spot instance|instance-action|termination notice", text):
        return "The job's machine was preempted (reclaimed by the scheduler or cloud provider)."
    if ev.exc_type == "KeyboardInterrupt" or ev.signal == 2:
        return "The run was interrupted (Ctrl-C / SIGINT)."
    if ev.signal == 15 or search(r"SIGTERM", text):
        return "The job received SIGTERM: it was cancelled or preempted by the scheduler."
    return None


def _cause_gpu_driver(ev: Evidence, text: str, flat: Mapping[str, Any]) -> str | None:
    if m := search(r"CUDA error: ([^\n]+)", text):
        return f"The GPU reported an error: {m.group(1).strip()}."
    return None


def _cause_code(ev: Evidence, text: str, flat: Mapping[str, Any]) -> str | None:
    frames = ev.user_frames or ev.frames
    if not frames or not ev.exc_type:
        return None
    f = frames[-1]
    where = f"{f.filename.replace(chr(92), '/').rsplit('/', 1)[-1]}:{f.lineno}"
    return f"{first_line(ev.headline)} in {f.function}() at {where}."


_CAUSES = {
    Category.DL_GPU_OOM: _cause_gpu_oom,
    Category.DL_CPU_OOM: _cause_cpu_oom,
    Category.ENV_DEPENDENCY: _cause_dependency,
    Category.ENV_PATH: _cause_path,
    Category.ENV_CONFIG: _cause_config,
    Category.DATA_ERROR: _cause_data,
    Category.DL_SHAPE_MISMATCH: _cause_shape,
    Category.DL_NAN_DIVERGENCE: _cause_nan,
    Category.TRAIN_NO_LEARNING: _cause_symptom,
    Category.TRAIN_OVERFITTING: _cause_symptom,
    Category.TRAIN_UNSTABLE: _cause_symptom,
    Category.TRAIN_GRADIENT_FLOW: _cause_symptom,
    Category.TRAIN_RESOURCES: _cause_symptom,
    Category.DL_API_MISUSE: _cause_api,
    Category.INFRA_DISK_FULL: _cause_disk,
    Category.INFRA_NETWORK: _cause_network,
    Category.INFRA_DISTRIBUTED: _cause_distributed,
    Category.INFRA_PREEMPTION: _cause_preemption,
    Category.INFRA_GPU_DRIVER: _cause_gpu_driver,
    Category.CODE_ERROR: _cause_code,
}
