"""hindsight: make ML failure productive and loud.

Record experiments with their hypothesis and criteria, capture and diagnose every
failure, remember the lessons, and measure how well a team learns::

    import hindsight

    with hindsight.experiment("mf-baseline", hypothesis="MF beats popularity",
                              criteria={"ctr": ">= 0.60"}) as exp:
        exp.log_metric("ctr", 0.63)

Names load lazily so ``import hindsight`` stays fast.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_LAZY = {
    "experiment": "hindsight.ledger",
    "track": "hindsight.ledger",
    "run_experiment": "hindsight.ledger",
    "learning_metrics": "hindsight.api",
    "Ledger": "hindsight.ledger",
    "Experiment": "hindsight.ledger",
    "get_ledger": "hindsight.ledger",
    "set_ledger": "hindsight.ledger",
    "record_failure": "hindsight.api",
    "similar_failures": "hindsight.api",
    "add_lesson": "hindsight.api",
    "Lesson": "hindsight.ledger",
    "PostMortem": "hindsight.ledger",
    "draft_postmortem": "hindsight.api",
    "diagnose": "hindsight.diagnose",
    "fingerprint": "hindsight.diagnose",
    "Settings": "hindsight.config",
    "open_store": "hindsight.store",
    "profile": "hindsight.data",
    "DatasetProfile": "hindsight.data",
    "ProfileOptions": "hindsight.data",
    "save_profile": "hindsight.data",
    "load_profile": "hindsight.data",
    "check_dataset": "hindsight.data.checks",
    "DatasetCheckReport": "hindsight.data.checks",
    "drift_report": "hindsight.drift",
    "DriftReport": "hindsight.drift",
}

__all__ = [
    "DatasetCheckReport",
    "DatasetProfile",
    "DriftReport",
    "Experiment",
    "Ledger",
    "Lesson",
    "PostMortem",
    "ProfileOptions",
    "Settings",
    "__version__",
    "add_lesson",
    "check_dataset",
    "diagnose",
    "draft_postmortem",
    "drift_report",
    "evaluate",
    "experiment",
    "fingerprint",
    "get_ledger",
    "learning_metrics",
    "load_profile",
    "open_store",
    "profile",
    "record_failure",
    "run_experiment",
    "save_profile",
    "set_ledger",
    "similar_failures",
    "track",
]

if TYPE_CHECKING:
    from hindsight.api import (
        add_lesson,
        draft_postmortem,
        learning_metrics,
        record_failure,
        similar_failures,
    )
    from hindsight.config import Settings
    from hindsight.data import (
        DatasetProfile,
        ProfileOptions,
        load_profile,
        profile,
        save_profile,
    )
    from hindsight.data.checks import DatasetCheckReport, check_dataset
    from hindsight.diagnose import diagnose, fingerprint
    from hindsight.drift import DriftReport, drift_report
    from hindsight.ledger import (
        Experiment,
        Ledger,
        Lesson,
        PostMortem,
        experiment,
        get_ledger,
        run_experiment,
        set_ledger,
        track,
    )
    from hindsight.store import open_store


def __getattr__(name: str) -> Any:
    if name == "evaluate":  # the subpackage, callable as its evaluate() function
        return importlib.import_module("hindsight.evaluate")
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'hindsight' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
