"""Every docstring example in hindsight.drift, .data, .serving, .review and .monitor runs, and every
drift test module has one."""

from __future__ import annotations

import doctest
import importlib
import os
import pkgutil
import sys
import types

import pytest

import hindsight.data
import hindsight.drift
import hindsight.monitor
import hindsight.review
import hindsight.serving
from hindsight.drift.stattests import REGISTRY

# Discovered at collection time, so modules other people add to the packages are covered.
MODULES = sorted(
    m.name
    for package in (
        hindsight.drift, hindsight.data, hindsight.serving, hindsight.review, hindsight.monitor
    )
    for m in pkgutil.walk_packages(package.__path__, prefix=f"{package.__name__}.")
)


def _import(name: str) -> types.ModuleType:
    """Import ``name``; a module whose optional dependency is missing skips (fails in CI)."""
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as exc:
        if os.environ.get("CI") == "true" or not exc.name or exc.name.startswith("hindsight"):
            raise
        pytest.skip(f"{name} needs {exc.name}, which is not installed")


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name: str) -> None:
    result = doctest.testmod(_import(name), optionflags=doctest.ELLIPSIS)
    assert result.failed == 0


@pytest.mark.parametrize("name", sorted(REGISTRY))
def test_every_registered_test_module_has_an_example(name: str) -> None:
    module = sys.modules[REGISTRY[name].__module__]
    assert ">>>" in (module.__doc__ or ""), f"{module.__name__} needs a seeded example"
