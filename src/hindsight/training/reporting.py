"""What the guard does with a symptom beyond returning it: the ledger and alerts.

A stop inside a running ledger experiment is recorded as that experiment's failure
(source ``"training"``): the symptom as evidence, the loss curves up to the stop, the
diagnosis and fingerprint, and the similar past failures with their lessons, printed
as for a crash. Stops and warnings go to the alert channels. Neither may break the
training run: a ledger that cannot be written is logged as an error, a channel that
fails is retried by the channel and then logged.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Mapping, Sequence
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, cast

from hindsight.errors import ConfigError, HindsightError
from hindsight.training.symptom import Symptom

if TYPE_CHECKING:
    from hindsight.alerts import AlertChannel, Delivery, Dispatcher
    from hindsight.ledger import Experiment
    from hindsight.ledger.records import FailureReport
    from hindsight.training.state import TrainingState

__all__ = ["SYMPTOM_CATEGORY", "GuardReporter", "symptom_evidence"]

logger = logging.getLogger("hindsight.training")

#: The failure-taxonomy category (``hindsight.diagnose``) of each symptom kind.
SYMPTOM_CATEGORY: Mapping[str, str] = MappingProxyType(
    {
        "nonfinite_loss": "dl.nan_divergence",
        "nonfinite_gradients": "dl.nan_divergence",
        "loss_explosion": "dl.nan_divergence",
        "no_learning": "train.no_learning",
        "plateau": "train.no_learning",
        "slow_convergence": "train.no_learning",
        "overfitting": "train.overfitting",
        "oscillation": "train.unstable",
        "loss_spike": "train.unstable",
        "lr_out_of_range": "train.unstable",
        "exploding_gradients": "train.gradient_flow",
        "vanishing_gradients": "train.gradient_flow",
        "dying_relu": "train.gradient_flow",
        "saturated_activations": "train.gradient_flow",
        "throughput_collapse": "train.resources",
        "memory_growth": "train.resources",
        "gpu_memory_near_limit": "train.resources",
        "time_budget": "train.resources",
    }
)

def symptom_evidence(symptom: Symptom, history: Sequence[Symptom] = ()) -> Any:
    """The :class:`~hindsight.diagnose.Evidence` of a stop: the symptom first, then the rest.

    >>> s = Symptom("overfitting", "stop", 40, {}, "Too little data.", ("Add dropout.",))
    >>> ev = symptom_evidence(s)
    >>> ev.exc_type, ev.message
    ('TrainingSymptom', 'overfitting (severity=stop) at step 40: Too little data.')
    """
    from hindsight.diagnose import Evidence

    others = [h for h in history if h is not symptom]
    tail = "\n".join([symptom.to_text(), *(h.to_text() for h in others)])
    message = f"{symptom.kind} (severity={symptom.severity}) at step {symptom.step}"
    if symptom.likely_cause:
        message += f": {symptom.likely_cause}"
    return Evidence("TrainingSymptom", message, log_tail=tail)


def _curves(state: TrainingState) -> dict[str, dict[str, list[Any]]]:
    """The guard's windows of loss, validation loss, learning rate and metrics."""
    out: dict[str, dict[str, list[Any]]] = {}
    for name, steps in (
        ("loss", state.loss_steps),
        ("val_loss", state.val_loss_steps),
        ("lr", None),
    ):
        values = getattr(state, name)
        if values.size:
            out[name] = {"values": values.tolist()}
            if steps is not None:
                out[name]["steps"] = steps.tolist()
    for name in state.metric_names:
        out[f"metrics.{name}"] = {"values": state.metric(name).tolist()}
    return out


class GuardReporter:
    """Sends a guard's symptoms to the ledger and to alert channels.

    Parameters
    ----------
    experiment
        ``"auto"`` (default) for the ledger experiment running around the training loop
        (:func:`hindsight.ledger.current_experiment`), an ``Experiment``, or ``None`` to
        record nothing.
    alerts
        ``"auto"`` (default) for the channels in the settings' ``alerts`` list (none if
        unset), a ``Dispatcher``, a sequence of channels, or ``None`` for no alerts.
    alert_on
        ``"stop"`` to alert on stops only, or ``"warn"`` (default) on stops and warnings.
    quiet
        Do not print the failure report (with similar past failures) to stderr.

    Examples
    --------
    >>> from hindsight.alerts import MemoryChannel
    >>> from hindsight.training import TrainingGuard
    >>> channel = MemoryChannel()
    >>> guard = TrainingGuard(experiment=None, alerts=[channel])
    >>> guard.update(0, loss=float("nan")).stop
    True
    >>> alert = channel.alerts[0]
    >>> alert.severity, alert.title
    ('critical', 'Training guard stopped: nonfinite_loss at step 0')
    """

    def __init__(
        self,
        experiment: Experiment | str | None = "auto",
        alerts: Dispatcher | Sequence[AlertChannel] | str | None = "auto",
        *,
        alert_on: str = "warn",
        quiet: bool = False,
    ) -> None:
        if isinstance(experiment, str) and experiment != "auto":
            raise ConfigError(
                f"The 'experiment' parameter must be 'auto', an Experiment or None. Got {experiment!r}."
            )
        if isinstance(alerts, str) and alerts != "auto":
            raise ConfigError(
                "The 'alerts' parameter must be 'auto', a Dispatcher, a list of alert channels "
                f"or None. Got {alerts!r}; build channels with hindsight.alerts.channel_from_url."
            )
        if alert_on not in ("stop", "warn"):
            raise ConfigError(f"The 'alert_on' parameter must be 'stop' or 'warn'. Got {alert_on!r}.")
        self._experiment = experiment
        self._dispatcher = self._build_dispatcher(alerts)
        self.alert_on = alert_on
        self.quiet = quiet
        self.failure: FailureReport | None = None
        self.deliveries: list[Delivery] = []

    def experiment(self) -> Experiment | None:
        """The experiment a stop is recorded in now, if any."""
        if self._experiment is None:
            return None
        if self._experiment != "auto":
            return self._experiment  # type: ignore[return-value]
        if "hindsight.ledger.experiment" not in sys.modules:
            return None  # no experiment can have started without the ledger imported
        from hindsight.ledger import current_experiment

        return current_experiment()

    @property
    def dispatcher(self) -> Dispatcher | None:
        """The alert dispatcher, or ``None`` when no channel is set."""
        return self._dispatcher

    @staticmethod
    def _build_dispatcher(spec: Dispatcher | Sequence[AlertChannel] | str | None) -> Dispatcher | None:
        # Built now, so a bad channel URL fails when the guard is made, not mid-training.
        if spec is None:
            return None
        if spec == "auto":
            from hindsight.config import Settings

            urls = Settings.load().alerts
            if not urls:
                return None
            from hindsight.alerts import Dispatcher, channel_from_url

            return Dispatcher([channel_from_url(u) for u in urls])
        from hindsight.alerts import Dispatcher

        if isinstance(spec, Dispatcher):
            return spec
        channels: list[AlertChannel] = list(cast("Sequence[AlertChannel]", spec))
        for ch in channels:
            if not callable(getattr(ch, "send", None)):
                raise ConfigError(
                    f"The 'alerts' parameter must hold alert channels (objects with send()). "
                    f"Got {ch!r}."
                )
        return Dispatcher(channels)

    def report(
        self,
        new: Sequence[Symptom],
        stop: Symptom | None,
        reason: str | None,
        state: TrainingState,
        history: Sequence[Symptom],
        guard_params: Mapping[str, Any],
    ) -> None:
        """Record ``stop`` in the ledger (if any) and alert on ``new`` symptoms."""
        exp = self.experiment()
        if stop is not None and exp is not None and self.failure is None:
            self._record(exp, stop, reason or stop.kind, state, history, guard_params)
        if self._dispatcher is None:
            return
        for symptom in new:
            if symptom is stop or self.alert_on == "warn":
                alert = self._alert(symptom, symptom is stop, exp)
                self.deliveries.extend(self._dispatcher.send(alert))

    def _record(
        self,
        exp: Experiment,
        stop: Symptom,
        reason: str,
        state: TrainingState,
        history: Sequence[Symptom],
        guard_params: Mapping[str, Any],
    ) -> None:
        try:
            self.failure = exp.record_failure(
                symptom_evidence(stop, history),
                source="training",
                reason=f"training guard stopped the run at step {stop.step}: {reason}",
                extra={
                    "symptom": stop.to_dict(),
                    "symptoms": [s.to_dict() for s in history],
                    "curves": _curves(state),
                    "guard": dict(guard_params),
                    "stopped_at_step": stop.step,
                },
            )
        except HindsightError as exc:
            # The run must stop whatever the ledger says; the failure is still logged.
            logger.error(
                "The training guard stopped experiment %s at step %d (%s) but could not record "
                "the failure: %s",
                exp.id,
                stop.step,
                stop.kind,
                exc,
            )
            return
        if not self.quiet and not exp.quiet:
            from hindsight.ledger.explain import failure_text

            print(failure_text(self.failure), file=sys.stderr)

    def _alert(self, symptom: Symptom, stopped: bool, exp: Experiment | None) -> Any:
        from hindsight.alerts import Alert

        where = f" in experiment {exp.name} ({exp.id})" if exp is not None else ""
        verb = "stopped" if stopped else "warned"
        fields = {
            "symptom": symptom.kind,
            "step": str(symptom.step),
            "category": SYMPTOM_CATEGORY.get(symptom.kind, "unknown"),
        }
        if exp is not None:
            fields["experiment"] = exp.id
        if stopped and self.failure is not None:
            fields["failure"] = self.failure.failure.id
            similar = self.failure.similar
            if similar:
                fields["similar"] = ", ".join(s.failure.id for s in similar[:3])
        lines = [symptom.likely_cause, *(f"- {r}" for r in symptom.recommendations)]
        if stopped and self.failure is not None:
            for s in self.failure.similar[:3]:
                lines.extend(f"Lesson from {s.failure.id}: {les.text}" for les in s.lessons)
        return Alert(
            title=f"Training guard {verb}: {symptom.kind} at step {symptom.step}{where}",
            text="\n".join(line for line in lines if line),
            severity="critical" if stopped else "warning",
            source="training",
            fields=fields,
            dedup_key=f"training:{exp.id if exp is not None else id(self)}:{symptom.kind}",
        )
