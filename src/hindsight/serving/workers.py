"""A tier's worker threads: the cheapest hand-off from the event loop that can time out.

``concurrent.futures.ThreadPoolExecutor`` plus ``run_in_executor`` plus
``asyncio.wait_for`` costs about 150 µs of CPU per call on a small VM, most of it
bookkeeping (two futures chained across threads, a condition variable, a task for the
timeout). Serving a 150 µs model that way doubles its cost. Here a call is one
``SimpleQueue.put`` (C, one futex wake), one ``call_soon_threadsafe`` back to the loop,
and one timer handle for the deadline: about half the cost.

Threads are started on demand up to ``max_workers`` and are daemons: a hung model keeps
its thread, not the interpreter, alive. A call whose deadline passed is abandoned: its
late result is dropped.
"""

from __future__ import annotations

import asyncio
import queue
import threading
from collections.abc import Callable
from time import thread_time
from typing import Any

__all__ = ["Workers", "call"]

#: ``done(result, error, seconds)``: the call's outcome and the CPU time it took on the
#: worker (a model that sleeps or waits on I/O shows little: see ``Tier.inline_below_ms``).
Done = Callable[[Any, BaseException | None, float], None]


class Workers:
    """Up to ``max_workers`` daemon threads running ``fn(arg)`` calls in order."""

    def __init__(self, name: str, max_workers: int = 32) -> None:
        if max_workers < 1:
            raise ValueError("max_workers must be at least 1")
        self.name = name
        self.max_workers = int(max_workers)
        self._queue: queue.SimpleQueue[tuple[Callable[[Any], Any], Any, Done] | None] = (
            queue.SimpleQueue()
        )
        self._idle = threading.Semaphore(0)
        self._lock = threading.Lock()
        self._threads = 0
        self._closed = False

    @property
    def threads(self) -> int:
        """Threads started and not stopped (idle, busy or hung)."""
        return self._threads

    def submit(self, fn: Callable[[Any], Any], arg: Any, done: Done) -> None:
        """Run ``fn(arg)`` on a worker; ``done(result, error, seconds)`` runs on that worker."""
        if self._closed:
            raise RuntimeError(f"the workers of tier {self.name!r} are stopped")
        # An idle thread takes the call; otherwise start one, up to the limit (then the
        # call waits its turn, and its deadline cuts it off if the wait is too long).
        if not self._idle.acquire(blocking=False):
            with self._lock:
                if self._threads < self.max_workers:
                    self._threads += 1
                    threading.Thread(
                        target=self._run,
                        name=f"hindsight-tier-{self.name}-{self._threads}",
                        daemon=True,
                    ).start()
        self._queue.put((fn, arg, done))

    def _run(self) -> None:
        get = self._queue.get
        while True:
            item = get()
            if item is None:
                with self._lock:
                    self._threads -= 1
                return
            fn, arg, done = item
            start = thread_time()  # CPU time: waiting for the GIL is not the model's
            try:
                result = fn(arg)
            except BaseException as exc:  # handed to the caller, never lost
                done(None, exc, thread_time() - start)
            else:
                done(result, None, thread_time() - start)
            del item, fn, arg, done
            self._idle.release()

    def close(self) -> None:
        """Stop idle threads; busy or hung ones stop when their call returns."""
        with self._lock:
            self._closed = True
            n = self._threads
        for _ in range(n):
            self._queue.put(None)


def _settle(fut: asyncio.Future[Any], result: Any, error: BaseException | None) -> None:
    if fut.done():  # timed out already: the late answer is dropped
        return
    if error is not None:
        fut.set_exception(error)
    else:
        fut.set_result(result)


def _expire(fut: asyncio.Future[Any]) -> None:
    if not fut.done():
        fut.set_exception(TimeoutError())


async def call(
    workers: Workers,
    fn: Callable[[Any], Any],
    arg: Any,
    timeout_s: float,
    ran: Callable[[float], None] | None = None,
) -> Any:
    """``fn(arg)`` on ``workers``, raising :class:`TimeoutError` after ``timeout_s``.

    ``ran(seconds)`` is told each call's own run time (without the hand-off), on the
    worker, even when the caller stopped waiting.
    """
    loop = asyncio.get_running_loop()
    fut: asyncio.Future[Any] = loop.create_future()

    def done(result: Any, error: BaseException | None, seconds: float) -> None:
        if ran is not None:
            ran(seconds)
        try:
            loop.call_soon_threadsafe(_settle, fut, result, error)
        except RuntimeError:  # the loop closed meanwhile: nobody waits for this answer
            pass

    timer = loop.call_later(max(timeout_s, 0.0), _expire, fut)
    try:
        workers.submit(fn, arg, done)
        return await fut
    finally:
        timer.cancel()
