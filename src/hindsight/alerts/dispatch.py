"""Fan an alert out to several channels, optionally suppressing repeats."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Sequence

from hindsight.alerts.alert import Alert
from hindsight.alerts.channel import AlertChannel, Delivery, describe_error
from hindsight.errors import ConfigError

__all__ = ["Dispatcher", "send"]

logger = logging.getLogger("hindsight.alerts")


def _send_one(channel: AlertChannel, alert: Alert) -> Delivery:
    name = str(getattr(channel, "name", type(channel).__name__))
    start = time.monotonic()
    try:
        delivery = channel.send(alert)
    # Broad on purpose: our channels never raise, but a user's own channel might,
    # and one broken channel must not stop the others or reach the caller.
    except Exception as exc:
        error = describe_error(exc)
        logger.warning("alert channel %r raised instead of returning a Delivery: %s", name, error)
        return Delivery(name, False, 1, error, time.monotonic() - start)
    if not isinstance(delivery, Delivery):
        error = f"send() returned {type(delivery).__name__}, not a Delivery"
        logger.warning("alert channel %r broke its contract: %s", name, error)
        return Delivery(name, False, 1, error, time.monotonic() - start)
    return delivery


def send(alert: Alert, channels: Iterable[AlertChannel]) -> list[Delivery]:
    """Send ``alert`` to every channel, in order; one failing channel stops none.

    >>> from hindsight.alerts import MemoryChannel
    >>> a, b = MemoryChannel(name="a"), MemoryChannel(name="b", fail=True)
    >>> [(d.channel, d.ok) for d in send(Alert("disk full", created_at=0.0), [a, b])]
    [('a', True), ('b', False)]
    """
    return [_send_one(channel, alert) for channel in channels]


class Dispatcher:
    """Send alerts to a fixed set of channels, at most once per ``dedup_key`` per window.

    Alerts without a ``dedup_key`` are always sent. A key counts as sent only when at
    least one channel delivered it, so an alert nobody received is tried again.

    >>> from hindsight.alerts import MemoryChannel
    >>> ch = MemoryChannel()
    >>> d = Dispatcher([ch], dedup_window_s=300)
    >>> [len(d.send(Alert("drift", dedup_key="drift:price", created_at=0.0))) for _ in range(2)]
    [1, 0]
    """

    def __init__(
        self,
        channels: Sequence[AlertChannel],
        dedup_window_s: float = 300.0,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if (
            isinstance(dedup_window_s, bool)
            or not isinstance(dedup_window_s, int | float)
            or dedup_window_s < 0
        ):
            raise ConfigError(
                "The 'dedup_window_s' parameter of Dispatcher must be a number of seconds "
                f">= 0 (0 turns deduplication off). Got {dedup_window_s!r}."
            )
        self.channels: tuple[AlertChannel, ...] = tuple(channels)
        self.dedup_window_s = float(dedup_window_s)
        self.clock = clock
        self.suppressed = 0
        self._last_sent: dict[str, float] = {}
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        names = [getattr(c, "name", type(c).__name__) for c in self.channels]
        return f"Dispatcher(channels={names!r}, dedup_window_s={self.dedup_window_s})"

    def is_suppressed(self, alert: Alert) -> bool:
        """Whether ``alert`` would be dropped as a repeat right now."""
        if alert.dedup_key is None or self.dedup_window_s <= 0:
            return False
        with self._lock:
            last = self._last_sent.get(alert.dedup_key)
        return last is not None and self.clock() - last < self.dedup_window_s

    def send(self, alert: Alert) -> list[Delivery]:
        """Send ``alert`` to every channel; ``[]`` when it repeats a recent dedup_key."""
        if self.is_suppressed(alert):
            with self._lock:
                self.suppressed += 1
            return []
        deliveries = send(alert, self.channels)
        if alert.dedup_key is not None and any(d.ok for d in deliveries):
            now = self.clock()
            with self._lock:
                self._last_sent[alert.dedup_key] = now
                self._forget_expired(now)
        return deliveries

    def reset(self) -> None:
        """Forget every dedup key."""
        with self._lock:
            self._last_sent.clear()

    def _forget_expired(self, now: float) -> None:
        # Keeps memory bounded by the keys seen within one window.
        expired = [k for k, t in self._last_sent.items() if now - t >= self.dedup_window_s]
        for key in expired:
            del self._last_sent[key]
