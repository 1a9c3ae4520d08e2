"""Reading process logs: tails, Python tracebacks in text, and the lines that look like errors.

A log may hold several tracebacks (retries, one per rank, chained exceptions). The
parser reads each ``Traceback (most recent call last):`` block back into frames and
an exception line, following the prefixes launchers and loggers put on every line
(``[rank0]:`` and the like), the carets and elisions of Python 3.11+, and
multi-line messages up to the next blank line or the next tool's log record.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from hindsight.diagnose.frames import Frame, make_frame, normalize_exc_type
from hindsight.errors import DiagnosisError

__all__ = [
    "TB_START",
    "TracebackBlock",
    "error_lines",
    "parse_tracebacks",
    "strip_frames",
    "tail",
    "text_exc_types",
]

TB_START = "Traceback (most recent call last):"
_CHAIN_MARKERS = (
    "During handling of the above exception, another exception occurred:",
    "The above exception was the direct cause of the following exception:",
)
_FRAME_RE = re.compile(r'^\s*File "(?P<file>[^"]+)", line (?P<line>\d+)(?:, in (?P<func>.+?))?\s*$')
_CARETS_RE = re.compile(r"^\s*[\^~\s]+$")
_ELIDED_RE = re.compile(
    r"^\s*(?:\[Previous line repeated \d+ more times?\]|\.\.\.<\d+ lines>\.\.\.)"
)
_EXC_LINE_RE = re.compile(r"^(?P<type>[A-Za-z_][\w.]*)(?::\s?(?P<msg>.*))?$")
# Lines that end a multi-line exception message: another tool took over the stream.
_LOG_RECORD_RE = re.compile(
    r"^(?:\[?\d{4}-\d{2}-\d{2}[T ]"
    r"|\[?(?:INFO|WARNING|WARN|ERROR|DEBUG|CRITICAL)\b"
    r"|[IWEF]\d{4} \d"
    r"|(?:wandb|srun|slurmstepd|mpirun|torchrun|sbatch|error|warning):"
    r"|\[rank\d+\]:)",
    re.IGNORECASE,
)
_TEXT_EXC_RE = re.compile(
    r"(?:^|[\s:\]])"
    r"(?P<type>(?:[A-Za-z_]\w*\.)*[A-Z]\w*(?:Error|Exception|Interrupt|Exit|Failure|Fault))"
    r"(?::|$)",
    re.MULTILINE,
)

_STRONG_WORDS = re.compile(
    r"\b(?:error|errors|fatal|exception|killed|panic|segmentation fault|core dumped|"
    r"out of memory|oom|cancelled|canceled|traceback)\b",
    re.IGNORECASE,
)
_MEDIUM_WORDS = re.compile(
    r"\b(?:failed|failure|fails|cannot|can't|could not|unable|denied|refused|not found|"
    r"no such|invalid|timed out|timeout|abort|aborted|terminated|nan|inf|exceeded|"
    r"mismatch|missing|unexpected|sigterm|sigkill|exit code|exitcode)\b",
    re.IGNORECASE,
)
_SOFT_WORDS = re.compile(r"\b(?:warn|warning|warnings|deprecat\w*|futurewarning)\b", re.IGNORECASE)
_CHATTY_RE = re.compile(r"^\s*(?:\[?(?:INFO|DEBUG)\b|\S*\s*\d+%\|)", re.IGNORECASE)


def tail(text: str, max_lines: int = 200, max_chars: int = 20000) -> str:
    """The last ``max_lines`` lines of ``text``, cut to at most ``max_chars`` characters.

    The character cut falls on a line boundary when one is near, so the tail does not
    start mid-word.

    >>> tail("a\\nb\\nc", max_lines=2)
    'b\\nc'
    """
    if max_lines < 1 or max_chars < 1:
        raise DiagnosisError(
            f"tail() needs max_lines >= 1 and max_chars >= 1; got {max_lines}, {max_chars}."
        )
    lines = text.rstrip("\n").split("\n")
    out = "\n".join(lines[-max_lines:])
    if len(out) > max_chars:
        out = out[-max_chars:]
        cut = out.find("\n")
        if 0 <= cut < max_chars // 4:
            out = out[cut + 1 :]
    return out


def strip_frames(text: str) -> str:
    """``text`` without traceback frame lines and the source lines that follow them.

    Source lines quote the user's code, which would otherwise match error patterns
    (``raise FileNotFoundError(...)``) and name causes that did not happen.
    """
    out: list[str] = []
    skip_source = False
    for line in text.split("\n"):
        if _FRAME_RE.match(_strip_rank_prefix(line)):
            skip_source = True
            continue
        body = _strip_rank_prefix(line)
        if skip_source and body.startswith((" ", "\t")) and TB_START not in body:
            continue
        skip_source = False
        out.append(line)
    return "\n".join(out)


def error_lines(text: str, n: int = 3) -> list[str]:
    """The ``n`` lines of ``text`` that look most like an error report, in log order.

    Later lines win ties: the last error in a log is usually the one that ended it.
    """
    scored: list[tuple[float, int, str]] = []
    lines = strip_frames(text).split("\n")
    for i, raw in enumerate(lines):
        line = raw.strip()
        if not line or line == TB_START or _CARETS_RE.match(line):
            continue
        score = _error_score(line)
        if score > 0:
            scored.append((score + i / (10 * len(lines)), i, line[:500]))
    best = sorted(scored, reverse=True)[:n]
    return [line for _, _, line in sorted(best, key=lambda t: t[1])]


def text_exc_types(text: str) -> list[str]:
    """Exception type names that appear as ``Type:`` anywhere in ``text``, in order."""
    seen: dict[str, None] = {}
    for m in _TEXT_EXC_RE.finditer(text):
        seen.setdefault(normalize_exc_type(m.group("type")), None)
    return list(seen)


@dataclass(frozen=True, slots=True)
class TracebackBlock:
    """One traceback found in text: its frames, exception, and whether it was chained."""

    exc_type: str
    message: str
    frames: tuple[Frame, ...]
    chained: bool

    @property
    def headline(self) -> str:
        return f"{self.exc_type}: {self.message}" if self.exc_type else self.message


_RANK_PREFIX_RE = re.compile(r"^\[(?:rank|default)\d*\]: ?")


def _strip_rank_prefix(line: str) -> str:
    return _RANK_PREFIX_RE.sub("", line, count=1)


def parse_tracebacks(lines: list[str]) -> list[TracebackBlock]:
    blocks: list[TracebackBlock] = []
    i = 0
    while i < len(lines):
        pos = lines[i].find(TB_START)
        if pos < 0:
            i += 1
            continue
        # Loggers and launchers prefix every line ("[rank0]: ", "ERROR:root:"); strip it.
        prefix = lines[i][:pos]
        chained = _preceded_by_marker(lines, i, prefix)
        block, i = _parse_block(lines, i + 1, prefix, chained)
        blocks.append(block)
    return blocks


def _unprefix(line: str, prefix: str) -> str:
    if prefix and line.startswith(prefix):
        return line[len(prefix) :]
    if prefix.strip() and line.startswith(prefix.rstrip()):
        return line[len(prefix.rstrip()) :]
    return line


def _preceded_by_marker(lines: list[str], i: int, prefix: str) -> bool:
    j = i - 1
    while j >= 0 and not _unprefix(lines[j], prefix).strip():
        j -= 1
    return j >= 0 and _unprefix(lines[j], prefix).strip() in _CHAIN_MARKERS


def _parse_block(
    lines: list[str], i: int, prefix: str, chained: bool
) -> tuple[TracebackBlock, int]:
    frames: list[Frame] = []
    n = len(lines)
    while i < n:
        line = _unprefix(lines[i], prefix)
        m = _FRAME_RE.match(line)
        if m:
            source = ""
            if i + 1 < n:
                nxt = _unprefix(lines[i + 1], prefix)
                if (
                    nxt.startswith((" ", "\t"))
                    and not _FRAME_RE.match(nxt)
                    and not _CARETS_RE.match(nxt)
                    and not _ELIDED_RE.match(nxt)
                ):
                    source = nxt
                    i += 1
            frames.append(make_frame(m["file"], int(m["line"]), m["func"] or "", source))
            i += 1
            continue
        if not line.strip() or TB_START in line:
            break  # the traceback was cut off before its exception line
        if line.startswith((" ", "\t")):
            i += 1  # carets, elision markers, exception-group decoration
            continue
        break
    exc_type, message = "", ""
    if i < n and _unprefix(lines[i], prefix).strip() and TB_START not in lines[i]:
        head = _unprefix(lines[i], prefix).strip()
        m = _EXC_LINE_RE.match(head)
        if m and " " not in m["type"]:
            exc_type, message = normalize_exc_type(m["type"]), (m["msg"] or "")
        else:
            message = head
        i += 1
        extra: list[str] = []
        while i < n and len(extra) < 40:
            line = _unprefix(lines[i], prefix)
            if (
                not line.strip()
                or TB_START in line
                or line.strip() in _CHAIN_MARKERS
                or _LOG_RECORD_RE.match(line)
            ):
                break
            extra.append(line.rstrip())
            i += 1
        if extra:
            message = "\n".join([message, *extra])
    return TracebackBlock(exc_type, message.strip(), tuple(frames), chained), i


def _error_score(line: str) -> float:
    score = 0.0
    if _EXC_LINE_RE.match(line) and re.match(r"^[\w.]*(?:Error|Exception|Interrupt)\b", line):
        score += 6
    score += 3 * min(2, len(_STRONG_WORDS.findall(line)))
    score += 2 * min(3, len(_MEDIUM_WORDS.findall(line)))
    if score and _SOFT_WORDS.search(line):
        score -= 4
    if score and _CHATTY_RE.match(line):
        score -= 3
    return score
