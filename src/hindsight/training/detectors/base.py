"""The training-symptom seam: a detector looks at the guard's running state each step."""

from __future__ import annotations

import abc
from collections.abc import Mapping
from typing import Any, ClassVar

import numpy as np

from hindsight._validation import Interval, Options, validate_params
from hindsight.training.state import TrainingState
from hindsight.training.symptom import Severity, Symptom

__all__ = ["Detector"]


class Detector(abc.ABC):
    """Base of every training-symptom detector.

    A subclass declares its ``kind`` (the symptom id it reports), its default
    ``severity`` and its parameter constraints, stores its parameters through
    :meth:`_set_params` (validated once, then frozen) and implements :meth:`check`.
    Learned state, if any, lives in attributes ending in ``_`` and is cleared by
    :meth:`reset`.
    """

    kind: ClassVar[str]
    #: The state signals (see ``TrainingState.updated``) whose update calls for a check.
    signals: ClassVar[frozenset[str]] = frozenset()
    default_severity: ClassVar[Severity] = "warn"
    severity: Severity
    _param_names: tuple[str, ...] = ()
    _constraints: ClassVar[Mapping[str, Interval | Options]] = {}
    _frozen: bool = False

    def _set_params(self, **params: Any) -> None:
        params.setdefault("severity", self.default_severity)
        constraints = {**self._constraints, "severity": Options(("stop", "warn"))}
        validate_params(type(self).__name__, params, constraints)
        for name, value in params.items():
            object.__setattr__(self, name, value)
        object.__setattr__(self, "_param_names", tuple(params))
        object.__setattr__(self, "_frozen", True)
        self.reset()

    def __setattr__(self, name: str, value: Any) -> None:
        if self._frozen and not name.endswith("_"):
            raise AttributeError(
                f"{type(self).__name__} parameters are frozen; create a new detector instead "
                f"of setting {name!r}."
            )
        object.__setattr__(self, name, value)

    @property
    def params(self) -> dict[str, Any]:
        """The detector's parameters, for the ledger to store and diff."""
        return {name: getattr(self, name) for name in self._param_names}

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.params.items())
        return f"{type(self).__name__}({args})"

    def reset(self) -> None:  # noqa: B027 - most detectors keep no state of their own
        """Forget learned state before a new run."""

    @abc.abstractmethod
    def check(self, state: TrainingState) -> Symptom | None:
        """Look at the running state after an update; return a symptom or ``None``."""

    def _layers_over(
        self,
        state: TrainingState,
        name: str,
        shares: Any,
        threshold: float,
        likely_cause: str,
        recommendations: tuple[str, ...],
    ) -> Symptom | None:
        """The symptom of a per-layer share (dead, saturated) above ``threshold``, or None.

        ``shares`` is the window of that share, ``(n, n_layers)``; only the latest row
        is judged.
        """
        last = shares[-1]
        bad = last > threshold
        if not bad.any():
            return None
        return self._symptom(
            state,
            {
                "layers": np.flatnonzero(bad).tolist(),
                f"{name}_share": last.copy(),
                f"max_{name}_share": float(last.max()),
                "threshold": threshold,
            },
            likely_cause,
            recommendations,
        )

    def _symptom(
        self,
        state: TrainingState,
        evidence: Mapping[str, Any],
        likely_cause: str,
        recommendations: tuple[str, ...],
        kind: str | None = None,
        step: int | None = None,
    ) -> Symptom:
        if step is None:
            step = state.step if state.step is not None else 0
        return Symptom(
            kind=kind or self.kind,
            severity=self.severity,
            step=int(step),
            evidence=dict(evidence),
            likely_cause=likely_cause,
            recommendations=recommendations,
        )
