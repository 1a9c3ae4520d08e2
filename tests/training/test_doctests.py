"""Every docstring example in hindsight.training runs."""

from __future__ import annotations

import doctest
import importlib
import pkgutil

import pytest

import hindsight.training

MODULES = sorted(
    m.name for m in pkgutil.walk_packages(hindsight.training.__path__, prefix="hindsight.training.")
)


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name: str) -> None:
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
    assert result.failed == 0


def test_every_public_class_has_an_example() -> None:
    for name in hindsight.training.__all__:
        obj = getattr(hindsight.training, name)
        if isinstance(obj, type) and name != "Detector":
            assert ">>>" in (obj.__doc__ or ""), name
