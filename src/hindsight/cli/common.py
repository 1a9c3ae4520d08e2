"""Shared pieces of the CLI: the ledger, time windows, config files, output."""

from __future__ import annotations

import datetime as dt
import json
import re
import sys
import time
import tomllib
from pathlib import Path
from typing import Any

import typer
from rich import box
from rich.console import Console
from rich.table import Table

from hindsight.config import Settings
from hindsight.errors import ConfigError, InvalidCriteria
from hindsight.ledger import Ledger

__all__ = [
    "close_ledger",
    "console",
    "err_console",
    "get_cli_ledger",
    "load_config_file",
    "parse_criteria_options",
    "parse_since",
    "print_json",
    "status_style",
    "table",
    "wide",
]

console = Console(highlight=False)
err_console = Console(stderr=True, highlight=False)

_state: dict[str, Any] = {"store": None, "ledger": None}


def set_store_override(url: str | None) -> None:
    """Remember ``--store`` for the commands of this invocation."""
    _state["store"] = url
    _state["ledger"] = None


def store_override() -> str | None:
    """The ``--store`` given to this invocation, if any."""
    value = _state["store"]
    return None if value is None else str(value)


def close_ledger() -> None:
    """Release this invocation's store connections (the CLI may run in-process)."""
    ledger = _state["ledger"]
    _state["ledger"] = None
    if ledger is not None:
        ledger.close()


def get_cli_ledger() -> Ledger:
    """The ledger this invocation works on (``--store`` over the environment)."""
    if _state["ledger"] is None:
        _state["ledger"] = Ledger(Settings.load(store=_state["store"]))
    ledger: Ledger = _state["ledger"]
    return ledger


_REL = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_since(value: str | None) -> float | None:
    """``7d``, ``12h``, ``30m``, ``2w`` ago, or an ISO date/time, as a UNIX time."""
    if value is None:
        return None
    m = _REL.match(value)
    if m:
        return time.time() - float(m.group(1)) * _UNITS[m.group(2)]
    try:
        parsed = dt.datetime.fromisoformat(value)
    except ValueError as exc:
        raise typer.BadParameter(
            f"{value!r} is not a time. Use 7d, 24h, 30m, 2w or an ISO date like 2026-11-01.",
            param_hint="'--since'",
        ) from exc
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=dt.UTC)
    return parsed.timestamp()


def load_config_file(path: Path | None) -> dict[str, Any]:
    """A config from a JSON or TOML file."""
    if path is None:
        return {}
    if not path.is_file():
        raise ConfigError(f"Config file {path} does not exist.")
    text = path.read_text(encoding="utf-8")
    try:
        if path.suffix.lower() == ".toml":
            data: Any = tomllib.loads(text)
        elif path.suffix.lower() in (".yaml", ".yml"):
            try:
                import yaml  # optional: only for people whose configs are YAML
            except ModuleNotFoundError as exc:
                raise ConfigError(
                    f"{path} is YAML; install PyYAML (pip install pyyaml) or pass JSON/TOML."
                ) from exc
            data = yaml.safe_load(text)
        else:
            data = json.loads(text)
    except (json.JSONDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"Cannot read config {path}: {exc}") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"Config {path} must hold a mapping of keys to values.")
    return data


# The name is lazy, so it may hold "@" and "=" ("recall@segment=new>=0.5" splits at ">=").
_CRIT = re.compile(r"^\s*(\S.*?)\s*(>=|<=|==|!=|>|<)\s*(\S+)\s*$")


def parse_criteria_options(values: list[str] | None) -> dict[str, str]:
    """``--criteria 'ctr>=0.6'`` options as a criteria mapping."""
    out: dict[str, str] = {}
    for v in values or []:
        m = _CRIT.match(v)
        if m is None:
            raise InvalidCriteria(
                f"Cannot read criterion {v!r}. Write metric, operator, number: 'ctr>=0.6'."
            )
        out[m.group(1)] = f"{m.group(2)} {m.group(3)}"
    return out


def print_json(data: Any) -> None:
    """Machine-readable output on stdout."""
    sys.stdout.write(json.dumps(data, indent=2, sort_keys=True, default=str) + "\n")


def status_style(status: str | None, outcome: str | None = None) -> str:
    """Rich markup for a status/outcome pair."""
    colours = {
        "success": "green", "partial": "yellow", "failure": "red",
        "crashed": "bold red", "killed": "magenta", "running": "cyan", "finished": "white",
    }
    s = f"[{colours.get(status or '', 'white')}]{status}[/]"
    if outcome:
        s += f" / [{colours.get(outcome, 'white')}]{outcome}[/]"
    return s


def table(title: str) -> Table:
    """A list table in the CLI's one style: light rules, little padding."""
    return Table(
        title=title, box=box.SIMPLE_HEAD, pad_edge=False, collapse_padding=True, expand=True
    )


def wide() -> bool:
    """Whether the terminal has room for the optional columns of a list (120+ columns).

    Below that, tables drop columns instead of folding them one letter per line;
    ``--json`` and ``show ID`` always have everything.
    """
    return console.width >= 120


def ago(ts: float | None) -> str:
    """A short 'how long ago' for tables."""
    if ts is None:
        return "—"
    d = time.time() - ts
    for unit, secs in (("d", 86400), ("h", 3600), ("m", 60)):
        if d >= secs:
            return f"{d / secs:.0f}{unit} ago"
    return f"{d:.0f}s ago"


_BARS = "▁▂▃▄▅▆▇█"


def sparkline(values: list[Any], width: int = 32) -> str:
    """A one-line picture of a curve: ``▇▅▃▂▁▁▂▃``; non-finite points show as ``x``.

    Longer curves are averaged into ``width`` buckets.
    """
    import numpy as np

    arr = np.array([float(v) if isinstance(v, int | float) else np.nan for v in values])
    if arr.size == 0:
        return ""
    if arr.size > width:
        edges = np.linspace(0, arr.size, width + 1).astype(int)
        sums = np.add.reduceat(arr, edges[:-1])
        arr = sums / np.diff(edges)
    finite = np.isfinite(arr)
    if not finite.any():
        return "x" * arr.size
    lo, hi = float(arr[finite].min()), float(arr[finite].max())
    scaled = np.zeros(arr.size, dtype=int)
    if hi > lo:
        scaled[finite] = np.round((arr[finite] - lo) / (hi - lo) * (len(_BARS) - 1)).astype(int)
    chars = np.array(list(_BARS))[scaled]
    chars[~finite] = "x"
    return "".join(chars.tolist())
