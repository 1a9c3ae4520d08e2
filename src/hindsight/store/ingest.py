"""Write operations that clients send through the team server, each applied once."""

from __future__ import annotations

from sqlalchemy import insert, select

from hindsight.store import schema as t
from hindsight.store.base import StoreBase

__all__ = ["IngestMixin"]


class IngestMixin(StoreBase):
    """``claim_op`` and ``op_applied`` (``Store`` inherits them): the once-only mark of an ingested operation."""

    def claim_op(self, op_id: str, op: str, user_id: str | None, at: float) -> bool:
        """Mark an operation applied; False if it already was (a batch sent again).

        Call it inside ``with store.write():`` with the operation's own writes, so the
        mark and the writes commit together.
        """
        o = t.ingested_ops
        with self.write() as conn:
            if conn.execute(select(o.c.op_id).where(o.c.op_id == op_id)).first() is not None:
                return False
            conn.execute(
                insert(o), [{"op_id": op_id, "op": op, "user_id": user_id, "applied_at": at}]
            )
            return True

    def op_applied(self, op_id: str) -> bool:
        """Whether an operation id has been applied."""
        o = t.ingested_ops
        with self.read() as conn:
            return conn.execute(select(o.c.op_id).where(o.c.op_id == op_id)).first() is not None
