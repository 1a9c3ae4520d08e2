"""The alert value: what happened, how bad it is, and the facts a person needs to act."""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from hindsight.errors import ConfigError

__all__ = ["SEVERITIES", "Alert"]

#: Allowed severities, least to most urgent.
SEVERITIES: tuple[str, ...] = ("info", "warning", "critical")


def _frozen_str_mapping(name: str, value: Mapping[str, Any] | None) -> Mapping[str, str]:
    if value is None:
        return MappingProxyType({})
    if not isinstance(value, Mapping):
        raise ConfigError(
            f"The '{name}' parameter of Alert must be a mapping of str to str. "
            f"Got {type(value).__name__}."
        )
    return MappingProxyType({str(k): str(v) for k, v in value.items()})


@dataclass(frozen=True)
class Alert:
    """One alert raised by training, a monitor or the serving layer; a frozen value.

    ``fields`` are key facts shown as a table; ``links`` map a label to a URL;
    alerts that share a ``dedup_key`` can be suppressed within a window by
    :class:`~hindsight.alerts.Dispatcher`.

    >>> a = Alert("Drift on price", "PSI 0.31 > 0.2", severity="critical",
    ...           source="monitor", fields={"column": "price"}, created_at=0.0)
    >>> a.to_dict()["fields"]
    {'column': 'price'}
    """

    title: str
    text: str = ""
    severity: str = "warning"
    source: str = "hindsight"
    fields: Mapping[str, str] = field(default_factory=dict)
    links: Mapping[str, str] = field(default_factory=dict)
    dedup_key: str | None = None
    created_at: float = field(default_factory=time.time)

    def __post_init__(self) -> None:
        if not isinstance(self.title, str) or not self.title.strip():
            raise ConfigError(
                f"The 'title' parameter of Alert must be a non-empty str. Got {self.title!r}."
            )
        if not isinstance(self.text, str):
            raise ConfigError(
                f"The 'text' parameter of Alert must be a str. Got {type(self.text).__name__}."
            )
        if self.severity not in SEVERITIES:
            raise ConfigError(
                f"The 'severity' parameter of Alert must be one of {', '.join(SEVERITIES)}. "
                f"Got {self.severity!r}."
            )
        if not isinstance(self.source, str) or not self.source:
            raise ConfigError(
                "The 'source' parameter of Alert must be a non-empty str such as "
                f"'training', 'monitor' or 'serving'. Got {self.source!r}."
            )
        if self.dedup_key is not None and not isinstance(self.dedup_key, str):
            raise ConfigError(
                "The 'dedup_key' parameter of Alert must be a str or None. "
                f"Got {type(self.dedup_key).__name__}."
            )
        # Copies behind read-only views, so a frozen alert cannot change under a sender.
        object.__setattr__(self, "fields", _frozen_str_mapping("fields", self.fields))
        object.__setattr__(self, "links", _frozen_str_mapping("links", self.links))
        object.__setattr__(self, "created_at", float(self.created_at))

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict of the alert (what the webhook channel posts)."""
        return {
            "title": self.title,
            "text": self.text,
            "severity": self.severity,
            "source": self.source,
            "fields": dict(self.fields),
            "links": dict(self.links),
            "dedup_key": self.dedup_key,
            "created_at": self.created_at,
        }
