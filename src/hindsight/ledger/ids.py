"""Stable, prefixed, time-ordered record ids (``exp_…``, ``fail_…``, ``pred_…``, …)."""

from __future__ import annotations

import os
import random
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
    "window": "win",
    "finding": "fnd",
    "keys": "key",
    "drift_report": "drf",
}


# Ids need uniqueness, not secrecy: a PRNG seeded from the OS (and re-seeded in a forked
# child) is enough, and unlike ``secrets`` it does not read ``os.urandom`` per id, which
# releases the GIL and costs a served request its place behind busy threads.
_rng = random.Random(os.urandom(16))
os.register_at_fork(after_in_child=lambda: _rng.seed(os.urandom(16)))


def new_id(kind: str) -> str:
    """A new id for a record kind: prefix, milliseconds since the epoch, 32 random bits."""
    return f"{PREFIXES[kind]}_{int(time.time() * 1000):011x}{_rng.getrandbits(32):08x}"


def kind_of(record_id: str) -> str | None:
    """The record kind an id belongs to, from its prefix."""
    prefix = record_id.split("_", 1)[0]
    for kind, p in PREFIXES.items():
        if p == prefix:
            return kind
    return None
