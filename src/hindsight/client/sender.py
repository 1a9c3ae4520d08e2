"""Sending the spool to the team server: batches, retries with backoff, one sender at a time.

A :class:`ServerClient` writes each operation to the :class:`~hindsight.client.spool.Spool`
and wakes a background thread that posts the oldest waiting operations to
``POST /api/v1/ingest`` in batches. A failed send (no answer, a 5xx, a 429, a bad
token) is retried with exponential backoff and jitter, and the operations stay in the
spool meanwhile; the caller never waits on the network, except in :meth:`flush`.
Processes that share a spool take turns with an exclusive ``flock`` on
``spool.db.lock``, so operations reach the server once each and in the order they were
recorded.
"""

from __future__ import annotations

import atexit
import fcntl
import json
import logging
import os
import random
import threading
import time
import uuid
import warnings
import weakref
from pathlib import Path
from typing import Any

import httpx

from hindsight.client.protocol import MAX_BATCH_BYTES, MAX_BATCH_OPS
from hindsight.client.spool import Spool
from hindsight.errors import HindsightWarning, ServerError

__all__ = ["ServerClient", "ServerUnreachable", "new_op_id"]

_log = logging.getLogger("hindsight.client")

_BACKOFF_FIRST_S = 0.5
_BACKOFF_MAX_S = 30.0
_IDLE_POLL_S = 5.0  # how often an idle sender looks for operations other processes left


class ServerUnreachable(ServerError):
    """No answer from the team server (down, or the address is wrong)."""


def new_op_id() -> str:
    """A fresh operation id."""
    return uuid.uuid4().hex


class ServerClient:
    """Logs operations through the team server; nothing is lost while it is away."""

    def __init__(
        self,
        url: str,
        token: str | None,
        spool_path: str | Path,
        *,
        timeout_s: float = 10.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.url = url.rstrip("/")
        self.spool = Spool(spool_path)
        self.timeout_s = timeout_s
        self._token = token
        self._transport = transport
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._state = threading.Condition()
        self._last_seq = 0  # the newest operation this client spooled
        self._thread: threading.Thread | None = None
        self._pid = os.getpid()
        self._backoff = 0.0
        self._down_since: float | None = None
        self._warned: set[str] = set()
        self._max_ops = MAX_BATCH_OPS
        self._http = self._new_http()
        self.sent = 0  # operations the server took, for tests and `hindsight sync`
        self.closed = False
        _CLIENTS.add(self)

    def __repr__(self) -> str:
        return f"ServerClient({self.url!r}, spool={str(self.spool.path)!r})"

    def _new_http(self) -> httpx.Client:
        headers = {"User-Agent": "hindsight-client"}
        if self._token:
            headers["Authorization"] = f"Bearer {self._token}"
        return httpx.Client(
            base_url=self.url,
            headers=headers,
            timeout=httpx.Timeout(30.0, connect=5.0),
            transport=self._transport,
        )

    # -- the caller's side -----------------------------------------------------------------

    def submit(self, op: dict[str, Any], *, replace_older: bool = False) -> None:
        """Spool one operation (``op`` and its fields; ``op_id`` is added) and wake the sender."""
        self._check_fork()
        op = {"op_id": new_op_id(), **op}
        seq = self.spool.put(op, replace_older=replace_older)
        with self._state:
            self._last_seq = max(self._last_seq, seq)
        self._ensure_thread()
        self._wake.set()

    def flush(self, timeout_s: float | None = None) -> bool:
        """Wait until every operation this client spooled has reached the server.

        Returns False when ``timeout_s`` (default: the client's) passed first; the
        operations then stay spooled and are sent later.
        """
        deadline = time.monotonic() + (self.timeout_s if timeout_s is None else timeout_s)
        with self._state:
            target = self._last_seq
        if target == 0:
            return True
        self.wake()  # someone is waiting: try now, not after the backoff
        while True:
            if self.spool.waiting_through(target) == 0:
                return True
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            with self._state:
                self._state.wait(min(left, 0.05))

    def wake(self) -> None:
        """Start sending now what waits in the spool (other processes' records too)."""
        self._backoff = 0.0
        self._ensure_thread()
        self._wake.set()

    def wait_for_send(self, timeout_s: float) -> None:
        """Block until the sender finished a batch or a try (or ``timeout_s`` passed)."""
        with self._state:
            self._state.wait(timeout_s)

    def get(self, path: str, params: dict[str, Any] | None = None) -> Any:
        """A read from the server's API (JSON), for the few reads a run needs."""
        try:
            res = self._http.get(path, params=params, timeout=min(self.timeout_s, 10.0) or 1.0)
        except httpx.HTTPError as exc:
            raise ServerUnreachable(f"No answer from {self.url}: {exc}.") from exc
        if res.status_code in (401, 403):
            raise ServerError(_auth_advice(self.url, res))
        if res.status_code >= 400:
            raise ServerError(f"{self.url}{path} answered {res.status_code}: {_detail(res)}")
        return res.json()

    def close(self, timeout_s: float | None = None) -> bool:
        """Deliver what is left (up to the timeout), stop the sender; True if nothing waits."""
        if self.closed:
            return self.spool.pending() == 0
        ok = self.flush(timeout_s)
        self.closed = True
        self._stop.set()
        self._wake.set()
        if self._thread is not None and self._thread.is_alive():
            self._thread.join(timeout=5)
        self._http.close()
        return ok

    # -- the sender --------------------------------------------------------------------

    def _check_fork(self) -> None:
        if self._pid != os.getpid():
            # A forked child (a DataLoader worker that logs): the parent's thread, HTTP
            # connections and SQLite handle did not follow; the child makes its own.
            self._pid = os.getpid()
            self._thread = None
            self._state = threading.Condition()
            self._last_seq = 0
            self.spool = Spool(self.spool.path)
            self._http = self._new_http()

    def _ensure_thread(self) -> None:
        if self.closed:
            raise ServerError(f"{self!r} is closed; make a new client.")
        self._check_fork()
        if self._thread is None or not self._thread.is_alive():
            self._stop.clear()
            self._thread = threading.Thread(
                target=self._run, name="hindsight-sender", daemon=True
            )
            self._thread.start()

    def _run(self) -> None:
        lock_path = str(self.spool.path) + ".lock"
        while not self._stop.is_set():
            self._wake.wait(self._backoff or _IDLE_POLL_S)
            self._wake.clear()
            try:
                with open(lock_path, "a+") as lock:
                    try:
                        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    except BlockingIOError:
                        # Another process is sending (ours included); look again soon.
                        self._backoff = 0.2
                        continue
                    try:
                        self._drain()
                    finally:
                        fcntl.flock(lock, fcntl.LOCK_UN)
            except Exception as exc:  # the sender must outlive anything; say what happened
                _log.exception("hindsight's sender failed; retrying")
                self._fail(f"{type(exc).__name__}: {exc}")
            with self._state:
                self._state.notify_all()

    def _drain(self) -> None:
        """Send batches until the spool is empty or a send fails."""
        while True:
            batch = self.spool.take(self._max_ops, MAX_BATCH_BYTES)
            if not batch:
                return
            if not self._send(batch):
                return
            with self._state:
                self._state.notify_all()
            if self._stop.is_set():
                return

    def _send(self, batch: list[tuple[int, str]]) -> bool:
        body = '{"ops":[' + ",".join(b for _, b in batch) + "]}"
        try:
            res = self._http.post(
                "/api/v1/ingest",
                content=body.encode("utf-8"),
                headers={"Content-Type": "application/json"},
            )
        except httpx.HTTPError as exc:
            self._fail(f"no answer ({type(exc).__name__}: {exc})")
            return False
        if res.status_code == 200:
            self._applied(batch, res.json())
            return True
        if res.status_code in (401, 403):
            self._fail(_auth_advice(self.url, res), key="auth")
            return False
        if res.status_code == 413 and len(batch) > 1:
            self._max_ops = max(1, len(batch) // 2)
            return True
        if res.status_code == 422:
            if len(batch) > 1:
                self._max_ops = 1  # find the operation the server cannot read
                return True
            self.spool.reject([(batch[0][0], f"422: {_detail(res)}")])
            self._warn_rejected(batch[0][1], _detail(res))
            return True
        self._fail(f"{res.status_code}: {_detail(res)}")
        return False

    def _applied(self, batch: list[tuple[int, str]], answer: dict[str, Any]) -> None:
        results = answer.get("results") or []
        if len(results) != len(batch):
            self._fail(f"the server answered {len(results)} results for {len(batch)} records")
            return
        rejected = [
            (seq, str(r.get("error") or "rejected"))
            for (seq, _), r in zip(batch, results, strict=True)
            if r.get("status") == "rejected"
        ]
        self.spool.reject(rejected)
        for (_, body), r in zip(batch, results, strict=True):
            if r.get("status") == "rejected":
                self._warn_rejected(body, str(r.get("error")))
        self.spool.done(seq for seq, _ in batch)
        self.sent += len(batch)
        self._max_ops = MAX_BATCH_OPS
        self._backoff = 0.0
        if self._down_since is not None:
            _log.info(
                "hindsight server %s answers again after %.0f s; spooled records sent",
                self.url,
                time.monotonic() - self._down_since,
            )
            self._down_since = None
            self._warned.discard("down")
            self._warned.discard("auth")

    def _fail(self, reason: str, *, key: str = "down") -> None:
        self._backoff = min(_BACKOFF_MAX_S, max(_BACKOFF_FIRST_S, self._backoff * 2))
        self._backoff *= random.uniform(0.8, 1.2)
        if self._down_since is None:
            self._down_since = time.monotonic()
        if key not in self._warned:
            self._warned.add(key)
            warnings.warn(
                f"hindsight cannot log to the server {self.url}: {reason}. Records are kept "
                f"in {self.spool.path} and sent when it answers; nothing is lost.",
                HindsightWarning,
                stacklevel=2,
            )
        _log.debug("send to %s failed (%s); next try in %.1f s", self.url, reason, self._backoff)

    def _warn_rejected(self, body: str, error: str) -> None:
        try:
            op = json.loads(body).get("op", "?")
        except ValueError:
            op = "?"
        warnings.warn(
            f"The server {self.url} refused a record ({op}): {error}. It is kept in "
            f"{self.spool.path}; `hindsight sync` lists it and `hindsight sync --retry` "
            "sends it again.",
            HindsightWarning,
            stacklevel=2,
        )


def _detail(res: httpx.Response) -> str:
    try:
        body = res.json()
    except ValueError:
        return res.text[:300]
    detail = body.get("detail", body) if isinstance(body, dict) else body
    return json.dumps(detail)[:500] if not isinstance(detail, str) else detail[:500]


def _auth_advice(url: str, res: httpx.Response) -> str:
    if res.status_code == 401:
        return (
            f"{url} refused the API token ({_detail(res)}). Set HINDSIGHT_SERVER_TOKEN to a "
            "token from `hindsight users token NAME` on the server"
        )
    return (
        f"{url} says the token's user may not write ({_detail(res)}); logging needs an "
        "editor's token"
    )


_CLIENTS: weakref.WeakSet[ServerClient] = weakref.WeakSet()


@atexit.register
def _deliver_at_exit() -> None:
    for client in list(_CLIENTS):
        if client.closed or client._last_seq == 0 or client._pid != os.getpid():
            continue
        if not client.close():
            left = client.spool.pending()
            warnings.warn(
                f"{left} hindsight record(s) could not reach {client.url} before exit; they "
                f"stay in {client.spool.path}. The next run that logs through the server, or "
                "`hindsight sync`, sends them.",
                HindsightWarning,
                stacklevel=1,
            )
