"""Who may see and change what on the team server: users, roles, tokens, sessions, CSRF.

* **Users** log in to the dashboard with a password, hashed with Argon2id (argon2-cffi,
  the library's recommended parameters); the password is never stored or logged.
* **Roles**: ``viewer`` reads, ``editor`` also writes records (lessons, post-mortems,
  review decisions, experiments logged through the API), ``admin`` also manages users
  and tokens. Nothing is readable or writable anonymously.
* **API tokens** (``hs_…``, 32 random bytes) act as their user, with the user's role.
  Only their SHA-256 is stored; a token is shown once, when created.
* **Sessions**: the ``hindsight_session`` cookie (HttpOnly, SameSite=Lax) holds a random
  secret whose SHA-256 keys the session row. Each session has its own CSRF token that
  every form posts back; a cookie alone cannot change anything.
* **Changes hold at once**: every request looks its user up again, so a new role applies
  to the next request, and disabling a user ends their sessions and stops their tokens.
  Resetting a password ends the user's sessions too. Nobody demotes or disables
  themself, and the last enabled admin cannot be demoted or disabled.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
import uuid
from dataclasses import dataclass
from typing import Any

from hindsight.errors import ConfigError
from hindsight.store import Store
from hindsight.store.schema import SCHEMA_VERSION

__all__ = [
    "ROLES",
    "SESSION_COOKIE",
    "Principal",
    "authenticate",
    "change_role",
    "create_session",
    "create_token",
    "create_user",
    "csrf_ok",
    "end_session",
    "principal_for_session",
    "principal_for_token",
    "revoke_token",
    "set_disabled",
    "set_password",
]

#: Roles, least to most allowed.
ROLES = ("viewer", "editor", "admin")
SESSION_COOKIE = "hindsight_session"
SESSION_TTL_S = 12 * 3600.0
TOKEN_PREFIX = "hs_"
_MIN_PASSWORD = 8


@dataclass(frozen=True)
class Principal:
    """Whoever a request acts as: a user, through a session or an API token."""

    user_id: str
    name: str
    role: str
    via: str  # "session" or "token"
    csrf: str | None = None  # the session's CSRF token

    def can(self, role: str) -> bool:
        """Whether this principal's role is ``role`` or above."""
        return ROLES.index(self.role) >= ROLES.index(role)


def _hasher() -> Any:
    from argon2 import PasswordHasher

    return PasswordHasher()


def _sha256(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def _check_role(role: str) -> None:
    if role not in ROLES:
        raise ConfigError(f"Unknown role {role!r}: use one of {', '.join(ROLES)}.")


def _check_password(password: str) -> None:
    if len(password) < _MIN_PASSWORD:
        raise ConfigError(
            f"A password needs at least {_MIN_PASSWORD} characters; this one has {len(password)}."
        )


def create_user(store: Store, name: str, *, role: str = "viewer", password: str | None = None) -> str:
    """Add a user (a password lets them log in; without one, they use API tokens only)."""
    _check_role(role)
    name = name.strip()
    if not name or len(name) > 200:
        raise ConfigError("A user name must have 1 to 200 characters.")
    if store.user_by_name(name) is not None:
        raise ConfigError(f"There is already a user called {name!r}; pick another name.")
    if password is not None:
        _check_password(password)
    user_id = f"usr_{uuid.uuid4().hex[:20]}"
    store.insert(
        "user",
        {
            "id": user_id,
            "name": name,
            "role": role,
            "password_hash": None if password is None else _hasher().hash(password),
            "disabled": False,
            "created_at": time.time(),
            "schema_version": SCHEMA_VERSION,
        },
    )
    return user_id


def set_password(store: Store, name: str, password: str, *, keep_session: str | None = None
                 ) -> None:
    """Set (or replace) a user's password, ending their sessions: a reset usually means
    the old password got out. ``keep_session`` (a session cookie's secret) survives, so
    people who change their own password stay logged in."""
    _check_password(password)
    user = store.user_by_name(name)
    if user is None:
        raise ConfigError(f"No user called {name!r}; add one with `hindsight users add`.")
    store.set_password_hash(
        user["id"], _hasher().hash(password),
        keep_session=None if keep_session is None else _sha256(keep_session),
    )


def change_role(store: Store, actor: Principal, user_id: str, role: str) -> dict[str, Any]:
    """``actor`` (an admin) gives a user another role; nobody demotes themself, and the
    last enabled admin stays one. Takes effect on the user's next request."""
    _check_role(role)
    if user_id == actor.user_id and role != actor.role:
        raise ConfigError(
            f"You cannot change your own role ({actor.role}); ask another admin to do it."
        )
    return store.set_user_role(user_id, role)


def set_disabled(store: Store, actor: Principal, user_id: str, disabled: bool) -> dict[str, Any]:
    """``actor`` (an admin) disables or enables a user. Disabling ends the user's
    sessions at once and stops their tokens; nobody disables themself, and the last
    enabled admin stays enabled."""
    if disabled and user_id == actor.user_id:
        raise ConfigError("You cannot disable yourself; ask another admin to do it.")
    return store.set_user_disabled(user_id, disabled)


def authenticate(store: Store, name: str, password: str) -> dict[str, Any] | None:
    """The enabled user whose password this is, or None (the same answer for a wrong name
    and a wrong password, and a hash is checked either way so timing does not tell)."""
    from argon2.exceptions import InvalidHashError, VerificationError

    hasher = _hasher()
    user = store.user_by_name(name)
    stored = None if user is None or user["disabled"] else user["password_hash"]
    try:
        if stored is None:
            hasher.verify(_DUMMY_HASH.get(hasher), password)
            return None
        hasher.verify(stored, password)
    except (VerificationError, InvalidHashError):
        return None
    if hasher.check_needs_rehash(stored):
        store.update("user", user["id"], password_hash=hasher.hash(password))  # type: ignore[index]
    return user


class _Dummy:
    """A hash of a random password, made once, to verify against for unknown users."""

    def __init__(self) -> None:
        self._hash: str | None = None

    def get(self, hasher: Any) -> str:
        if self._hash is None:
            self._hash = hasher.hash(secrets.token_urlsafe(16))
        return self._hash


_DUMMY_HASH = _Dummy()


def create_token(store: Store, user: str, name: str) -> str:
    """A new API token for the user called ``user``; returned once, stored as a hash."""
    row = store.user_by_name(user)
    if row is None:
        raise ConfigError(f"No user called {user!r}; add one with `hindsight users add`.")
    if row["disabled"]:
        raise ConfigError(f"{user!r} is disabled, so a token would not work; enable them first.")
    name = name.strip()
    if not name or len(name) > 200:
        raise ConfigError("A token's label must have 1 to 200 characters (say what it is for).")
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    store.add_token(
        {
            "id": f"tok_{uuid.uuid4().hex[:20]}",
            "user_id": row["id"],
            "name": name,
            "token_hash": _sha256(token),
            "created_at": time.time(),
            "schema_version": SCHEMA_VERSION,
        }
    )
    return token


def revoke_token(store: Store, token_id: str) -> dict[str, Any]:
    """Revoke an API token; the next request that sends it gets a 401."""
    return store.revoke_token(token_id, at=time.time())


def principal_for_token(store: Store, token: str) -> Principal | None:
    if not token.startswith(TOKEN_PREFIX):
        return None
    row = store.token_owner(_sha256(token), used_at=time.time())
    return None if row is None else Principal(row["id"], row["name"], row["role"], "token")


def create_session(store: Store, user: dict[str, Any]) -> str:
    """Start a session for ``user``; returns the cookie's secret value."""
    secret = secrets.token_urlsafe(32)
    now = time.time()
    store.end_expired_sessions(now)
    store.add_session(
        {
            "id": _sha256(secret),
            "user_id": user["id"],
            "csrf": secrets.token_urlsafe(32),
            "created_at": now,
            "expires_at": now + SESSION_TTL_S,
            "schema_version": SCHEMA_VERSION,
        }
    )
    return secret


def principal_for_session(store: Store, secret: str) -> Principal | None:
    row = store.session_owner(_sha256(secret), now=time.time())
    if row is None:
        return None
    return Principal(row["id"], row["name"], row["role"], "session", csrf=row["csrf"])


def end_session(store: Store, secret: str) -> None:
    store.end_session(_sha256(secret))


def csrf_ok(principal: Principal, sent: str | None) -> bool:
    """Whether a form's CSRF token is the session's (compared in constant time)."""
    if principal.via == "token":
        return True  # a bearer token is not sent by browsers on their own
    if not sent or principal.csrf is None:
        return False
    return hmac.compare_digest(principal.csrf.encode(), sent.encode())
