"""The in-memory twin of a channel, for testing code that raises alerts."""

from __future__ import annotations

import threading

from hindsight.alerts.alert import Alert
from hindsight.alerts.channel import Delivery, RetryPolicy, deliver

__all__ = ["MemoryChannel"]


class MemoryChannel:
    """Record every alert sent to it; set ``fail`` to simulate a broken endpoint.

    >>> from hindsight.alerts import Alert
    >>> ch = MemoryChannel()
    >>> ch.send(Alert("loss is NaN", severity="critical", created_at=0.0)).ok
    True
    >>> [a.title for a in ch.alerts]
    ['loss is NaN']
    """

    def __init__(
        self, *, name: str = "memory", fail: bool = False, retry: RetryPolicy | None = None
    ) -> None:
        self.name = name
        self.fail = fail
        self.retry = retry if retry is not None else RetryPolicy(attempts=1)
        self.alerts: list[Alert] = []
        self.deliveries: list[Delivery] = []
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"MemoryChannel(name={self.name!r}, alerts={len(self.alerts)})"

    def send(self, alert: Alert) -> Delivery:
        """Record ``alert`` (or fail, when ``fail`` is set); never raises."""

        def attempt(_timeout_s: float) -> None:
            if self.fail:
                raise ConnectionError(f"MemoryChannel {self.name!r} is set to fail")
            with self._lock:
                self.alerts.append(alert)

        delivery = deliver(self.name, attempt, self.retry, sleep=lambda _s: None)
        with self._lock:
            self.deliveries.append(delivery)
        return delivery

    def clear(self) -> None:
        """Forget recorded alerts and deliveries."""
        with self._lock:
            self.alerts.clear()
            self.deliveries.clear()
