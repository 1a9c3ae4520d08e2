"""Every name a package exports exists, and ``import hindsight`` stays lazy."""

from __future__ import annotations

import importlib
import subprocess
import sys

import pytest

PACKAGES = [
    "hindsight",
    "hindsight.errors",
    "hindsight.config",
    "hindsight.store",
    "hindsight.ledger",
    "hindsight.diagnose",
    "hindsight.api",
    "hindsight.alerts",
    "hindsight.training",
    "hindsight.data",
    "hindsight.data.checks",
    "hindsight.drift",
    "hindsight.drift.stattests",
    "hindsight.drift.streaming",
    "hindsight.serving",
    "hindsight.serving.rollout",
    "hindsight.review",
    "hindsight.monitor",
    "hindsight.monitor.performance",
    "hindsight.monitor.windows",
    "hindsight.monitor.signals",
    "hindsight.monitor.decisions",
    "hindsight.monitor.feedback",
    "hindsight.monitor.alerting",
    "hindsight.monitor.checks",
    "hindsight.monitor.config",
    "hindsight.monitor.labels",
    "hindsight.monitor.online_fdr",
    "hindsight.monitor.runner",
    "hindsight.monitor.sources",
    "hindsight.evaluate",
    "hindsight.evaluate.scenarios",
    "hindsight.evaluate.false_positives",
    "hindsight.evaluate.slices",
    "hindsight.evaluate.metrics",
]


@pytest.mark.parametrize("name", PACKAGES)
def test_all_is_complete_and_importable(name: str) -> None:
    module = importlib.import_module(name)
    exported = module.__all__
    assert len(exported) == len(set(exported)), "duplicates in __all__"
    for member in exported:
        assert getattr(module, member) is not None, member


def test_every_error_derives_from_the_root() -> None:
    from hindsight import errors

    for member in errors.__all__:
        cls = getattr(errors, member)
        if issubclass(cls, Warning):  # the one warning category, beside the tree
            assert cls is errors.HindsightWarning and issubclass(cls, UserWarning)
            continue
        assert issubclass(cls, errors.HindsightError), member


def test_import_hindsight_loads_no_heavy_dependency() -> None:
    code = (
        "import sys, hindsight; "
        "heavy = [m for m in ('sqlalchemy', 'numpy', 'scipy', 'pyarrow', 'mlflow', 'typer')"
        " if m in sys.modules]; print(','.join(heavy))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_unknown_attribute_is_an_attribute_error() -> None:
    import hindsight

    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        _ = hindsight.nope  # type: ignore[attr-defined]
