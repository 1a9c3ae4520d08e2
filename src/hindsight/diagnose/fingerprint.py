"""Fingerprints: one stable id for every occurrence of the same failure.

Two runs that fail the same way rarely print the same text: batch sizes, memory
amounts, paths, addresses, shapes, timestamps and run ids differ. :func:`mask` replaces
those with placeholders, and :func:`fingerprint` hashes the exception type, the masked
message and the names (never the line numbers, which move with every edit) of the
innermost user-code frames. Words and quoted names are kept, so a missing column
``'user_id'`` and a missing column ``'item_id'`` stay different failures.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from hindsight.diagnose.evidence import Evidence
from hindsight.diagnose.logtext import error_lines
from hindsight.errors import DiagnosisError

__all__ = ["Fingerprint", "fingerprint", "mask"]

_MAX_MESSAGE_CHARS = 2000
_FRAME_COUNT = 3

_DIM = r"(?:-?\d+|None|\?)"
# Order matters: structured tokens first, so their digits are not masked piecemeal.
_MASKS: tuple[tuple[re.Pattern[str], str], ...] = (
    (
        re.compile(
            r"\b\d{4}-\d{2}-\d{2}(?:[T ]\d{1,2}:\d{2}(?::\d{2}(?:[.,]\d+)?)?"
            r"(?:Z|[+-]\d{2}:?\d{2}|\s?UTC)?)?\b"
        ),
        "<time>",
    ),
    (
        re.compile(
            r"\b(?:(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun)[a-z]*,?\s+)?"
            r"(?:Jan(?:uary)?|Feb(?:ruary)?|Mar(?:ch)?|Apr(?:il)?|May|June?|July?|Aug(?:ust)?"
            r"|Sep(?:t(?:ember)?)?|Oct(?:ober)?|Nov(?:ember)?|Dec(?:ember)?)\s+\d{1,2}"
            r"(?:,?\s+\d{1,2}:\d{2}(?::\d{2})?(?:,?\s+\d{4})?|,?\s+\d{4})\b"
        ),
        "<time>",
    ),
    (re.compile(r"\b\d{1,2}:\d{2}:\d{2}(?:[.,]\d+)?\b"), "<time>"),
    (
        re.compile(
            r"\b[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}\b"
        ),
        "<id>",
    ),
    (re.compile(r"\b[a-z][a-z0-9+.-]*://[^\s'\"<>)\]]+", re.IGNORECASE), "<url>"),
    (
        re.compile(
            r"\[?\b(?:\d{1,3}\.){3}\d{1,3}\b\]?(?::\d{1,5})?"
            r"|\[[0-9a-fA-F:]{2,}\](?::\d{1,5})?"
            r"|\blocalhost:\d{1,5}\b"
        ),
        "<addr>",
    ),
    (re.compile(r"\b0x[0-9a-fA-F]+\b"), "<hex>"),
    (
        re.compile(
            r"(?<![\w])(?:[A-Za-z]:\\|\\\\)[^\s'\"<>|:*?]+"  # windows, UNC
            r"|(?<![\w.:/<>-])(?:~|\.{1,2})?/(?:[\w.@+%=-]+/)*[\w.@+%=-]*[\w@+%=-]"  # unix
            r"|\b(?:[\w.-]+/)+[\w-]+\.[A-Za-z][\w]{0,7}\b"  # relative, with an extension
        ),
        "<path>",
    ),
    (
        re.compile(
            r"\b(?:run|exp|fail|les|job|trial|task|ckpt|worker)[-_]"
            r"(?=[\w-]*\d)[A-Za-z0-9][\w-]{3,}\b"
            r"|\b(?=[0-9a-f]*\d)(?=[0-9a-f]*[a-f])[0-9a-f]{12,}\b"
            r"|\b(?=[A-Za-z0-9]*\d[A-Za-z0-9]*\d[A-Za-z0-9]*\d)"
            r"(?=[A-Za-z0-9]*[a-z][A-Za-z0-9]*[a-z])[A-Za-z0-9]{16,}\b"
        ),
        "<id>",
    ),
    (re.compile(r"\btorch\.Size\(\[[^\]]*\]\)"), "<shape>"),
    (re.compile(r"\bTensorShape\(\[[^\]]*\]\)"), "<shape>"),
    (re.compile(rf"\[\s*{_DIM}(?:\s*,\s*{_DIM})+\s*,?\s*\]"), "<shape>"),
    (re.compile(rf"\(\s*{_DIM}(?:\s*,\s*{_DIM})*\s*,\s*(?:{_DIM}\s*)?\)"), "<shape>"),
    (re.compile(r"\b\d+(?:\s?[x\u00d7]\s?\d+)+\b"), "<shape>"),
    (
        re.compile(
            r"(?<![\w.])[-+]?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?\s?"
            r"(?:[KMGTPE]i?B|[kK]B|[Bb]ytes?|B)\b"
        ),
        "<size>",
    ),
    (
        re.compile(r"(?<![A-Za-z_\d.])[-+]?(?:\d+\.\d*|\.\d+|\d+)(?:[eE][-+]?\d+)?(?![A-Za-z_\d])"),
        "<n>",
    ),
)
_SPACE_RE = re.compile(r"\s+")
_WORD_RE = re.compile(r"[A-Za-z][A-Za-z0-9_]+")
_CAMEL_RE = re.compile(r"[A-Z]+(?=[A-Z][a-z])|[A-Z]?[a-z]+|[A-Z]+|\d+")
_PLACEHOLDER_RE = re.compile(r"<[a-z]+>")


def mask(text: str) -> str:
    """``text`` with run-specific values replaced by placeholders, whitespace collapsed.

    >>> mask("CUDA out of memory. Tried to allocate 20.00 MiB (GPU 0; 7.8 GiB total)")
    'CUDA out of memory. Tried to allocate <size> (GPU <n>; <size> total)'
    >>> mask("KeyError: 'user_id'")
    "KeyError: 'user_id'"
    """
    for pattern, placeholder in _MASKS:
        text = pattern.sub(placeholder, text)
    return _SPACE_RE.sub(" ", text).strip()


@dataclass(frozen=True, slots=True)
class Fingerprint:
    """A stable id for a kind of failure, and the tokens for fuzzy matching of similar ones.

    ``hash`` is 16 hex characters of SHA-256 over the exception type, the masked
    message and ``frames`` (``"file.py:function"`` of up to three innermost user frames).
    """

    hash: str
    exc_type: str
    masked_message: str
    frames: tuple[str, ...]
    tokens: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        """A JSON-safe dict of the fingerprint."""
        return {
            "hash": self.hash,
            "exc_type": self.exc_type,
            "masked_message": self.masked_message,
            "frames": list(self.frames),
            "tokens": list(self.tokens),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Fingerprint:
        """The fingerprint back from :meth:`to_dict`."""
        try:
            return cls(
                hash=str(data["hash"]),
                exc_type=str(data.get("exc_type") or ""),
                masked_message=str(data.get("masked_message") or ""),
                frames=tuple(str(f) for f in data.get("frames") or ()),
                tokens=tuple(str(t) for t in data.get("tokens") or ()),
            )
        except (KeyError, TypeError) as exc:
            raise DiagnosisError(
                f"Not a fingerprint dict ({exc}); use Fingerprint.to_dict()."
            ) from None


def fingerprint(evidence: Evidence, category: str | None = None) -> Fingerprint:
    """The :class:`Fingerprint` of some evidence, optionally tagged with its category.

    Evidence without a traceback (a plain log) is fingerprinted on its masked
    most-error-looking lines.

    >>> a = fingerprint(Evidence("ValueError", "bad value 3 at /tmp/a.csv"))
    >>> b = fingerprint(Evidence("ValueError", "bad value 7 at /data/b.csv"))
    >>> a.hash == b.hash
    True
    """
    if not isinstance(evidence, Evidence):
        raise DiagnosisError(
            f"fingerprint() needs an Evidence; got {type(evidence).__name__}. "
            "Build one with Evidence.from_exception() or Evidence.from_text()."
        )
    if evidence.exc_type or evidence.frames:
        masked = mask(evidence.message[:_MAX_MESSAGE_CHARS])
    else:
        source = evidence.log_tail or evidence.message
        lines = error_lines(source, 3) or [evidence.message]
        masked = " | ".join(m for m in (mask(line) for line in lines) if m)
        if not masked and evidence.exit_code is not None:
            # A silent death is still told apart by how it died (137 vs 143).
            masked = f"exit code {evidence.exit_code}"
    frames = _frame_keys(evidence)
    digest = hashlib.sha256(
        "\x1f".join([evidence.exc_type, masked, *frames]).encode("utf-8")
    ).hexdigest()[:16]
    tokens = _tokens(evidence.exc_type, masked, frames, category)
    return Fingerprint(digest, evidence.exc_type, masked, frames, tokens)


def _frame_keys(evidence: Evidence) -> tuple[str, ...]:
    # Innermost frames are closest to the fault; library frames stand in when the
    # user's code is not on the stack at all (e.g. a failure inside a worker thread).
    chosen = evidence.user_frames or evidence.frames
    keys = [f"{_basename(f.filename)}:{f.function}" for f in chosen[-_FRAME_COUNT:]]
    return tuple(keys)


def _basename(path: str) -> str:
    return path.replace("\\", "/").rsplit("/", 1)[-1]


def _tokens(
    exc_type: str, masked: str, frames: tuple[str, ...], category: str | None
) -> tuple[str, ...]:
    seen: dict[str, None] = {}
    if category:
        seen[str(category)] = None
    for part in exc_type.split("."):
        if part:
            seen.setdefault(part.lower(), None)
            for piece in _CAMEL_RE.findall(part):
                if len(piece) > 1 and not piece.isdigit():
                    seen.setdefault(piece.lower(), None)
    for word in _WORD_RE.findall(_PLACEHOLDER_RE.sub(" ", masked)):
        seen.setdefault(word.lower(), None)
    for frame in frames:
        file, _, func = frame.partition(":")
        stem = file.rsplit(".", 1)[0]
        for word in (stem, func):
            for w in _WORD_RE.findall(word):
                seen.setdefault(w.lower(), None)
    return tuple(seen)
