"""A channel that writes alerts to Python logging, at a level chosen by severity."""

from __future__ import annotations

import logging

from hindsight.alerts.alert import Alert
from hindsight.alerts.channel import Delivery, RetryPolicy, deliver

__all__ = ["LEVELS", "LogChannel"]

#: Logging level for each severity.
LEVELS = {"info": logging.INFO, "warning": logging.WARNING, "critical": logging.CRITICAL}

# Logging is local; a second try would only duplicate a record.
_ONCE = RetryPolicy(attempts=1)


class LogChannel:
    """Log each alert on ``logger`` (a Logger or a logger name).

    The record carries the alert as ``extra={"alert": alert.to_dict()}`` for
    structured handlers.

    >>> LogChannel().name
    'log'
    """

    def __init__(
        self, logger: logging.Logger | str = "hindsight.alerts", *, name: str = "log"
    ) -> None:
        self.logger = logging.getLogger(logger) if isinstance(logger, str) else logger
        self.name = name

    def __repr__(self) -> str:
        return f"LogChannel(name={self.name!r}, logger={self.logger.name!r})"

    def send(self, alert: Alert) -> Delivery:
        """Log the alert; never raises."""

        def attempt(_timeout_s: float) -> None:
            message = f"[{alert.severity}] {alert.source}: {alert.title}"
            if alert.text:
                message += f" — {alert.text}"
            if alert.fields:
                message += " (" + ", ".join(f"{k}={v}" for k, v in alert.fields.items()) + ")"
            self.logger.log(LEVELS[alert.severity], message, extra={"alert": alert.to_dict()})

        return deliver(self.name, attempt, _ONCE)
