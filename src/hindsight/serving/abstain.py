"""When the service should not trust its own answer: the abstention policy.

A request is *abstained on* (answered by the fail-safe tier and routed to human review)
when any of these holds:

- the answer's confidence is below ``min_confidence`` (answers without a confidence,
  e.g. from a rules tier, are not gated);
- the input is out of distribution against the training profile: its OOD score, the
  smallest per-feature tail probability, is below ``ood_threshold``;
- a high-risk rule matches (``RiskRule.parse("amount > 10000")``).

Independently, a seeded audit sample sends ``audit_rate`` of all requests to review
whatever the verdict, so the queue also sees cases the model was sure about.

The OOD score of one feature, scored against its training column's profile:

- numeric: ``2 * min(P(X <= x), P(X >= x))`` from the column's quantile summary, capped
  at 1; values outside the training ``[min, max]`` (or not numbers) score 0;
- categorical: 1 if the category was seen in training, else 0 (when the profile folded
  rare categories into "other", an unnamed one scores the "other" share instead, since
  it may have been seen);
- missing (absent, None or NaN): the training column's missing rate, so 0 (out of
  distribution) unless the training data had missing values there too.

The request's score is the smallest over the features, and the default threshold is
Bonferroni-style, ``0.001 / n_features``: an in-distribution request with independent
features is flagged about 0.1 % of the time.

>>> import numpy as np, pyarrow as pa
>>> from hindsight.data.profile import profile
>>> rng = np.random.default_rng(0)
>>> train = profile(pa.table({"amount": rng.uniform(0, 1000, 5000),
...                           "plan": rng.choice(["basic", "pro"], 5000)}))
>>> policy = AbstentionPolicy(min_confidence=0.6, ood_profile=train,
...                           risk_rules=[RiskRule.parse("amount > 900")])
>>> policy.judge({"amount": 500.0, "plan": "pro"}, 0.9).abstain
False
>>> v = policy.judge({"amount": 5000.0, "plan": "gold"}, 0.4)
>>> v.abstain, v.ood_score
(True, 0.0)
>>> for reason in v.reasons:
...     print(reason)
confidence 0.4 < 0.6
out of distribution: amount=5000.0 outside the training range [...]
out of distribution: plan='gold' not seen in training
risk rule matched: amount > 900
"""

from __future__ import annotations

import bisect
import hashlib
import math
import numbers
import random
import re
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

from hindsight._validation import Interval, validate_params
from hindsight.data.columns import CategoricalColumnProfile, NumericColumnProfile
from hindsight.data.profile import DatasetProfile
from hindsight.errors import ConfigError

__all__ = ["AbstentionPolicy", "RiskRule", "Verdict"]

_OPS: dict[str, Callable[[float, float], bool]] = {
    ">": lambda a, b: a > b,
    ">=": lambda a, b: a >= b,
    "<": lambda a, b: a < b,
    "<=": lambda a, b: a <= b,
    "==": lambda a, b: a == b,
    "!=": lambda a, b: a != b,
}
_NUMBER = r"[-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?"
_RULE = re.compile(
    r"^\s*(?P<column>[A-Za-z_][A-Za-z0-9_.]*)\s*(?P<op>>=|<=|==|!=|>|<)\s*"
    rf"(?P<value>{_NUMBER})\s*$"
)
_RULE_HELP = "Write 'column op number' with op one of >, >=, <, <=, ==, != (e.g. 'amount > 10000')."


@dataclass(frozen=True)
class RiskRule:
    """A named predicate over one request's inputs; a match means "a human must look".

    >>> rule = RiskRule.parse("amount >= 10000")
    >>> rule.name, rule({"amount": 12000}), rule({"amount": 50}), rule({})
    ('amount >= 10000', True, False, False)
    >>> RiskRule("vip", lambda x: x.get("tier") == "vip")({"tier": "vip"})
    True
    """

    name: str
    predicate: Callable[[Mapping[str, Any]], bool] = field(compare=False)

    def __call__(self, inputs: Mapping[str, Any]) -> bool:
        return bool(self.predicate(inputs))

    @classmethod
    def parse(cls, expression: str) -> RiskRule:
        """A rule from ``"column op number"``; parsed by a regular expression, never eval'd.

        The rule matches when the column is present and a real number (booleans are not)
        that satisfies the comparison; a missing or non-numeric value does not match.
        """
        if not isinstance(expression, str):
            raise ConfigError(f"A risk rule expression must be a string. Got {expression!r}.")
        m = _RULE.match(expression)
        if m is None:
            raise ConfigError(f"Cannot parse the risk rule {expression!r}. {_RULE_HELP}")
        column, op_text, threshold = m["column"], m["op"], float(m["value"])
        op = _OPS[op_text]

        def predicate(inputs: Mapping[str, Any]) -> bool:
            value: Any = inputs.get(column)
            if not _is_real(value):
                return False
            return op(float(value), threshold)

        name = f"{column} {op_text} {m['value']}"
        return cls(name, predicate)


@dataclass(frozen=True)
class Verdict:
    """The policy's judgement of one request: abstain or not, why, the OOD score, audit."""

    abstain: bool
    reasons: tuple[str, ...]
    ood_score: float | None
    audit: bool

    @property
    def review(self) -> bool:
        """True when the case goes to the human review queue (abstained or audited)."""
        return self.abstain or self.audit

    def to_dict(self) -> dict[str, Any]:
        return {
            "abstain": self.abstain,
            "reasons": list(self.reasons),
            "ood_score": self.ood_score,
            "audit": self.audit,
        }


@dataclass(frozen=True)
class _NumericRef:
    """What a numeric column's tail probability needs, as plain lists for ``bisect``."""

    name: str
    kind: str
    lo: float
    hi: float
    n: int
    knots: list[float]
    le_lo: list[int]
    le_hi: list[int]
    lt_lo: list[int]
    lt_hi: list[int]
    missing_rate: float

    @classmethod
    def of(cls, col: NumericColumnProfile) -> _NumericRef:
        s = col.summary
        return cls(
            name=col.name,
            kind=col.kind,
            lo=float(col.min),
            hi=float(col.max),
            n=int(s.n),
            knots=s.values.tolist(),
            le_lo=s.le_lo.tolist(),
            le_hi=s.le_hi.tolist(),
            lt_lo=s.lt_lo.tolist(),
            lt_hi=s.lt_hi.tolist(),
            missing_rate=col.null_rate,
        )

    def _rank(self, x: float, strict: bool) -> float:
        # Mirrors QuantileSummary.rank_bounds for one value, then takes the mid-point.
        m = len(self.knots)
        i = bisect.bisect_right(self.knots, x) - 1
        if i >= 0 and self.knots[i] == x:
            lo, hi = (self.lt_lo[i], self.lt_hi[i]) if strict else (self.le_lo[i], self.le_hi[i])
        else:
            lo = self.le_lo[i] if i >= 0 else 0
            hi = self.lt_hi[i + 1] if i + 1 < m else self.n
        return (lo + hi) / 2.0

    def tail(self, x: float) -> float:
        """``2 * min(P(X <= x), P(X >= x))`` capped at 1; 0 outside ``[min, max]``."""
        if self.n == 0 or not (self.lo <= x <= self.hi):
            return 0.0
        below = self._rank(x, strict=False) / self.n
        above = 1.0 - self._rank(x, strict=True) / self.n
        return min(1.0, 2.0 * min(below, above))


@dataclass(frozen=True)
class _CategoricalRef:
    name: str
    seen: frozenset[str]
    unseen_score: float  # 0 if every training category is named, else the "other" share
    missing_rate: float

    @classmethod
    def of(cls, col: CategoricalColumnProfile) -> _CategoricalRef:
        other = col.other_count / col.n if col.n else 0.0
        return cls(col.name, frozenset(col.labels), other, col.null_rate)


class AbstentionPolicy:
    """Decide per request whether to abstain (fail-safe answer + human review) and audit.

    ``ood_features`` restricts the OOD check to some of the profile's columns (leave out
    the label and ids); by default every profiled column is a feature. ``ood_threshold``
    defaults to ``0.001 / n_features``. ``audit_rate`` of requests are audited: a
    deterministic draw from a hash of ``seed`` and the request id, so the same id always
    gets the same draw and the long-run rate is ``audit_rate``.

    >>> policy = AbstentionPolicy(min_confidence=0.7, audit_rate=0.5, seed=1)
    >>> policy.judge({}, 0.69).reasons
    ('confidence 0.69 < 0.7',)
    >>> policy.judge({}, 0.7).abstain
    False
    >>> [policy.audited(f"req-{i}") for i in range(6)] == [
    ...     policy.audited(f"req-{i}") for i in range(6)]
    True
    """

    def __init__(
        self,
        min_confidence: float | None = None,
        ood_profile: DatasetProfile | None = None,
        ood_threshold: float | None = None,
        risk_rules: Sequence[RiskRule | str] = (),
        audit_rate: float = 0.0,
        seed: int = 0,
        *,
        ood_features: Sequence[str] | None = None,
    ) -> None:
        validate_params(
            "AbstentionPolicy",
            {
                "min_confidence": min_confidence,
                "ood_threshold": ood_threshold,
                "audit_rate": audit_rate,
                "seed": seed,
            },
            {
                "min_confidence": Interval(float, 0.0, 1.0, allow_none=True),
                "ood_threshold": Interval(float, 0.0, 1.0, closed="right", allow_none=True),
                "audit_rate": Interval(float, 0.0, 1.0),
                "seed": Interval(int),
            },
        )
        if ood_profile is not None and not isinstance(ood_profile, DatasetProfile):
            raise ConfigError(
                "The 'ood_profile' parameter of AbstentionPolicy must be a DatasetProfile or "
                f"None. Got {type(ood_profile).__name__}. Build one with hindsight.data.profile()."
            )
        if ood_features is not None and ood_profile is None:
            raise ConfigError("ood_features needs an ood_profile to score them against.")
        self.min_confidence = min_confidence
        self.ood_profile = ood_profile
        self.risk_rules = tuple(
            r if isinstance(r, RiskRule) else RiskRule.parse(r) for r in risk_rules
        )
        self.audit_rate = float(audit_rate)
        self.seed = int(seed)
        self._refs: list[_NumericRef | _CategoricalRef] = []
        if ood_profile is not None:
            names = list(ood_profile.columns) if ood_features is None else list(ood_features)
            if not names:
                raise ConfigError(
                    "The OOD check needs at least one feature; ood_features is empty."
                )
            for name in names:
                col = ood_profile[name]  # DataError naming the columns if absent
                self._refs.append(
                    _NumericRef.of(col)
                    if isinstance(col, NumericColumnProfile)
                    else _CategoricalRef.of(col)
                )
        self.ood_features = tuple(r.name for r in self._refs)
        self.ood_threshold = (
            float(ood_threshold)
            if ood_threshold is not None
            else (0.001 / len(self._refs) if self._refs else None)
        )
        self._rng = random.Random(self.seed)
        self._rng_lock = threading.Lock()

    # -- the parts ------------------------------------------------------------------
    def ood_scores(self, inputs: Mapping[str, Any]) -> dict[str, tuple[float, str]]:
        """Each feature's tail probability and, where it is low, a description of why."""
        scores: dict[str, tuple[float, str]] = {}
        for ref in self._refs:
            value = inputs.get(ref.name)
            if _is_missing(value):
                scores[ref.name] = (
                    ref.missing_rate,
                    f"feature {ref.name!r} is missing"
                    + (
                        " and was never missing in training"
                        if ref.missing_rate == 0.0
                        else f" ({ref.missing_rate:.3g} of training rows were)"
                    ),
                )
            elif isinstance(ref, _NumericRef):
                x = _as_number(value, ref.kind)
                if x is None:
                    scores[ref.name] = (0.0, f"{ref.name}={value!r} is not a number")
                elif not (ref.lo <= x <= ref.hi):
                    scores[ref.name] = (
                        0.0,
                        f"{ref.name}={value!r} outside the training range [{ref.lo:.6g}, {ref.hi:.6g}]",
                    )
                else:
                    p = ref.tail(x)
                    scores[ref.name] = (p, f"{ref.name}={value!r} in the tail (p={p:.3g})")
            else:
                label = _as_label(value)
                if label in ref.seen:
                    scores[ref.name] = (1.0, "")
                else:
                    scores[ref.name] = (
                        ref.unseen_score,
                        f"{ref.name}={value!r} not seen in training",
                    )
        return scores

    def ood_score(self, inputs: Mapping[str, Any]) -> float | None:
        """The smallest per-feature tail probability (None when there is no profile)."""
        scores = self.ood_scores(inputs)
        return min(p for p, _ in scores.values()) if scores else None

    def audited(self, request_id: str | None = None) -> bool:
        """Whether this request is in the audit sample (seeded; deterministic per id).

        Without an id the draw comes from the policy's seeded generator instead, so a
        sequence of calls is reproducible but a single request is not.
        """
        if self.audit_rate <= 0.0:
            return False
        if self.audit_rate >= 1.0:
            return True
        if request_id is None:
            with self._rng_lock:
                return self._rng.random() < self.audit_rate
        key = f"{self.seed}\x00{request_id}".encode()
        digest = hashlib.blake2b(key, digest_size=8, person=b"hs-audit").digest()
        return int.from_bytes(digest, "little") < self.audit_rate * 2.0**64

    def matched_rules(self, inputs: Mapping[str, Any]) -> list[str]:
        """Reasons for the risk rules that match; a rule that raises counts as matched."""
        out: list[str] = []
        for rule in self.risk_rules:
            try:
                if rule(inputs):
                    out.append(f"risk rule matched: {rule.name}")
            except Exception as exc:  # a broken rule fails safe: a human looks
                out.append(f"risk rule failed: {rule.name} ({type(exc).__name__}: {exc})")
        return out

    # -- the verdict ----------------------------------------------------------------
    def judge(
        self,
        inputs: Mapping[str, Any],
        answer_confidence: float | None,
        *,
        request_id: str | None = None,
    ) -> Verdict:
        """Judge one request given the confidence of the answer the chain produced."""
        reasons: list[str] = []
        if (
            self.min_confidence is not None
            and answer_confidence is not None
            and float(answer_confidence) < self.min_confidence
        ):
            reasons.append(f"confidence {answer_confidence:.6g} < {self.min_confidence:.6g}")
        ood: float | None = None
        if self._refs:
            scores = self.ood_scores(inputs)
            ood = min(p for p, _ in scores.values())
            threshold = self.ood_threshold if self.ood_threshold is not None else 0.0
            low = sorted(
                ((p, why) for p, why in scores.values() if p < threshold),
                key=lambda pw: pw[0],
            )
            reasons.extend(f"out of distribution: {why}" for _, why in low)
        reasons.extend(self.matched_rules(inputs))
        return Verdict(
            abstain=bool(reasons),
            reasons=tuple(reasons),
            ood_score=ood,
            audit=self.audited(request_id),
        )

    def describe(self) -> dict[str, Any]:
        """The policy's settings, for the ledger and the status endpoint."""
        return {
            "min_confidence": self.min_confidence,
            "ood_profile": self.ood_profile.digest if self.ood_profile is not None else None,
            "ood_features": list(self.ood_features),
            "ood_threshold": self.ood_threshold,
            "risk_rules": [r.name for r in self.risk_rules],
            "audit_rate": self.audit_rate,
            "seed": self.seed,
        }


def _is_real(value: Any) -> bool:
    return (
        isinstance(value, numbers.Real)
        and not isinstance(value, bool)
        and math.isfinite(float(value))
    )


def _is_missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def _as_number(value: Any, kind: str) -> float | None:
    """A float for a numeric feature (datetimes as epoch seconds), or None if it is not one."""
    if _is_real(value):
        return float(value)
    if kind == "datetime":
        if isinstance(value, str):
            try:
                value = datetime.fromisoformat(value)
            except ValueError:
                return None
        if isinstance(value, datetime):
            # Arrow timestamps without a zone are UTC, so naive datetimes are read as UTC.
            aware = value if value.tzinfo is not None else value.replace(tzinfo=UTC)
            return aware.timestamp()
        if isinstance(value, date):
            return datetime(value.year, value.month, value.day, tzinfo=UTC).timestamp()
    return None


def _as_label(value: Any) -> str:
    """The profile's spelling of a category (Arrow casts booleans to 'true'/'false')."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)
