"""A/B test: sticky assignment by a key, the lift of a rate metric, and an SRM check.

Each request's ``key`` (a user, session or account id) is hashed with the test's id
into [0, 1) and mapped to an arm by the arms' weights, so a user sees one arm for the
whole test, and a new test reshuffles users. The rate metric is the share of an arm's
predictions whose outcome counts as an event: a ``reward > 0`` (a click, a purchase) by
default, or a truthy label with ``event="label"``. Each treatment arm's relative lift
over the control comes with a confidence interval, and a sample-ratio-mismatch check
(chi-square of the distinct keys per arm against the weights, at the usual p < 0.001)
says when assignment itself is broken and the lift cannot be trusted.
"""

from __future__ import annotations

import bisect
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

from hindsight.errors import ConfigError
from hindsight.serving.backend import ModelBackend
from hindsight.serving.fallback import FallbackChain, Tier
from hindsight.serving.rollout import stats
from hindsight.serving.rollout.base import Rollout, unit_hash

__all__ = ["ABTest"]


class ABTest(Rollout):
    """Split traffic between the service's model (the ``control`` arm) and candidates.

    ``arms`` maps each treatment arm's name to its backend; ``weights`` maps every arm
    (control included) to its share (default: equal). Requests without a ``key`` are
    assigned by their request id, which is not sticky.
    ``salt`` is what keys are hashed with (default: this rollout's id, so every rollout
    reshuffles users); a fixed salt gives the same assignment every time.
    """

    kind = "ab"

    def __init__(
        self,
        arms: Mapping[str, ModelBackend | Tier],
        *,
        control: str = "control",
        weights: Mapping[str, float] | None = None,
        event: str = "reward",
        confidence: float = 0.95,
        srm_alpha: float = 0.001,
        tick_s: float | None = None,
        clock: Callable[[], float] = time.time,
        record: bool = True,
        salt: str | None = None,
    ) -> None:
        if not arms:
            raise ConfigError("An ABTest needs at least one treatment arm: {'B': backend}.")
        if control in arms:
            raise ConfigError(
                f"The control arm {control!r} is the service's own model; do not list it in arms."
            )
        first = next(iter(arms.values()))
        super().__init__(first, tick_s=tick_s, clock=clock, record=record, salt=salt)
        self.control = control
        self.treatments = {name: t if isinstance(t, Tier) else Tier(t) for name, t in arms.items()}
        names = [control, *self.treatments]
        for name in names:
            if not isinstance(name, str) or not name or name in ("baseline", "canary", "shadow"):
                raise ConfigError(
                    f"A/B arm names must be non-empty and not baseline, canary or shadow; got {name!r}."
                )
        if weights is None:
            weights = dict.fromkeys(names, 1.0)
        if set(weights) != set(names) or any(not (w > 0) for w in weights.values()):
            raise ConfigError(
                f"A/B weights must give every arm ({', '.join(names)}) a positive weight; "
                f"got {dict(weights)}."
            )
        if event not in ("reward", "label"):
            raise ConfigError(f"event must be 'reward' or 'label'; got {event!r}.")
        total = float(sum(weights.values()))
        self.names = names
        self.weights = {n: float(weights[n]) / total for n in names}
        edges, acc = [], 0.0
        for n in names:
            acc += self.weights[n]
            edges.append(acc)
        edges[-1] = 1.0
        self._edges = edges
        self.event = event
        self.confidence = float(confidence)
        self.srm_alpha = float(srm_alpha)
        self._counts_lock = threading.Lock()
        self.assigned = dict.fromkeys(names, 0)
        self.events = dict.fromkeys(names, 0)
        # Distinct keys per arm (by their hash): the sample-ratio check counts units,
        # not requests, since one user's requests are not independent draws.
        self._units: dict[str, set[float]] = {n: set() for n in names}
        self._chains: dict[str, FallbackChain] = {}

    @property
    def candidate_version(self) -> str:
        return ",".join(t.backend.version for t in self.treatments.values())

    def _setup(self, service: Any) -> None:
        self._chains = {n: self.chain_for(t, service) for n, t in self.treatments.items()}

    @property
    def share(self) -> float:
        return 1.0 - self.weights[self.control] if self.active else 0.0

    def arm_of(self, key: str) -> str:
        """The arm a key is assigned to (the same every time within this test)."""
        return self.names[bisect.bisect_right(self._edges, unit_hash(key, self.salt))]

    def route(self, key: str, baseline: FallbackChain) -> tuple[str, FallbackChain]:
        u = unit_hash(key, self.salt)
        arm = self.names[bisect.bisect_right(self._edges, u)]
        with self._counts_lock:
            self.assigned[arm] += 1
            self._units[arm].add(u)
        return arm, self._chains.get(arm, baseline)

    def observe_outcome(self, prediction_id: str, label: Any, reward: Any) -> None:
        seen = self.recall(prediction_id)
        if seen is None:
            return
        arm = seen[0]
        hit = (reward is not None and float(reward) > 0) if self.event == "reward" else bool(label)
        if hit and arm in self.events:
            with self._counts_lock:
                self.events[arm] += 1

    def results(self) -> dict[str, Any]:
        """Per-arm rates, each treatment's lift over control, and the SRM check."""
        with self._counts_lock:
            assigned, events = dict(self.assigned), dict(self.events)
            units = {n: len(u) for n, u in self._units.items()}
        arms = {
            n: {
                "assigned": assigned[n],
                "units": units[n],
                "events": events[n],
                "rate": events[n] / assigned[n] if assigned[n] else None,
                "weight": self.weights[n],
            }
            for n in self.names
        }
        lifts = {}
        c_n, c_e = assigned[self.control], events[self.control]
        for n in self.treatments:
            if c_n and assigned[n] and c_e:
                lifts[n] = stats.rate_lift(
                    c_e, c_n, events[n], assigned[n], confidence=self.confidence
                ).to_dict()
        srm = None
        if sum(units.values()) >= len(self.names):
            srm = stats.sample_ratio_mismatch(
                [units[n] for n in self.names],
                [self.weights[n] for n in self.names],
                alpha=self.srm_alpha,
            ).to_dict()
        return {"arms": arms, "lift": lifts, "srm": srm, "event": self.event}

    def status(self) -> dict[str, Any]:
        return {**super().status(), "control": self.control, **self.results()}

    def config(self) -> dict[str, Any]:
        return {
            "arms": {n: t.backend.describe() for n, t in self.treatments.items()},
            "control": self.control,
            "weights": self.weights,
            "event": self.event,
            "confidence": self.confidence,
        }

    def stop(self, reason: str = "stopped by an operator") -> None:
        with self._lock:
            if not self.active:
                return
            self.analyses.append({"decision": "report", **self.results()})
            self._finish("stopped", reason)
