"""The team server's accounts: users, API tokens and browser sessions.

Only hashes are stored: an Argon2id hash of each password (made by ``hindsight.web.auth``),
the SHA-256 of each API token and of each session cookie. Every lookup here takes the
hash, never the secret.
"""

from __future__ import annotations

from collections.abc import Mapping

from sqlalchemy import delete, func, insert, select, update

from hindsight.store import schema as t
from hindsight.store.base import Row, StoreBase, _dicts

__all__ = ["AccountsMixin"]

_USER_COLUMNS = ("id", "name", "role", "disabled", "created_at")
_TOUCH_EVERY_S = 60.0


class AccountsMixin(StoreBase):
    """Users, API tokens and sessions (``Store`` inherits these)."""

    # -- users -----------------------------------------------------------------------

    def user_by_name(self, name: str) -> Row | None:
        """The user called ``name`` (with its password hash), or None."""
        u = t.users
        with self.read() as conn:
            row = conn.execute(select(u).where(u.c.name == name)).mappings().first()
        return None if row is None else dict(row)

    def list_users(self) -> list[Row]:
        """Every user, by name, without password hashes."""
        u = t.users
        with self.read() as conn:
            return _dicts(conn.execute(select(*(u.c[c] for c in _USER_COLUMNS)).order_by(u.c.name)))

    def count_users(self) -> int:
        u = t.users
        with self.read() as conn:
            return int(conn.execute(select(func.count()).select_from(u)).scalar_one())

    # -- API tokens ------------------------------------------------------------------

    def add_token(self, row: Mapping[str, object]) -> None:
        with self.write() as conn:
            conn.execute(insert(t.api_tokens), [dict(row)])

    def token_owner(self, token_hash: str, *, used_at: float) -> Row | None:
        """The live token with this hash joined to its enabled user.

        Marks it used, at most once a minute: a read-only API call should not be a write
        transaction every time.
        """
        k, u = t.api_tokens, t.users
        q = (
            select(k.c.id.label("token_id"), k.c.name.label("token_name"),
                   k.c.last_used_at, *(u.c[c] for c in _USER_COLUMNS))
            .join(u, u.c.id == k.c.user_id)
            .where(k.c.token_hash == token_hash, k.c.revoked_at.is_(None), ~u.c.disabled)
        )
        with self.read() as conn:
            row = conn.execute(q).mappings().first()
        if row is None:
            return None
        last = row["last_used_at"]
        if last is None or used_at - float(last) >= _TOUCH_EVERY_S:
            with self.write() as conn:
                conn.execute(
                    update(k).where(k.c.id == row["token_id"]).values(last_used_at=used_at)
                )
        return dict(row)

    def list_tokens(self, user_id: str | None = None) -> list[Row]:
        """Tokens (never their hashes) with their owner's name, newest first."""
        k, u = t.api_tokens, t.users
        q = select(k.c.id, k.c.name, k.c.created_at, k.c.last_used_at, k.c.revoked_at,
                   u.c.name.label("user")).join(u, u.c.id == k.c.user_id)
        if user_id is not None:
            q = q.where(k.c.user_id == user_id)
        with self.read() as conn:
            return _dicts(conn.execute(q.order_by(k.c.created_at.desc())))

    # -- sessions --------------------------------------------------------------------

    def add_session(self, row: Mapping[str, object]) -> None:
        with self.write() as conn:
            conn.execute(insert(t.web_sessions), [dict(row)])

    def session_owner(self, session_hash: str, *, now: float) -> Row | None:
        """The unexpired session with this hash joined to its enabled user."""
        s, u = t.web_sessions, t.users
        q = (
            select(s.c.csrf, s.c.expires_at, *(u.c[c] for c in _USER_COLUMNS))
            .join(u, u.c.id == s.c.user_id)
            .where(s.c.id == session_hash, s.c.expires_at > now, ~u.c.disabled)
        )
        with self.read() as conn:
            row = conn.execute(q).mappings().first()
        return None if row is None else dict(row)

    def end_session(self, session_hash: str) -> None:
        with self.write() as conn:
            conn.execute(delete(t.web_sessions).where(t.web_sessions.c.id == session_hash))

    def end_expired_sessions(self, now: float) -> int:
        with self.write() as conn:
            res = conn.execute(delete(t.web_sessions).where(t.web_sessions.c.expires_at <= now))
            return int(res.rowcount or 0)
