"""The team server's accounts: users, API tokens and browser sessions.

Only hashes are stored: an Argon2id hash of each password (made by ``hindsight.web.auth``),
the SHA-256 of each API token and of each session cookie. Every lookup here takes the
hash, never the secret.
"""

from __future__ import annotations

from collections.abc import Mapping

from sqlalchemy import Connection, delete, func, insert, select, update

from hindsight.errors import ConfigError, NotFound
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

    def user_by_id(self, user_id: str) -> Row | None:
        """The user with this id (without its password hash), or None."""
        u = t.users
        with self.read() as conn:
            row = conn.execute(
                select(*(u.c[c] for c in _USER_COLUMNS)).where(u.c.id == user_id)
            ).mappings().first()
        return None if row is None else dict(row)

    def count_users(self) -> int:
        u = t.users
        with self.read() as conn:
            return int(conn.execute(select(func.count()).select_from(u)).scalar_one())

    def set_user_role(self, user_id: str, role: str) -> Row:
        """Change a user's role; refuses to demote the last enabled admin.

        The check and the change are one transaction (see :meth:`_lock_for_change`), so
        two admins demoting each other at once cannot leave the server without one.
        """
        u = t.users
        with self.write() as conn:
            user, admins = self._lock_for_change(conn, user_id)
            if role != "admin" and admins == [user["id"]]:
                raise _last_admin(f"make {user['name']!r} {role}")
            conn.execute(update(u).where(u.c.id == user_id).values(role=role))
        return {**user, "role": role}

    def set_user_disabled(self, user_id: str, disabled: bool) -> Row:
        """Disable or enable a user; refuses to disable the last enabled admin.

        Disabling ends the user's sessions in the same transaction. Their API tokens stop
        working too (every lookup joins the user and skips disabled ones) and work again
        if the user is enabled; revoke them to end them for good.
        """
        u = t.users
        with self.write() as conn:
            user, admins = self._lock_for_change(conn, user_id)
            if disabled and admins == [user["id"]]:
                raise _last_admin(f"disable {user['name']!r}")
            conn.execute(update(u).where(u.c.id == user_id).values(disabled=disabled))
            if disabled:
                conn.execute(delete(t.web_sessions).where(t.web_sessions.c.user_id == user_id))
        return {**user, "disabled": disabled}

    def set_password_hash(self, user_id: str, password_hash: str, *,
                          keep_session: str | None = None) -> None:
        """Replace a user's password hash and end their sessions (but ``keep_session``,
        the hash of the session that made the change), in one transaction."""
        u, s = t.users, t.web_sessions
        with self.write() as conn:
            res = conn.execute(
                update(u).where(u.c.id == user_id).values(password_hash=password_hash)
            )
            if res.rowcount == 0:
                raise NotFound(f"No user with id {user_id!r}.")
            ended = delete(s).where(s.c.user_id == user_id)
            if keep_session is not None:
                ended = ended.where(s.c.id != keep_session)
            conn.execute(ended)

    def _lock_for_change(self, conn: Connection, user_id: str) -> tuple[Row, list[str]]:
        """Lock the enabled admins, then the user; returns the user and the admins' ids.

        Admins are locked first and in id order (``FOR UPDATE`` on PostgreSQL; SQLite
        writes one transaction at a time), so concurrent role changes queue up instead of
        deadlocking, and each sees the admins the one before it left.
        """
        u = t.users
        admins = conn.execute(
            select(u.c.id).where(u.c.role == "admin", ~u.c.disabled)
            .order_by(u.c.id).with_for_update()
        ).scalars().all()
        row = conn.execute(
            select(*(u.c[c] for c in _USER_COLUMNS)).where(u.c.id == user_id).with_for_update()
        ).mappings().first()
        if row is None:
            raise NotFound(f"No user with id {user_id!r}; reload the list of users.")
        return dict(row), list(admins)

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
                   k.c.user_id, u.c.name.label("user")).join(u, u.c.id == k.c.user_id)
        if user_id is not None:
            q = q.where(k.c.user_id == user_id)
        with self.read() as conn:
            return _dicts(conn.execute(q.order_by(k.c.created_at.desc())))

    def revoke_token(self, token_id: str, *, at: float) -> Row:
        """Revoke a token (at once: every lookup skips revoked tokens); returns it, with
        its owner's name. Revoking a revoked token keeps the first revocation time."""
        k, u = t.api_tokens, t.users
        q = (select(k.c.id, k.c.name, k.c.revoked_at, k.c.user_id, u.c.name.label("user"))
             .join(u, u.c.id == k.c.user_id).where(k.c.id == token_id))
        with self.write() as conn:
            row = conn.execute(q).mappings().first()
            if row is None:
                raise NotFound(f"No API token with id {token_id!r}; reload the list of users.")
            if row["revoked_at"] is not None:
                return dict(row)
            conn.execute(update(k).where(k.c.id == token_id).values(revoked_at=at))
        return {**row, "revoked_at": at}

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


def _last_admin(change: str) -> ConfigError:
    return ConfigError(
        f"Cannot {change}: they are the last enabled admin. Make another user admin first."
    )
