"""Values as strict JSON: NaN and infinities become null, NumPy scalars and arrays plain
Python, result objects their ``to_dict()``, anything else unknown its ``str``.

Used by the serving layer and the monitor for what they return and log. (The ledger's
:func:`hindsight.ledger.jsonsafe.jsonable` is stricter: it refuses unknown types.)
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from typing import Any

__all__ = ["plain", "plain_fields"]


def plain(value: Any) -> Any:
    """A strict-JSON copy of ``value`` (see the module docstring)."""
    if value is None or isinstance(value, str | bool | int):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Mapping):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [plain(v) for v in value]
    tolist = getattr(value, "tolist", None)  # NumPy arrays and scalars
    if callable(tolist):
        return plain(tolist())
    to_dict = getattr(value, "to_dict", None)
    if callable(to_dict):
        return plain(to_dict())
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return plain_fields(value)
    return str(value)


def plain_fields(obj: Any) -> dict[str, Any]:
    """A dataclass instance's fields as strict JSON (for ``to_dict()`` methods)."""
    return {f.name: plain(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
