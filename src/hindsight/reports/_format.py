"""Number, p-value and share formatting shared by the HTML reports."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

__all__ = [
    "as_float",
    "fmt_int",
    "fmt_num",
    "fmt_p",
    "fmt_pct",
    "fmt_value",
    "is_pair",
    "label_of",
    "sci",
    "words",
]


def as_float(x: Any) -> float | None:
    if isinstance(x, bool) or not isinstance(x, int | float):
        return None
    v = float(x)
    return v if math.isfinite(v) else None


def is_pair(x: Any) -> bool:
    return isinstance(x, Sequence) and not isinstance(x, str) and len(x) == 2


def words(s: Any) -> str:
    return str(s).replace("_", " ")


def label_of(key: Any) -> str:
    """A details key as a label: ``n_permutations`` -> ``N permutations``."""
    text = words(key)
    return text[:1].upper() + text[1:]


def fmt_num(x: Any, digits: int = 3) -> str:
    v = as_float(x)
    if v is None:
        return "—"
    if v == 0:
        return "0"
    if 1e-3 <= abs(v) < 1:
        return f"{v:.{digits}g}"
    if 1 <= abs(v) < 1e6:
        return f"{v:,.{digits + 1}g}" if abs(v) < 10 ** (digits + 1) else f"{v:,.0f}"
    return sci(v, digits)


def sci(v: float, digits: int) -> str:
    """Scientific notation without padding: ``4.46e-4``, ``1e+12``."""
    mantissa, _, exponent = f"{v:.{digits - 1}e}".partition("e")
    if "." in mantissa:
        mantissa = mantissa.rstrip("0").rstrip(".")
    sign = exponent[0] if exponent[0] == "-" else ""
    return f"{mantissa}e{sign}{exponent[1:].lstrip('0') or '0'}"


def fmt_p(x: Any) -> str:
    v = as_float(x)
    if v is None:
        return "—"
    if v <= 0:
        return "< 1e-300"
    if v < 1e-3:
        return sci(v, 2)
    return f"{v:.3f}"


def fmt_pct(x: Any) -> str:
    v = as_float(x)
    if v is None:
        return "—"
    if v == 0:
        return "0%"
    pct = 100 * v
    if abs(pct) < 0.1:
        return f"{pct:.2g}%"
    return f"{pct:.1f}%" if abs(pct) < 10 else f"{pct:.0f}%"


def fmt_int(x: Any) -> str:
    return f"{x:,}" if isinstance(x, int) and not isinstance(x, bool) else fmt_value(x)


def fmt_value(v: Any) -> str:
    if v is None:
        return "—"
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, int):
        return f"{v:,}"
    if isinstance(v, float):
        return fmt_num(v, 4)
    if isinstance(v, Mapping):
        text = ", ".join(f"{words(k)}: {fmt_value(x)}" for k, x in v.items())
    elif isinstance(v, Sequence) and not isinstance(v, str):
        text = ", ".join(fmt_value(x) for x in v)
    else:
        text = str(v)
    return text if len(text) <= 300 else text[:299] + "…"


# -- SVG ------------------------------------------------------------------------------------
