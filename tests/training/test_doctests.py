"""Every docstring example in hindsight.training runs."""

from __future__ import annotations

import doctest
import importlib
import os
import pkgutil
import types

import pytest

import hindsight.training

MODULES = sorted(
    m.name for m in pkgutil.walk_packages(hindsight.training.__path__, prefix="hindsight.training.")
)

# Keras 3 picks its backend on first import; the integration examples run on torch.
os.environ.setdefault("KERAS_BACKEND", "torch")


def _import(name: str) -> types.ModuleType:
    """Import ``name``; an integration whose framework is missing skips (fails in CI)."""
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


def test_every_public_class_has_an_example() -> None:
    for name in hindsight.training.__all__:
        obj = getattr(hindsight.training, name)
        if isinstance(obj, type) and name != "Detector":
            assert ">>>" in (obj.__doc__ or ""), name
