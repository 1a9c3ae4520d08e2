"""The Ledger: the store, the settings and the failure index, with reading helpers.

Reading the ledger first reaps runs that died without a word: a running
experiment whose heartbeat is older than ``stale_after_s`` (or whose process on
this host is gone) is marked crashed and its failure recorded.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Sequence
from typing import Any

from hindsight.config import Settings
from hindsight.errors import AmbiguousId, NotFound
from hindsight.ledger.environment import hostname
from hindsight.ledger.failures import record_failure
from hindsight.ledger.ids import kind_of
from hindsight.ledger.records import ExperimentRecord, FailureRecord, Lesson, PostMortem
from hindsight.ledger.similarity import FailureIndex
from hindsight.ledger.writer import RecordWriter, StoreWriter
from hindsight.store import Store, open_store

__all__ = ["Ledger", "get_ledger", "set_ledger"]

_default: Ledger | None = None
_default_lock = threading.Lock()


def get_ledger() -> Ledger:
    """The process-wide ledger, configured from the environment / hindsight.toml."""
    global _default
    with _default_lock:
        if _default is None:
            _default = Ledger(Settings.load())
        return _default


def set_ledger(ledger: Ledger | None) -> Ledger | None:
    """Replace the process-wide ledger (None resets it); returns the previous one."""
    global _default
    with _default_lock:
        previous, _default = _default, ledger
        return previous


class Ledger:
    """Every experiment, failure, lesson and post-mortem of a store."""

    def __init__(self, settings: Settings | None = None, *, store: Store | None = None) -> None:
        self.settings = settings or Settings.load()
        self._store = store
        self._index: FailureIndex | None = None
        self._writer: RecordWriter | None = None
        self._lock = threading.Lock()
        #: Since when clients could reach this ledger through the team server (set by the
        #: server). Runs that log through a server cannot send heartbeats while it is
        #: down, so none counts as silent until it has listened for ``stale_after_s``.
        self.listening_since: float | None = None

    @classmethod
    def at(cls, store_url: str, **settings: Any) -> Ledger:
        """A ledger on an explicit store URL."""
        return cls(Settings.load(store=store_url, **settings))

    @property
    def store(self) -> Store:
        """The store, opened (and migrated) on first use."""
        with self._lock:
            if self._store is None:
                self._store = open_store(self.settings.store_url)
            return self._store

    @property
    def index(self) -> FailureIndex:
        """The similar-failure index, built on first use."""
        store = self.store
        with self._lock:
            if self._index is None:
                self._index = FailureIndex(store)
            return self._index

    @property
    def writer(self) -> RecordWriter:
        """Where running experiments write: the store, or the team server when
        ``server_url`` (``HINDSIGHT_SERVER_URL``) is set."""
        with self._lock:
            if self._writer is None:
                if self.settings.server_url:
                    from hindsight.ledger.remote import ServerWriter, client_for

                    self._writer = ServerWriter(client_for(self.settings))
                else:
                    self._writer = StoreWriter(self)
            return self._writer

    def close(self) -> None:
        """Release the store's connections."""
        if self._store is not None:
            self._store.close()

    # -- ids -------------------------------------------------------------------------

    def resolve(self, record_id: str, kind: str | None = None) -> tuple[str, str]:
        """(kind, full id) for an id or a unique prefix of one."""
        kind = kind or kind_of(record_id)
        kinds = [kind] if kind else ["experiment", "failure", "lesson", "postmortem"]
        hits = [(k, i) for k in kinds for i in self.store.find(k, record_id)]
        exact = [h for h in hits if h[1] == record_id]
        if exact:
            return exact[0]
        if len(hits) == 1:
            return hits[0]
        if not hits:
            raise NotFound(
                f"No record with id {record_id!r}. Ids look like exp_…, fail_…, les_…, pm_…; "
                "list them with `hindsight ls`."
            )
        raise AmbiguousId(
            f"{record_id!r} matches several records ({', '.join(h[1] for h in hits)}). "
            "Type more of the id."
        )

    # -- experiments -----------------------------------------------------------------

    def experiment_record(self, experiment_id: str) -> ExperimentRecord:
        """One experiment (after reaping dead runs)."""
        self.reap_stale()
        _, full = self.resolve(experiment_id, "experiment")
        return ExperimentRecord.from_row(self.store.get("experiment", full))

    def experiments(
        self,
        *,
        project: str | None = None,
        since: float | None = None,
        failed: bool = False,
        status: Sequence[str] | None = None,
        outcome: Sequence[str] | None = None,
        limit: int | None = None,
        newest_first: bool = True,
    ) -> list[ExperimentRecord]:
        """Experiments, filtered (after reaping dead runs)."""
        self.reap_stale()
        rows = self.store.list_experiments(
            project=project,
            since=since,
            failed=failed,
            statuses=status,
            outcomes=outcome,
            limit=limit,
            newest_first=newest_first,
        )
        return [ExperimentRecord.from_row(r) for r in rows]

    def failure_record(self, failure_id: str) -> FailureRecord:
        """One failure."""
        _, full = self.resolve(failure_id, "failure")
        return FailureRecord.from_row(self.store.get("failure", full))

    def failures(
        self, *, project: str | None = None, since: float | None = None, limit: int | None = None
    ) -> list[FailureRecord]:
        """Failures, newest first."""
        self.reap_stale()
        rows = self.store.list_failures(project=project, since=since, limit=limit)
        return [FailureRecord.from_row(r) for r in rows]

    def lessons_for(self, target_ids: Sequence[str]) -> list[Lesson]:
        """Lessons whose source is one of the targets (experiments, failures, post-mortems)."""
        if not target_ids:
            return []
        links = self.store.lesson_links(target_ids=list(target_ids))
        lesson_ids = sorted({x["lesson_id"] for x in links if x["relation"] == "source"})
        return self.lessons_by_id(lesson_ids)

    def lessons_by_id(self, lesson_ids: Sequence[str]) -> list[Lesson]:
        """Lessons by id, with all their links."""
        if not lesson_ids:
            return []
        rows = self.store.list_lessons(ids=list(lesson_ids))
        links = self.store.lesson_links(lesson_ids=list(lesson_ids))
        return [Lesson.from_row(r, links) for r in rows]

    def postmortem(self, postmortem_id: str) -> PostMortem:
        """One post-mortem."""
        _, full = self.resolve(postmortem_id, "postmortem")
        return PostMortem.from_row(self.store.get("postmortem", full))

    # -- dead runs -------------------------------------------------------------------

    def reap_stale(self, now: float | None = None) -> list[str]:
        """Mark runs that stopped sending heartbeats as crashed; returns their ids."""
        now = time.time() if now is None else now
        store = self.store
        cutoff = now - self.settings.stale_after_s
        listening = self.listening_since is None or self.listening_since <= cutoff
        candidates = {r["id"]: r for r in store.stale_running(cutoff)} if listening else {}
        host = hostname()
        # On this host the process table decides: a run whose process is gone died now,
        # not two minutes from now, and one whose process lives is alive even if its
        # heartbeat lags (a starved heartbeat thread, a suspended laptop).
        for row in store.list_experiments(statuses=["running"]):
            if row["host"] == host and row["pid"]:
                if _pid_alive(int(row["pid"])):
                    candidates.pop(row["id"], None)
                else:
                    candidates.setdefault(row["id"], row)
        reaped = []
        for row in candidates.values():
            if self._reap(row, now):
                reaped.append(row["id"])
        return reaped

    def _reap(self, row: dict[str, Any], now: float) -> bool:
        last = float(row.get("heartbeat_at") or row["started_at"])
        text = (
            f"Process {row.get('pid')} on {row.get('host')} stopped without a word: no "
            f"heartbeat since {time.strftime('%Y-%m-%d %H:%M:%S', time.gmtime(last))} UTC. "
            "Killed (SIGKILL), most often by the kernel's OOM killer for running out of "
            "memory, or the machine was lost."
        )
        claimed = self.store.mark_crashed(
            row["id"],
            {
                "status": "crashed",
                "outcome": "failure",
                "outcome_source": "crash",
                "outcome_reason": "the process died without reporting (stale heartbeat)",
                "ended_at": last,
                "duration_s": max(0.0, last - float(row["started_at"])),
            },
        )
        if not claimed:
            return False
        # The compare-and-set above makes this reader the only one to record the failure;
        # the failure and the experiment's link to it land in one transaction.
        record_failure(
            self,
            text,
            source="experiment",
            experiment_id=row["id"],
            project=row["project"],
            config=row.get("config") or {},
            extra={"last_metrics": row.get("summary") or {}, "reaped_at": now},
            exit_code=137,
            similar=0,
            experiment_update={},
        )
        return True


def _pid_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
