"""Settings from the environment or ``hindsight.toml``.

Precedence, highest first: keyword overrides, environment variables, the
``[hindsight]`` table of ``hindsight.toml`` (in the working directory, or the
file named by ``HINDSIGHT_CONFIG``), then defaults.

============================  ===================  ======================================
environment variable          hindsight.toml key   default
============================  ===================  ======================================
HINDSIGHT_HOME                home                 ./.hindsight
HINDSIGHT_STORE               store                sqlite:///<home>/hindsight.db
HINDSIGHT_PROJECT             project              default
HINDSIGHT_HEARTBEAT           heartbeat_s          15 (seconds between heartbeats)
HINDSIGHT_STALE_AFTER         stale_after_s        120 (silent runs are marked crashed)
HINDSIGHT_MLFLOW_TRACKING_URI mlflow_tracking_uri  unset (no mirroring to MLflow)
HINDSIGHT_ALERTS              alerts               none (alert channel URLs; see below)
HINDSIGHT_SERVER_URL          server_url           unset (write to the store directly)
HINDSIGHT_SERVER_TOKEN        (environment only)   unset (an API token, ``hs_…``)
HINDSIGHT_SERVER_TIMEOUT      server_timeout_s     10 (seconds a run waits at its end to
                                                   deliver its records before leaving them
                                                   spooled)
============================  ===================  ======================================

With ``server_url`` set, experiments log through the team server instead of opening
the store: every record goes to a spool under ``home`` first and is sent in batches
by a background thread, so a server outage never stops a run and loses nothing
(``hindsight sync`` sends what is left). The token is read from the environment only,
so it never sits in a file that is committed with the code.

``alerts`` lists alert channel URLs (a TOML list, or space-separated in the environment
variable): ``log://``, ``slack+https://hooks.slack.com/services/...``,
``webhook+https://host/path``, ``smtp://user:pass@host:587?from=a@x&to=b@y``. The
training guard and the monitors send their alerts there.
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from hindsight.errors import ConfigError

__all__ = ["Settings"]

_ENV = {
    "home": "HINDSIGHT_HOME",
    "store": "HINDSIGHT_STORE",
    "project": "HINDSIGHT_PROJECT",
    "heartbeat_s": "HINDSIGHT_HEARTBEAT",
    "stale_after_s": "HINDSIGHT_STALE_AFTER",
    "mlflow_tracking_uri": "HINDSIGHT_MLFLOW_TRACKING_URI",
    "alerts": "HINDSIGHT_ALERTS",
    "server_url": "HINDSIGHT_SERVER_URL",
    "server_token": "HINDSIGHT_SERVER_TOKEN",
    "server_timeout_s": "HINDSIGHT_SERVER_TIMEOUT",
}
# Secrets are not read from hindsight.toml, which is often committed with the code.
_ENV_ONLY = frozenset({"server_token"})


@dataclass(frozen=True)
class Settings:
    """Where hindsight keeps its records and how it behaves; a frozen value."""

    home: Path = Path(".hindsight")
    store: str | None = None
    project: str = "default"
    heartbeat_s: float = 15.0
    stale_after_s: float = 120.0
    mlflow_tracking_uri: str | None = None
    alerts: tuple[str, ...] = ()
    server_url: str | None = None
    server_token: str | None = field(default=None, repr=False)
    server_timeout_s: float = 10.0

    def __post_init__(self) -> None:
        if self.heartbeat_s <= 0:
            raise ConfigError(
                f"heartbeat_s must be a positive number of seconds. Got {self.heartbeat_s}."
            )
        if self.stale_after_s <= self.heartbeat_s:
            raise ConfigError(
                f"stale_after_s ({self.stale_after_s}) must be larger than heartbeat_s "
                f"({self.heartbeat_s}), or live runs would be marked crashed. "
                "Raise HINDSIGHT_STALE_AFTER or lower HINDSIGHT_HEARTBEAT."
            )
        if not self.project:
            raise ConfigError("project must be a non-empty name. Set HINDSIGHT_PROJECT.")
        if self.server_url is not None and not self.server_url.startswith(
            ("http://", "https://")
        ):
            raise ConfigError(
                f"server_url must be the team server's http:// or https:// address, e.g. "
                f"http://hindsight.internal:8765. Got {self.server_url!r}; fix "
                "HINDSIGHT_SERVER_URL."
            )
        if self.server_timeout_s < 0:
            raise ConfigError(
                f"server_timeout_s must be zero or more seconds. Got {self.server_timeout_s}."
            )

    @property
    def spool_path(self) -> Path:
        """Where records wait for the team server (``server_url``), under ``home``."""
        return self.home / "spool.db"

    @property
    def store_url(self) -> str:
        """The SQLAlchemy URL of the store; SQLite under ``home`` unless set."""
        if self.store:
            return self.store
        return f"sqlite:///{self.home / 'hindsight.db'}"

    @classmethod
    def load(cls, **overrides: Any) -> Settings:
        """Read settings from hindsight.toml and the environment, then apply overrides."""
        values: dict[str, Any] = {}
        values.update(_read_toml())
        for name, var in _ENV.items():
            raw = os.environ.get(var)
            if raw not in (None, ""):
                values[name] = raw
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**_coerce(values))

    def with_(self, **changes: Any) -> Settings:
        """A copy with some fields changed."""
        return replace(self, **_coerce(changes))


def _read_toml() -> dict[str, Any]:
    path = Path(os.environ.get("HINDSIGHT_CONFIG", "hindsight.toml"))
    if not path.is_file():
        if "HINDSIGHT_CONFIG" in os.environ:
            raise ConfigError(
                f"HINDSIGHT_CONFIG points at {path}, which is not a file. "
                "Fix the path or unset HINDSIGHT_CONFIG."
            )
        return {}
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path} is not valid TOML: {exc}. Fix the file.") from exc
    table = data.get("hindsight", data)
    if not isinstance(table, dict):
        raise ConfigError(f"[hindsight] in {path} must be a table.")
    secret = sorted(set(table) & _ENV_ONLY)
    if secret:
        raise ConfigError(
            f"{secret} in {path}: a token does not belong in a file that may be committed. "
            "Remove it and set HINDSIGHT_SERVER_TOKEN in the environment instead."
        )
    known = {f.name for f in fields(Settings)} - _ENV_ONLY
    unknown = sorted(set(table) - known)
    if unknown:
        raise ConfigError(
            f"Unknown key(s) {unknown} in {path}. Known keys: {sorted(known)}."
        )
    return dict(table)


def _coerce(values: dict[str, Any]) -> dict[str, Any]:
    out = dict(values)
    if "home" in out:
        out["home"] = Path(out["home"]).expanduser()
    if "alerts" in out:
        raw = out["alerts"]
        if isinstance(raw, str):
            raw = raw.split()  # URLs hold no spaces; an SMTP URL may hold commas
        if not isinstance(raw, list | tuple) or not all(isinstance(u, str) for u in raw):
            raise ConfigError(
                f"alerts must be a list of alert channel URLs (e.g. ['log://', "
                f"'slack+https://hooks.slack.com/services/T/B/X']). Got {raw!r}."
            )
        out["alerts"] = tuple(u.strip() for u in raw if u.strip())
    if "server_url" in out and isinstance(out["server_url"], str):
        out["server_url"] = out["server_url"].strip().rstrip("/") or None
    for name in ("heartbeat_s", "stale_after_s", "server_timeout_s"):
        if name in out:
            try:
                out[name] = float(out[name])
            except (TypeError, ValueError) as exc:
                raise ConfigError(
                    f"{name} must be a number of seconds. Got {out[name]!r}."
                ) from exc
    return out
