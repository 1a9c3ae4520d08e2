"""The rules engine: score every failure category against the evidence and pick the best.

Every rule in :data:`~hindsight.diagnose.rules.RULES` that fires adds its weight to its
category, discounted by where it matched: the final exception's own type and message
count fully, chained exceptions a little less, and the surrounding log tail less again,
since logs are full of warnings that did not end the run. A category's score is its
strongest rule plus a fraction of the next few, so corroborating evidence helps without
letting many weak hints outvote one specific message.

Confidence combines how strong the winning evidence is with the margin over the
runner-up: a lone ``ValueError`` is a weak guess, "CUDA out of memory" is not.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType

from hindsight.diagnose.evidence import Evidence
from hindsight.diagnose.frames import normalize_exc_type
from hindsight.diagnose.logtext import strip_frames, text_exc_types
from hindsight.diagnose.rules import RULES, Rule
from hindsight.diagnose.taxonomy import Category
from hindsight.errors import DiagnosisError

__all__ = ["MIN_SCORE", "Classification", "classify"]

MIN_SCORE = 1.0
"""Below this best score the failure is ``unknown``."""

_MESSAGE, _CHAIN, _TAIL = 1.0, 0.85, 0.7  # how much a match counts, by where it was found
_SECONDARY_EXC = 0.6  # an exception type seen in the chain or the log, not the final one
_CORROBORATION = 0.3
_MAX_SNIPPETS = 5
_SNIPPET_CHARS = 300
_CHAIN_TYPE_RE = re.compile(r"^([A-Za-z_][\w.]*):")


@dataclass(frozen=True, slots=True)
class Classification:
    """The winning category, how sure we are, and the evidence that decided it.

    ``confidence`` is 0 for ``unknown``: nothing matched, so there is nothing to be sure of.
    """

    category: Category
    confidence: float
    score: float
    snippets: tuple[str, ...] = ()
    rules: tuple[str, ...] = ()
    scores: Mapping[str, float] = field(default_factory=lambda: MappingProxyType({}))

    def runner_up(self) -> tuple[str, float] | None:
        """The second-best category and its score, if any other category scored."""
        others = [(c, s) for c, s in self.scores.items() if c != self.category]
        return max(others, key=lambda cs: cs[1]) if others else None


@dataclass(frozen=True, slots=True)
class _Context:
    segments: tuple[tuple[str, float], ...]
    primary: frozenset[str]
    secondary: frozenset[str]
    frame_keys: tuple[str, ...]
    exit_code: int | None
    signal: int | None


@dataclass(frozen=True, slots=True)
class _Hit:
    rule: Rule
    value: float
    snippet: str


def classify(evidence: Evidence, rules: Sequence[Rule] = RULES) -> Classification:
    """Score ``evidence`` against ``rules`` and return the best category.

    >>> ev = Evidence("RuntimeError", "CUDA out of memory. Tried to allocate 2.00 GiB")
    >>> classify(ev).category
    <Category.DL_GPU_OOM: 'dl.gpu_oom'>
    """
    if not isinstance(evidence, Evidence):
        raise DiagnosisError(f"classify() needs an Evidence; got {type(evidence).__name__}.")
    ctx = _context(evidence)
    hits: dict[Category, list[_Hit]] = {}
    for rule in rules:
        hit = _fire(rule, ctx)
        if hit is not None:
            hits.setdefault(rule.category, []).append(hit)
    scores = {cat: _aggregate(h) for cat, h in hits.items()}
    ranked = sorted(scores.items(), key=lambda cs: cs[1], reverse=True)
    all_scores = MappingProxyType({c.value: round(s, 3) for c, s in ranked})
    if not ranked or ranked[0][1] < MIN_SCORE:
        return Classification(
            Category.UNKNOWN, 0.0, ranked[0][1] if ranked else 0.0, scores=all_scores
        )
    best_cat, best = ranked[0]
    second = ranked[1][1] if len(ranked) > 1 else 0.0
    strength = 1.0 - math.exp(-best / 4.0)
    margin = (best - second) / best
    confidence = round(strength * (0.4 + 0.6 * margin), 3)
    winning = sorted(hits[best_cat], key=lambda h: h.value, reverse=True)
    snippets: dict[str, None] = {}
    for h in winning:
        if h.snippet and len(snippets) < _MAX_SNIPPETS:
            snippets.setdefault(h.snippet, None)
    return Classification(
        category=best_cat,
        confidence=confidence,
        score=round(best, 3),
        snippets=tuple(snippets),
        rules=tuple(h.rule.name for h in winning),
        scores=all_scores,
    )


def _context(ev: Evidence) -> _Context:
    head = f"{ev.exc_type}: {ev.message}" if ev.exc_type else ev.message
    tail = strip_frames(ev.log_tail) if ev.log_tail else ""
    segments = tuple(
        (s, w) for s, w in ((head, _MESSAGE), ("\n".join(ev.chain), _CHAIN), (tail, _TAIL)) if s
    )
    primary = _names([ev.exc_type]) if ev.exc_type else frozenset()
    chained = [m.group(1) for c in ev.chain if (m := _CHAIN_TYPE_RE.match(c))]
    secondary = _names([*chained, *text_exc_types(tail)]) - primary
    frame_keys = tuple(f"{f.filename}:{f.function}" for f in ev.frames)
    return _Context(segments, primary, secondary, frame_keys, ev.exit_code, ev.signal)


def _names(types: Sequence[str]) -> frozenset[str]:
    out: set[str] = set()
    for t in types:
        full = normalize_exc_type(t)
        out.add(full)
        out.add(full.rsplit(".", 1)[-1])
    return frozenset(out)


def _exc_factor(rule: Rule, ctx: _Context) -> tuple[float, str] | None:
    wanted = {normalize_exc_type(t) for t in rule.exc_types}
    for names, factor in ((ctx.primary, 1.0), (ctx.secondary, _SECONDARY_EXC)):
        found = sorted(wanted & names)
        if found:
            return factor, found[0]
    return None


def _fire(rule: Rule, ctx: _Context) -> _Hit | None:
    factor, snippet = 1.0, ""
    if rule.exc_types:
        exc = _exc_factor(rule, ctx)
        if exc is None:
            return None
        factor, snippet = exc[0], f"exception type {exc[1]}"
    if rule.frame_pattern is not None and not any(
        rule.frame_pattern.search(k) for k in ctx.frame_keys
    ):
        return None
    if rule.exit_codes or rule.signals:
        if ctx.exit_code in rule.exit_codes:
            snippet = snippet or f"exit code {ctx.exit_code}"
        elif ctx.signal in rule.signals:
            snippet = snippet or f"killed by signal {ctx.signal}"
        else:
            return None
    if rule.patterns:
        found = _search(rule.patterns, ctx.segments)
        if found is None:
            return None
        factor, snippet = min(factor, found[0]), found[1]
    return _Hit(rule, rule.weight * factor, snippet)


def _search(
    patterns: Sequence[re.Pattern[str]], segments: Sequence[tuple[str, float]]
) -> tuple[float, str] | None:
    for text, weight in segments:  # highest weight first, so the best place wins
        for pattern in patterns:
            m = pattern.search(text)
            if m:
                return weight, _line_at(text, m.start(), m.end())
    return None


def _line_at(text: str, start: int, end: int) -> str:
    lo = text.rfind("\n", 0, start) + 1
    hi = text.find("\n", end)
    line = text[lo : hi if hi >= 0 else len(text)].strip()
    if len(line) > _SNIPPET_CHARS:
        # Keep the matched part in view when the line is long.
        offset = max(0, start - lo - _SNIPPET_CHARS // 3)
        line = line[offset : offset + _SNIPPET_CHARS]
    return line


def _aggregate(hits: Sequence[_Hit]) -> float:
    values = sorted((h.value for h in hits), reverse=True)
    return values[0] + _CORROBORATION * sum(values[1:4])
