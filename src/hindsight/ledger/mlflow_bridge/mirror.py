"""Mirroring a running experiment to an MLflow run, through MlflowClient only."""

from __future__ import annotations

import contextlib
import queue
import sys
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import numpy as np

from hindsight.errors import MlflowBridgeError
from hindsight.ledger.jsonsafe import jsonable
from hindsight.ledger.mlflow_bridge.common import (
    _DRAIN_IDLE_S,
    _TO_MLFLOW,
    METRICS_PER_BATCH,
    PARAMS_PER_BATCH,
    _calling,
    _chunked,
    _end_tags,
    _experiment_id,
    _key,
    _mlflow,
    _ms,
    _params,
    _probe,
    _reachable,
    _redact,
    _start_tags,
    _traceback_text,
)
from hindsight.ledger.records import ExperimentRecord, FailureReport


class MlflowMirror:
    """Mirrors one experiment to an MLflow run (a :class:`~hindsight.ledger.mirror.RunMirror`).

    Metric points are sent by a background thread, so a slow or unreachable
    MLflow never holds up the training loop or the ledger's heartbeat.
    """

    def __init__(self, tracking_uri: str | None) -> None:
        self._api = _mlflow()
        self.client = self._api.MlflowClient(tracking_uri=tracking_uri)
        self.tracking_uri = str(tracking_uri or self.client.tracking_uri)
        self.run_id: str | None = None
        self._queue: queue.Queue[Mapping[str, tuple[np.ndarray, np.ndarray, np.ndarray]] | None]
        self._queue = queue.Queue()
        self._worker: threading.Thread | None = None
        self._moved_at = 0.0
        self._dropped = 0
        self._errors: list[str] = []

    def on_start(self, record: ExperimentRecord) -> str | None:
        """Create the MLflow run with the experiment's tags and config; returns its id."""
        _probe(self.tracking_uri)
        with _calling(self.tracking_uri, f"start a run for experiment {record.id}"):
            exp_id = _experiment_id(self.client, record.project)
            run = self.client.create_run(
                exp_id,
                start_time=_ms(record.started_at),
                tags=_start_tags(record),
                run_name=record.name,
            )
            run_id = str(run.info.run_id)
            params = [self._api.Param(k, v) for k, v in _params(record.config).items()]
            try:
                for chunk in _chunked(params, PARAMS_PER_BATCH):
                    self.client.log_batch(run_id, params=chunk)
            except Exception:  # leave no half-made run RUNNING forever
                with contextlib.suppress(Exception), contextlib.redirect_stdout(sys.stderr):
                    self.client.set_terminated(run_id, status="FAILED")
                raise
        self.run_id = run_id
        return run_id

    def on_metrics(self, series: Mapping[str, tuple[np.ndarray, np.ndarray, np.ndarray]]) -> None:
        """Queue a batch of metric points for the background sender."""
        if self.run_id is None or not series:
            return
        if self._worker is None:
            self._moved_at = time.monotonic()
            self._worker = threading.Thread(
                target=self._send_loop, name=f"hindsight-mlflow-{self.run_id}", daemon=True
            )
            self._worker.start()
        self._queue.put(series)

    def on_end(
        self, record: ExperimentRecord, failure: FailureReport | None, notes: Sequence[str]
    ) -> None:
        """Send what is queued, the outcome tags and failure artifacts; end the run."""
        if self.run_id is None:
            return
        self._drain()
        _probe(self.tracking_uri)
        run_id = self.run_id
        tags = _end_tags(record, failure, notes)
        with _calling(self.tracking_uri, f"end run {run_id} of experiment {record.id}"):
            rt = [self._api.RunTag(k, v) for k, v in tags.items()]
            for chunk in _chunked(rt, PARAMS_PER_BATCH):
                self.client.log_batch(run_id, tags=chunk)
            if failure is not None:
                self.client.log_text(
                    run_id, _traceback_text(failure.failure), "hindsight/traceback.txt"
                )
                self.client.log_dict(
                    run_id, jsonable(failure.to_dict(), "failure"), "hindsight/failure_analysis.json"
                )
            # MLflow prints a link to the run on stdout; keep stdout for our --json output.
            with contextlib.redirect_stdout(sys.stderr):
                self.client.set_terminated(
                    run_id,
                    status=_TO_MLFLOW.get(record.status, "FAILED"),
                    end_time=_ms(record.ended_at or time.time()),
                )
        if self._dropped or self._errors:
            raise MlflowBridgeError(
                f"Up to {self._dropped} metric point(s) of experiment {record.id} did not reach MLflow "
                f"at {_redact(self.tracking_uri)} ({'; '.join(self._errors[:3])}). "
                "The ledger has every point; check the MLflow server's logs."
            )

    # -- background sender -------------------------------------------------------------

    def _send_loop(self) -> None:
        while True:
            series = self._queue.get()
            if series is None:
                return
            points = sum(len(v[0]) for v in series.values())
            try:
                if self._errors and not _reachable(self.tracking_uri):
                    raise MlflowBridgeError("server unreachable")
                self._send(series)
            except Exception as exc:  # kept for on_end: the sender must not die
                self._dropped += points
                if len(self._errors) < 10:
                    self._errors.append(str(exc).splitlines()[0][:300] if str(exc) else repr(exc))
            finally:
                self._moved_at = time.monotonic()

    def _send(self, series: Mapping[str, tuple[np.ndarray, np.ndarray, np.ndarray]]) -> None:
        metric = self._api.Metric
        run_id = self.run_id

        def points() -> Iterator[Any]:
            for key, (steps, vals, times) in series.items():
                name = _key(key)
                stamps = np.round(np.asarray(times, dtype=np.float64) * 1000.0).astype(np.int64)
                for s, v, ts in zip(steps.tolist(), vals.tolist(), stamps.tolist(), strict=True):
                    yield metric(name, v, ts, s)

        for chunk in _chunked(points(), METRICS_PER_BATCH):
            self.client.log_batch(run_id, metrics=chunk)
            self._moved_at = time.monotonic()

    def _drain(self) -> None:
        worker = self._worker
        if worker is None:
            return
        self._queue.put(None)
        while worker.is_alive():
            worker.join(timeout=0.2)
            if time.monotonic() - self._moved_at > _DRAIN_IDLE_S:
                left = sum(
                    sum(len(v[0]) for v in item.values())
                    for item in list(self._queue.queue)
                    if item is not None
                )
                self._dropped += left
                self._errors.append(f"gave up after {_DRAIN_IDLE_S:.0f} s without progress")
                return


