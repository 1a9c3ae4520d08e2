"""The seam for mirroring experiments to another tracker (MLflow today)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Protocol

import numpy as np

from hindsight.ledger.records import ExperimentRecord, FailureReport

__all__ = ["RunMirror"]


class RunMirror(Protocol):
    """Receives an experiment's life as it happens; errors become warnings, never crashes."""

    def on_start(self, record: ExperimentRecord) -> str | None:
        """The run started; returns the other tracker's run id, if any."""

    def on_metrics(self, series: Mapping[str, tuple[np.ndarray, np.ndarray, np.ndarray]]) -> None:
        """A batch of metric points: key -> (steps, values, UNIX times)."""

    def on_end(
        self, record: ExperimentRecord, failure: FailureReport | None, notes: Sequence[str]
    ) -> None:
        """The run ended (finished, crashed or killed), with its failure if it had one."""
