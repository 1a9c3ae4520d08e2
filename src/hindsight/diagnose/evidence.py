"""Evidence of a failure: exception type, message, stack frames and the log tail.

Evidence is what the classifier and the fingerprint read. It comes either from a live
exception (:meth:`Evidence.from_exception`) or from the text a process left behind
(:meth:`Evidence.from_text`), where the last Python traceback is parsed back into
frames and a message, and anything else is kept as a tail of the log.
"""

from __future__ import annotations

import traceback
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from hindsight.diagnose.frames import Frame, make_frame, qualified_name
from hindsight.diagnose.logtext import error_lines, parse_tracebacks, strip_frames, tail
from hindsight.errors import DiagnosisError

__all__ = ["LOG_TAIL_LINES", "MAX_MESSAGE_CHARS", "Evidence", "Frame", "signal_of", "tail"]

LOG_TAIL_LINES = 60
_CHAIN_LIMIT = 8
# Some messages embed whole data dumps; the start says what went wrong.
MAX_MESSAGE_CHARS = 20000


@dataclass(frozen=True, slots=True)
class Evidence:
    """What is known about one failure, in a form the classifier can read.

    ``frames`` run outermost first, as in a printed traceback. ``chain`` holds the
    ``"Type: message"`` lines of chained exceptions (causes, contexts, notes), nearest
    first; they often name the root cause that the final exception hides.

    >>> ev = Evidence.from_text("Traceback (most recent call last):\\n"
    ...     '  File "train.py", line 3, in <module>\\n'
    ...     "    main()\\n"
    ...     "ZeroDivisionError: division by zero\\n")
    >>> ev.exc_type, ev.message, ev.frames[0].function
    ('ZeroDivisionError', 'division by zero', '<module>')
    """

    exc_type: str = ""
    message: str = ""
    frames: tuple[Frame, ...] = ()
    log_tail: str = ""
    exit_code: int | None = None
    signal: int | None = None
    chain: tuple[str, ...] = field(default=())

    @classmethod
    def from_exception(cls, exc: BaseException, *, exit_code: int | None = None) -> Evidence:
        """Evidence from a caught exception, its traceback and its chained exceptions."""
        if not isinstance(exc, BaseException):
            raise DiagnosisError(
                f"Evidence.from_exception() needs an exception; got {type(exc).__name__}."
            )
        frames = tuple(
            make_frame(fs.filename, fs.lineno or 0, fs.name, fs.line or "")
            for fs in traceback.extract_tb(exc.__traceback__)
        )
        if exit_code is None and isinstance(exc, SystemExit) and isinstance(exc.code, int):
            exit_code = exc.code
        return cls(
            exc_type=qualified_name(type(exc)),
            message=_clip(_safe_str(exc)),
            frames=frames,
            log_tail="",
            exit_code=exit_code,
            signal=signal_of(exit_code),
            chain=tuple(_chain_of(exc)),
        )

    @classmethod
    def from_text(cls, text: str | bytes, exit_code: int | None = None) -> Evidence:
        """Evidence from log text: the last Python traceback if any, else the error lines.

        Bytes are decoded as UTF-8 with replacement: a few bytes of binary noise in a
        log must not hide the error.
        """
        if isinstance(text, bytes | bytearray):
            text = bytes(text).decode("utf-8", errors="replace")
        if not isinstance(text, str):
            raise DiagnosisError(
                f"Evidence.from_text() needs log text (str); got {type(text).__name__}."
            )
        text = text.replace("\r\n", "\n").replace("\r", "\n")
        log_tail = tail(text, max_lines=LOG_TAIL_LINES)
        blocks = parse_tracebacks(text.split("\n"))
        if not blocks:
            best = error_lines(text, 1)
            return cls(
                message=best[0] if best else "",
                log_tail=log_tail,
                exit_code=exit_code,
                signal=signal_of(exit_code),
            )
        last = blocks[-1]
        chain: list[str] = []
        for prev, cur in zip(reversed(blocks[:-1]), reversed(blocks[1:]), strict=True):
            if not cur.chained:
                break
            chain.append(prev.headline)
        return cls(
            exc_type=last.exc_type,
            message=_clip(last.message),
            frames=last.frames,
            log_tail=log_tail,
            exit_code=exit_code,
            signal=signal_of(exit_code),
            chain=tuple(chain[:_CHAIN_LIMIT]),
        )

    @property
    def headline(self) -> str:
        """``"Type: first line of message"``, or the message alone for log-only evidence."""
        first = self.message.strip().split("\n", 1)[0] if self.message.strip() else ""
        if self.exc_type and first:
            return f"{self.exc_type}: {first}"
        return self.exc_type or first

    @property
    def user_frames(self) -> tuple[Frame, ...]:
        """The frames in the user's own code, outermost first."""
        return tuple(f for f in self.frames if f.in_user_code)

    def text(self) -> str:
        """Everything the classifier matches against, without traceback frame lines."""
        parts = [f"{self.exc_type}: {self.message}" if self.exc_type else self.message]
        parts.extend(self.chain)
        if self.log_tail:
            parts.append(strip_frames(self.log_tail))
        return "\n".join(p for p in parts if p)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-safe dict of the evidence."""
        return {
            "exc_type": self.exc_type,
            "message": self.message,
            "frames": [f.to_dict() for f in self.frames],
            "log_tail": self.log_tail,
            "exit_code": self.exit_code,
            "signal": self.signal,
            "chain": list(self.chain),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Evidence:
        """The evidence back from :meth:`to_dict`."""
        if not isinstance(data, Mapping):
            raise DiagnosisError(f"Evidence.from_dict() needs a dict; got {type(data).__name__}.")
        exit_code = data.get("exit_code")
        sig = data.get("signal")
        return cls(
            exc_type=str(data.get("exc_type") or ""),
            message=str(data.get("message") or ""),
            frames=tuple(Frame.from_dict(f) for f in data.get("frames") or ()),
            log_tail=str(data.get("log_tail") or ""),
            exit_code=int(exit_code) if exit_code is not None else None,
            signal=int(sig) if sig is not None else signal_of(exit_code),
            chain=tuple(str(c) for c in data.get("chain") or ()),
        )


def signal_of(exit_code: Any) -> int | None:
    """The signal that ended a process, read from its exit status (-9 or 137 -> 9)."""
    if not isinstance(exit_code, int) or isinstance(exit_code, bool):
        return None
    if exit_code < 0:  # subprocess reports death by signal N as -N
        return -exit_code
    if 128 < exit_code < 160:  # shells report it as 128 + N
        return exit_code - 128
    return None


def _clip(message: str) -> str:
    if len(message) <= MAX_MESSAGE_CHARS:
        return message
    return message[: MAX_MESSAGE_CHARS - 3] + "..."


def _safe_str(exc: BaseException) -> str:
    try:
        return str(exc)
    except Exception:  # a broken __str__ must not hide the original failure
        return f"<unprintable {type(exc).__name__}>"


def _chain_of(exc: BaseException) -> Iterator[str]:
    seen = {id(exc)}
    notes = getattr(exc, "__notes__", None)
    if isinstance(notes, list):
        yield from (str(n) for n in notes[:_CHAIN_LIMIT])
    if isinstance(exc, BaseExceptionGroup):
        for sub in exc.exceptions[:_CHAIN_LIMIT]:
            yield f"{qualified_name(type(sub))}: {_safe_str(sub)}"
    cur: BaseException | None = exc
    for _ in range(_CHAIN_LIMIT):
        if cur is None:
            break
        nxt = cur.__cause__
        if nxt is None and not cur.__suppress_context__:
            nxt = cur.__context__
        if nxt is None or id(nxt) in seen:
            break
        seen.add(id(nxt))
        yield f"{qualified_name(type(nxt))}: {_safe_str(nxt)}"
        cur = nxt
