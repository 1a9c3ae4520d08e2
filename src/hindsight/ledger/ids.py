"""Stable, prefixed, time-ordered record ids (``exp_…``, ``fail_…``, ``pred_…``, …)."""

from __future__ import annotations

import secrets
import time

__all__ = ["PREFIXES", "new_id"]

PREFIXES = {
    "experiment": "exp",
    "failure": "fail",
    "lesson": "les",
    "postmortem": "pm",
    "profile": "prf",
    "prediction": "pred",
    "outcome": "out",
    "review": "rev",
    "rollout": "roll",
}


def new_id(kind: str) -> str:
    """A new id for a record kind: prefix, milliseconds since the epoch, 32 random bits."""
    return f"{PREFIXES[kind]}_{int(time.time() * 1000):011x}{secrets.token_hex(4)}"


def kind_of(record_id: str) -> str | None:
    """The record kind an id belongs to, from its prefix."""
    prefix = record_id.split("_", 1)[0]
    for kind, p in PREFIXES.items():
        if p == prefix:
            return kind
    return None
