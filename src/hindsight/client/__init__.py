"""Logging through the team server: the ingest protocol, the local spool and the sender.

With ``HINDSIGHT_SERVER_URL`` (and ``HINDSIGHT_SERVER_TOKEN``) set, experiments write
their records here instead of to the store; see :class:`ServerClient`.
"""

from __future__ import annotations

from hindsight.client.sender import ServerClient, ServerUnreachable
from hindsight.client.spool import Spool

__all__ = ["ServerClient", "ServerUnreachable", "Spool"]
