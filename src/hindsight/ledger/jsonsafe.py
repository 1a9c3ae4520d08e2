"""Turning configs and values into JSON the store can keep, or a clear error."""

from __future__ import annotations

import dataclasses
import enum
import math
from collections.abc import Mapping
from pathlib import PurePath
from typing import Any

from hindsight.errors import LedgerError

__all__ = ["jsonable"]


def jsonable(value: Any, where: str = "config") -> Any:
    """A JSON-safe copy: numpy scalars and arrays, paths, enums, dataclasses, pydantic models."""
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        # JSON has no NaN/inf; keep them readable instead of failing the run.
        return value if math.isfinite(value) else str(value)
    if isinstance(value, Mapping):
        return {str(k): jsonable(v, f"{where}.{k}") for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        items = sorted(value, key=repr) if isinstance(value, (set, frozenset)) else value
        return [jsonable(v, f"{where}[{i}]") for i, v in enumerate(items)]
    if isinstance(value, PurePath):
        return str(value)
    if isinstance(value, enum.Enum):
        return jsonable(value.value, where)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return jsonable(dataclasses.asdict(value), where)
    if hasattr(value, "model_dump"):
        return jsonable(value.model_dump(), where)
    if hasattr(value, "tolist") and callable(value.tolist):  # numpy scalars and arrays
        return jsonable(value.tolist(), where)
    raise LedgerError(
        f"{where} holds a {type(value).__name__}, which the ledger cannot store as JSON. "
        "Pass numbers, strings, booleans, lists or dicts (e.g. str(value))."
    )
