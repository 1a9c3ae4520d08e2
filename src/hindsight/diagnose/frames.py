"""Stack frames, and telling the user's own code from Python's and the libraries'.

Grouping and advice care about the innermost frame in the user's code: that is where a
fix goes. A frame is library code when its file is under site-packages or
dist-packages, in the standard library (this interpreter's or, for tracebacks from
another machine, anything under ``lib/pythonX.Y/``), or a pseudo-file like
``<frozen importlib._bootstrap>`` or ``<string>``.
"""

from __future__ import annotations

import re
import sysconfig
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from hindsight.errors import DiagnosisError

__all__ = ["Frame", "is_user_path", "make_frame", "normalize_exc_type", "qualified_name"]


def _stdlib_roots() -> tuple[str, ...]:
    roots = set()
    for key in ("stdlib", "platstdlib"):
        path = sysconfig.get_paths().get(key)
        if path:
            roots.add(path.replace("\\", "/").rstrip("/") + "/")
    return tuple(sorted(roots))


_STDLIB_ROOTS = _stdlib_roots()
# Tracebacks from other machines name their own stdlib, e.g. /usr/lib/python3.10/.
_REMOTE_STDLIB_RE = re.compile(
    r"/lib(?:64)?/python\d[\d.]*/|^[A-Za-z]:/Python\d+/Lib/|/Lib/(?!site)"
)


@dataclass(frozen=True, slots=True)
class Frame:
    """One stack frame: where the code was when the error went through it."""

    filename: str
    lineno: int
    function: str
    line: str
    in_user_code: bool

    def to_dict(self) -> dict[str, Any]:
        """A JSON-safe dict of the frame."""
        return {
            "filename": self.filename,
            "lineno": self.lineno,
            "function": self.function,
            "line": self.line,
            "in_user_code": self.in_user_code,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Frame:
        """The frame back from :meth:`to_dict`."""
        try:
            return cls(
                str(data["filename"]),
                int(data["lineno"]),
                str(data["function"]),
                str(data.get("line") or ""),
                bool(data["in_user_code"]),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise DiagnosisError(f"Not a frame dict: {dict(data)!r} ({exc}).") from None


def is_user_path(filename: str) -> bool:
    """Whether a frame's file belongs to the user's code rather than Python or a library."""
    if not filename or filename.startswith("<"):
        return False
    norm = filename.replace("\\", "/")
    if "/site-packages/" in norm or "/dist-packages/" in norm:
        return False
    if _REMOTE_STDLIB_RE.search(norm):
        return False
    return not any(norm.startswith(root) for root in _STDLIB_ROOTS)


def qualified_name(cls: type[BaseException]) -> str:
    """An exception class's short qualified name.

    ``"ValueError"`` for built-ins, else the top-level package and the class:
    ``"torch.OutOfMemoryError"``, ``"pandas.ParserError"``.
    """
    module = getattr(cls, "__module__", "") or ""
    name = getattr(cls, "__qualname__", cls.__name__)
    if module in ("builtins", "__main__", ""):
        return str(name)
    return f"{module.split('.', 1)[0]}.{name}"


def normalize_exc_type(printed: str) -> str:
    """A printed exception type in :func:`qualified_name` form (top package + class)."""
    parts = printed.split(".")
    if len(parts) <= 2:
        return printed
    return f"{parts[0]}.{parts[-1]}"


def make_frame(filename: str, lineno: int, function: str, line: str) -> Frame:
    """A :class:`Frame`, with ``in_user_code`` worked out from the filename."""
    return Frame(filename, lineno, function, line.strip(), is_user_path(filename))
