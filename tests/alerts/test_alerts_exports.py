"""hindsight.alerts exports a complete, importable __all__, and its doctests run."""

from __future__ import annotations

import doctest
import importlib
import pkgutil

import pytest

import hindsight.alerts

MODULES = sorted(
    f"hindsight.alerts.{m.name}" for m in pkgutil.iter_modules(hindsight.alerts.__path__)
)


def test_all_is_complete_and_importable() -> None:
    exported = hindsight.alerts.__all__
    assert len(exported) == len(set(exported))
    for member in exported:
        assert getattr(hindsight.alerts, member) is not None, member
    public = {
        name
        for module in MODULES
        if not module.rsplit(".", 1)[1].startswith("_")
        for name in importlib.import_module(module).__all__
    }
    assert public - set(exported) <= {"LEVELS"}


@pytest.mark.parametrize("module", ["hindsight.alerts", *MODULES])
def test_doctests(module: str) -> None:
    result = doctest.testmod(importlib.import_module(module), optionflags=doctest.ELLIPSIS)
    assert result.failed == 0
