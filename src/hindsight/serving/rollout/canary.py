"""A canary that judges itself each interval and rolls itself back.

The candidate takes a share of traffic in steps (default 1, 5, 25, 50, 100 %). Each
``interval_s`` the requests of that interval are compared, canary against baseline
(both served at the same time, so load and time of day are shared):

* error rate (the candidate's own errors, timeouts and invalid answers) — critical;
* latency: Mann-Whitney U with an effect-size gate, as Kayenta's judge does — critical;
* prediction distribution (KS, or chi-square with Jensen-Shannon for classes);
* fallback and abstention rates;
* outcome metrics once labels arrive (everything labelled since the start) — critical:
  accuracy (the label equals the output) and the reward rate (the share of rewards
  above 0: a click, a purchase).

The verdict is ``pass`` (next step; passing the step before 100 %, or the last step,
promotes the candidate: at 100 % no baseline is left to compare with), ``marginal`` (hold
the step; ``max_marginal`` in a row fail) or ``fail`` (roll back). Between intervals an
always-valid sequential test (mixture SPRT, mixing scale ``sequential_tau``: the size
of difference it is tuned to catch fastest) watches the cumulative error rate and
accuracy at every tick, so a clearly worse canary is rolled back without waiting for
the interval to end, with the false-alarm rate held at ``alpha`` however often it looks.

A rollback sends all traffic back to the baseline, records the canary in the ledger as
a failed experiment with the evidence (every analysis and its inputs), and alerts.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from hindsight.errors import ConfigError
from hindsight.serving.backend import ModelBackend
from hindsight.serving.fallback import FallbackChain, Tier
from hindsight.serving.rollout import stats
from hindsight.serving.rollout.base import ArmWindow, Rollout, unit_hash

__all__ = ["Canary"]

DEFAULT_STEPS = (1.0, 5.0, 25.0, 50.0, 100.0)


class Canary(Rollout):
    """Progressive delivery of ``candidate`` with automatic analysis and rollback.

    ``min_requests`` canary requests are needed in an interval before it is judged
    (otherwise the interval is extended). ``latency_increase`` is the relative p50 shift
    tolerated, ``min_latency_ms`` the absolute one; ``error_increase`` the absolute
    error-rate increase tolerated. Set ``promote=False`` to stop at the last step
    without swapping the primary.
    ``salt`` is what keys are hashed with (default: this rollout's id, so every rollout
    reshuffles users); a fixed salt gives the same assignment every time.
    """

    kind = "canary"

    def __init__(
        self,
        candidate: ModelBackend | Tier,
        *,
        steps: Sequence[float] = DEFAULT_STEPS,
        interval_s: float = 60.0,
        min_requests: int = 50,
        max_marginal: int = 2,
        alpha: float = 0.05,
        sequential_alpha: float = 0.01,
        sequential_tau: float = 0.05,
        latency_increase: float = 0.10,
        min_latency_ms: float = 1.0,
        error_increase: float = 0.01,
        accuracy_drop: float = 0.01,
        min_labels: int = 100,
        promote: bool = True,
        tick_s: float | None = 1.0,
        clock: Callable[[], float] = time.time,
        record: bool = True,
        salt: str | None = None,
    ) -> None:
        super().__init__(candidate, tick_s=tick_s, clock=clock, record=record, salt=salt)
        steps = [float(s) for s in steps]
        if not steps or any(not (0 < s <= 100) for s in steps) or steps != sorted(set(steps)):
            raise ConfigError(
                f"Canary steps must be increasing percentages in (0, 100], e.g. "
                f"[1, 5, 25, 50, 100]; got {list(steps)}."
            )
        for name, value, ok in (
            ("interval_s", interval_s, interval_s > 0),
            ("min_requests", min_requests, isinstance(min_requests, int) and min_requests >= 1),
            ("max_marginal", max_marginal, isinstance(max_marginal, int) and max_marginal >= 0),
            ("alpha", alpha, 0 < alpha < 1),
            ("sequential_alpha", sequential_alpha, 0 < sequential_alpha < 1),
            ("sequential_tau", sequential_tau, sequential_tau > 0),
            ("latency_increase", latency_increase, latency_increase >= 0),
            ("min_latency_ms", min_latency_ms, min_latency_ms >= 0),
            ("error_increase", error_increase, error_increase >= 0),
            ("accuracy_drop", accuracy_drop, accuracy_drop >= 0),
            ("min_labels", min_labels, isinstance(min_labels, int) and min_labels >= 1),
        ):
            if not ok:
                raise ConfigError(f"Canary: {name}={value!r} is out of range.")
        self.steps = steps
        self.interval_s = float(interval_s)
        self.min_requests = int(min_requests)
        self.max_marginal = int(max_marginal)
        self.alpha = float(alpha)
        self.sequential_alpha = float(sequential_alpha)
        self.sequential_tau = float(sequential_tau)
        self.latency_increase = float(latency_increase)
        self.min_latency_ms = float(min_latency_ms)
        self.error_increase = float(error_increase)
        self.accuracy_drop = float(accuracy_drop)
        self.min_labels = int(min_labels)
        self.promote_at_end = bool(promote)
        self._step = 0
        self._marginal = 0
        self._interval_start = 0.0
        self._interval = 0
        # This interval's observations, and everything since the start (sequential test).
        self.window = {"baseline": ArmWindow(), "canary": ArmWindow()}
        self.total = {"baseline": ArmWindow(samples=False), "canary": ArmWindow(samples=False)}
        self._chain: FallbackChain | None = None

    # -- setup and routing ----------------------------------------------------------
    def _setup(self, service: Any) -> None:
        self._chain = self.chain_for(self.candidate, service)
        self._interval_start = self.clock()

    @property
    def step(self) -> int:
        return self._step

    @property
    def share(self) -> float:
        return self.steps[self._step] / 100.0 if self.active else 0.0

    def route(self, key: str, baseline: FallbackChain) -> tuple[str, FallbackChain]:
        assert self._chain is not None
        if unit_hash(key, self.salt) < self.share:
            return "canary", self._chain
        return "baseline", baseline

    def after(self, arm: str, inputs: Mapping[str, Any], response: Any) -> None:
        super().after(arm, inputs, response)
        if arm in self.window:
            self.window[arm].observe(response)
            self.total[arm].observe(response)

    def observe_outcome(self, prediction_id: str, label: Any, reward: Any) -> None:
        seen = self.recall(prediction_id)
        if seen is None:
            return
        arm, output = seen
        if arm not in self.total:
            return
        correct = None if label is None else bool(label == output)
        reward = None if reward is None else float(reward)
        self.window[arm].observe_outcome(correct, reward)
        self.total[arm].observe_outcome(correct, reward)

    # -- analysis -------------------------------------------------------------------
    def tick(self, now: float | None = None) -> None:
        with self._lock:
            if not self.active:
                return
            now = self.clock() if now is None else now
            early = self._sequential()
            if early is not None:
                self._rollback(early, now)
                return
            if now - self._interval_start >= self.interval_s:
                self._analyse(now)

    def _sequential(self) -> dict[str, Any] | None:
        """The always-valid tests on everything since the start; a rollback reason or None."""
        b, c = self.total["baseline"].arrays(), self.total["canary"].arrays()
        checks: list[tuple[str, int, int, int, int, bool]] = [
            ("error_rate", b["errors"], b["n"], c["errors"], c["n"], True),
        ]
        if b["labelled"] and c["labelled"]:
            checks.append(
                ("accuracy", b["correct"], b["labelled"], c["correct"], c["labelled"], False)
            )
        if b["rewarded"] and c["rewarded"]:
            checks.append(
                (
                    "reward_rate",
                    b["rewards_positive"],
                    b["rewarded"],
                    c["rewards_positive"],
                    c["rewarded"],
                    False,
                )
            )
        for name, be, bn, ce, cn, higher_is_worse in checks:
            if bn < self.min_requests or cn < self.min_requests:
                continue
            result = stats.msprt_rates(
                be, bn, ce, cn, alpha=self.sequential_alpha, tau=self.sequential_tau, name=name
            )
            worse = (ce / cn > be / bn) if higher_is_worse else (ce / cn < be / bn)
            if result.reject and worse:
                return {
                    "interval": self._interval,
                    "step": self._step,
                    "share": self.share,
                    "decision": "fail",
                    "early": True,
                    "reasons": [
                        f"always-valid test on {name}: canary {ce}/{cn} = {ce / cn:.4f} vs "
                        f"baseline {be}/{bn} = {be / bn:.4f}, p = {result.p_value:.3g} < "
                        f"{self.sequential_alpha:g}"
                    ],
                    "sequential": {name: result.to_dict()},
                    "judgements": [],
                }
        return None

    def judgements(self) -> list[stats.MetricJudgement]:
        """This interval's comparisons, canary against baseline."""
        b, c = self.window["baseline"].arrays(), self.window["canary"].arrays()
        out = [
            stats.compare_rates(
                b["errors"], b["n"], c["errors"], c["n"], alpha=self.alpha,
                min_effect=self.error_increase, name="error_rate", critical=True,
                min_samples=self.min_requests,
            ),
            stats.compare_latency(
                b["latency_ms"], c["latency_ms"], alpha=self.alpha,
                allowed_increase=self.latency_increase, min_effect_ms=self.min_latency_ms,
                critical=True, min_samples=min(20, self.min_requests),
            ),
            stats.compare_rates(
                b["fallbacks"], b["n"], c["fallbacks"], c["n"], alpha=self.alpha,
                min_effect=self.error_increase, name="fallback_rate",
                min_samples=self.min_requests,
            ),
            stats.compare_rates(
                b["abstentions"], b["n"], c["abstentions"], c["n"], alpha=self.alpha,
                min_effect=self.error_increase, name="abstention_rate",
                min_samples=self.min_requests,
            ),
        ]  # fmt: skip
        if len(b["outputs"]) >= self.min_requests and len(c["outputs"]) >= self.min_requests:
            out.append(stats.compare_distributions(b["outputs"], c["outputs"], alpha=self.alpha))
        tb, tc = self.total["baseline"].arrays(), self.total["canary"].arrays()
        if tb["labelled"] >= self.min_labels and tc["labelled"] >= self.min_labels:
            out.append(
                stats.compare_rates(
                    tb["correct"],
                    tb["labelled"],
                    tc["correct"],
                    tc["labelled"],
                    alpha=self.alpha,
                    min_effect=self.accuracy_drop,
                    higher_is_worse=False,
                    name="accuracy",
                    critical=True,
                    min_samples=self.min_labels,
                )
            )
        if tb["rewarded"] >= self.min_labels and tc["rewarded"] >= self.min_labels:
            out.append(
                stats.compare_rates(
                    tb["rewards_positive"],
                    tb["rewarded"],
                    tc["rewards_positive"],
                    tc["rewarded"],
                    alpha=self.alpha,
                    min_effect=self.accuracy_drop,
                    higher_is_worse=False,
                    name="reward_rate",
                    critical=True,
                    min_samples=self.min_labels,
                )
            )
        return out

    def _analyse(self, now: float) -> None:
        c, b = self.window["canary"].arrays(), self.window["baseline"].arrays()
        if c["n"] < self.min_requests or b["n"] < self.min_requests:
            return  # extend the interval until both arms have enough requests
        verdict = stats.verdict(self.judgements())
        record = {
            "interval": self._interval,
            "step": self._step,
            "share": self.share,
            "at": now,
            "decision": verdict.decision,
            "early": False,
            **verdict.to_dict(),
            "baseline_summary": self.window["baseline"].summary(),
            "canary_summary": self.window["canary"].summary(),
        }
        self._log_metrics(record)
        if verdict.decision == "fail":
            self._rollback(record, now)
            return
        self.analyses.append(record)
        if verdict.decision == "marginal":
            self._marginal += 1
            if self._marginal > self.max_marginal:
                record["reasons"] = [
                    *record.get("reasons", []),
                    f"marginal {self._marginal} intervals in a row (max {self.max_marginal})",
                ]
                self.analyses.pop()
                self._rollback(record, now)
                return
        else:
            self._marginal = 0
            # 100 % leaves no baseline to compare with: reaching it is the promotion.
            if self._step + 1 < len(self.steps) and self.steps[self._step + 1] < 100.0:
                self._step += 1
            else:
                self._promote(now)
                return
        self._next_interval(now)

    def _next_interval(self, now: float) -> None:
        self._interval += 1
        self._interval_start = now
        for w in self.window.values():
            w.reset()
        self._update()

    def _log_metrics(self, record: Mapping[str, Any]) -> None:
        exp = self.experiment
        if exp is None or not exp._active:
            return
        metrics: dict[str, float] = {"share": float(record["share"])}
        for arm in ("baseline", "canary"):
            for key, value in record[f"{arm}_summary"].items():
                if isinstance(value, int | float) and math.isfinite(float(value)):
                    metrics[f"{arm}_{key}"] = float(value)
        exp.log_metrics(metrics, step=int(record["interval"]))

    # -- outcomes of the rollout ----------------------------------------------------
    def _rollback(self, record: dict[str, Any], now: float) -> None:
        self.analyses.append(record)
        reasons = record.get("reasons") or ["the canary failed its analysis"]
        service = self._service()
        reason = f"canary {self.candidate_version} rolled back at {self.share:.0%}: " + "; ".join(
            reasons
        )
        evidence = (
            f"CanaryRollback: {reason}\n"
            f"service {service.name}, baseline {self.baseline_version}, candidate "
            f"{self.candidate_version}, interval {record['interval']}, step {record['step']}"
        )
        self._finish("rolled_back", reason, failed_evidence=evidence)
        self._alert(reason, record)

    def _promote(self, now: float) -> None:
        service = self._service()
        reason = (
            f"canary {self.candidate_version} passed {len(self.steps)} steps "
            f"({', '.join(f'{s:g}%' for s in self.steps)}); promoted"
        )
        if self.promote_at_end:
            service.promote(self.candidate)
        self._finish("promoted", reason)

    def _alert(self, reason: str, record: Mapping[str, Any]) -> None:
        service = self._service()
        if not service.alerts:
            return
        from hindsight.alerts import Alert, send

        fields = {
            "service": service.name,
            "baseline": self.baseline_version,
            "candidate": self.candidate_version,
            "share": f"{record['share']:.0%}",
            "interval": str(record["interval"]),
        }
        if self.failure_id:
            fields["failure"] = self.failure_id
        send(
            Alert(
                f"Canary {self.candidate_version} of {service.name} rolled back",
                reason,
                severity="critical",
                source="serving",
                fields=fields,
                dedup_key=f"canary:{service.name}:{self.candidate_version}",
            ),
            service.alerts,
        )

    # -- reporting ------------------------------------------------------------------
    def hypothesis(self) -> str:
        return (
            f"{self.candidate_version} serves {self._service().name} no worse than "
            f"{self.baseline_version} on error rate, latency, predictions, fallbacks, "
            "abstentions and accuracy"
        )

    def config(self) -> dict[str, Any]:
        return {
            **super().config(),
            "steps": self.steps,
            "interval_s": self.interval_s,
            "min_requests": self.min_requests,
            "max_marginal": self.max_marginal,
            "alpha": self.alpha,
            "sequential_alpha": self.sequential_alpha,
            "sequential_tau": self.sequential_tau,
            "latency_increase": self.latency_increase,
            "min_latency_ms": self.min_latency_ms,
            "error_increase": self.error_increase,
            "accuracy_drop": self.accuracy_drop,
            "min_labels": self.min_labels,
        }

    def status(self) -> dict[str, Any]:
        return {
            **super().status(),
            "step": self._step,
            "steps": self.steps,
            "share": self.share,
            "interval": self._interval,
            "interval_s": self.interval_s,
            "interval_started_at": self._interval_start,
            "marginal_in_a_row": self._marginal,
            "window": {arm: w.summary() for arm, w in self.window.items()},
            "total": {arm: w.summary() for arm, w in self.total.items()},
        }
