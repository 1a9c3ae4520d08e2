"""Values as strict JSON for the serving layer: NaN and infinities become null, NumPy
scalars and arrays plain Python, anything else unknown its ``str``. (The ledger's
:func:`hindsight.ledger.jsonsafe.jsonable` is stricter: it refuses unknown types.)"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

__all__ = ["plain"]


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
    return str(value)
