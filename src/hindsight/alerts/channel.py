"""The AlertChannel seam, the Delivery it returns, and the shared retry loop.

Every channel sends through :func:`deliver`, so all of them retry the same way,
report the same :class:`Delivery`, and never raise into the code that raised the
alert: a broken Slack hook must not crash a training run.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any, Protocol, runtime_checkable

from hindsight.alerts.alert import Alert
from hindsight.errors import ConfigError

__all__ = ["AlertChannel", "Delivery", "RetryPolicy", "deliver"]

logger = logging.getLogger("hindsight.alerts")


@dataclass(frozen=True)
class Delivery:
    """The outcome of sending one alert to one channel."""

    channel: str
    ok: bool
    attempts: int
    error: str | None = None
    elapsed_s: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict of the delivery."""
        return asdict(self)


@runtime_checkable
class AlertChannel(Protocol):
    """Somewhere alerts go. ``send`` retries as configured and never raises."""

    name: str

    def send(self, alert: Alert) -> Delivery:
        """Deliver ``alert``; report success or the last error in a Delivery."""
        ...


@dataclass(frozen=True)
class RetryPolicy:
    """How a channel retries: attempts in all, exponential backoff, per-attempt timeout.

    >>> [RetryPolicy(attempts=4).delay(n) for n in (1, 2, 3)]
    [0.5, 1.0, 2.0]
    """

    attempts: int = 3
    backoff_s: float = 0.5
    factor: float = 2.0
    max_backoff_s: float = 10.0
    timeout_s: float = 5.0

    def __post_init__(self) -> None:
        if (
            isinstance(self.attempts, bool)
            or not isinstance(self.attempts, int)
            or self.attempts < 1
        ):
            raise ConfigError(
                f"The 'attempts' parameter of RetryPolicy must be an int >= 1. Got {self.attempts!r}."
            )
        for name in ("backoff_s", "max_backoff_s"):
            value = getattr(self, name)
            if not isinstance(value, int | float) or value < 0:
                raise ConfigError(
                    f"The '{name}' parameter of RetryPolicy must be a number >= 0. Got {value!r}."
                )
        if not isinstance(self.factor, int | float) or self.factor < 1:
            raise ConfigError(
                f"The 'factor' parameter of RetryPolicy must be a number >= 1. Got {self.factor!r}."
            )
        if not isinstance(self.timeout_s, int | float) or self.timeout_s <= 0:
            raise ConfigError(
                f"The 'timeout_s' parameter of RetryPolicy must be a number > 0. "
                f"Got {self.timeout_s!r}."
            )

    def delay(self, failed_attempts: int) -> float:
        """Seconds to wait after the ``failed_attempts``-th failed attempt."""
        raw = self.backoff_s * self.factor ** max(failed_attempts - 1, 0)
        return float(min(raw, self.max_backoff_s))

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict of the policy, so it can be stored and diffed."""
        return asdict(self)


def _always(_exc: Exception) -> bool:
    return True


def describe_error(exc: BaseException) -> str:
    """A one-line description of an error, for a Delivery and the log."""
    lines = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {lines[0]}" if lines else type(exc).__name__


def deliver(
    channel: str,
    attempt: Callable[[float], object],
    policy: RetryPolicy,
    *,
    retryable: Callable[[Exception], bool] = _always,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> Delivery:
    """Run ``attempt(timeout_s)`` until it returns, retrying with backoff; never raise.

    ``attempt`` signals failure by raising. ``retryable(exc)`` decides whether a
    failure is worth another try (a 4xx answer is not). The last error becomes a
    failed :class:`Delivery` and a warning on the ``hindsight.alerts`` logger.
    """
    start = clock()
    attempts = 0
    error: str | None = None
    while True:
        attempts += 1
        try:
            attempt(policy.timeout_s)
        # Broad on purpose: alerts are raised from inside failing training runs and
        # serving paths; whatever a transport, server or payload throws must become a
        # failed Delivery, never a second failure in the caller. KeyboardInterrupt and
        # SystemExit are not Exceptions and still propagate.
        except Exception as exc:
            error = describe_error(exc)
            if attempts >= policy.attempts or not _should_retry(retryable, exc):
                break
            sleep(policy.delay(attempts))
        else:
            return Delivery(channel, True, attempts, None, clock() - start)
    logger.warning("alert channel %r failed after %d attempt(s): %s", channel, attempts, error)
    return Delivery(channel, False, attempts, error, clock() - start)


def _should_retry(retryable: Callable[[Exception], bool], exc: Exception) -> bool:
    try:
        return bool(retryable(exc))
    except Exception:  # a broken predicate must not break the never-raise promise
        return False
