"""The admin pages: people and API tokens, managed from the dashboard (admins only).

``register(app, ctx)`` adds ``/admin/users``: every user with their role, state and
tokens (never a hash or a secret), and forms to add a user, change a role, disable or
enable, reset a password, create a token and revoke one. Every form carries its
session's CSRF token and answers with a redirect (POST-redirect-GET); a refused change
re-renders the page with the reason (and never the password that was typed).

A new token is shown once, on ``/admin/tokens/new/{ticket}``: the POST keeps the secret in
this process's memory for :data:`TICKET_TTL_S` under a random ticket bound to the admin
who made it, and the first GET of that ticket takes it out. The secret never travels in a
URL and is never stored; only its SHA-256 is. (Behind several server processes, the GET
may reach one that does not hold it: the page then says so, and the admin revokes the
token and makes another.)
"""

# No ``from __future__ import annotations``: FastAPI reads the routes' annotations, and
# ``Admin``/``AdminForm`` are local to register().
import secrets
import threading
import time
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Form, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from hindsight.errors import ConfigError
from hindsight.web import auth
from hindsight.web.auth import ROLES, SESSION_COOKIE, Principal
from hindsight.web.context import WebContext

__all__ = ["TICKET_TTL_S", "register"]

#: How long a new token waits to be shown, in seconds.
TICKET_TTL_S = 600.0
_MAX_TICKETS = 100


class _Tickets:
    """New tokens waiting for their one showing, by ticket (in memory, never stored)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._held: dict[str, tuple[str, float, dict[str, str]]] = {}

    def put(self, owner: str, shown: dict[str, str]) -> str:
        ticket = secrets.token_urlsafe(24)
        now = time.monotonic()
        with self._lock:
            self._drop_expired(now)
            while len(self._held) >= _MAX_TICKETS:
                self._held.pop(next(iter(self._held)))  # the oldest
            self._held[ticket] = (owner, now + TICKET_TTL_S, shown)
        return ticket

    def take(self, owner: str, ticket: str) -> dict[str, str] | None:
        with self._lock:
            self._drop_expired(time.monotonic())
            held = self._held.get(ticket)
            if held is None or held[0] != owner:
                return None
            del self._held[ticket]
        return held[2]

    def _drop_expired(self, now: float) -> None:
        for ticket in [k for k, (_, until, _) in self._held.items() if until <= now]:
            del self._held[ticket]


def register(app: FastAPI, ctx: WebContext) -> None:
    """Add the admin pages to ``app``."""
    store, render = ctx.store, ctx.render
    page_admin, form_admin = ctx.page_admin, ctx.form_admin
    tickets = _Tickets()
    Admin = Annotated[Principal, Depends(page_admin)]
    AdminForm = Annotated[Principal, Depends(form_admin)]

    @app.get("/admin", include_in_schema=False)
    def admin_home(_who: Admin) -> Response:
        return RedirectResponse("/admin/users", status_code=303)

    @app.get("/admin/users", response_class=HTMLResponse, include_in_schema=False)
    def users_page(request: Request, who: Admin, done: str = "", ref: str = "") -> Response:
        return _page(request, who, notice=_notice(done, ref))

    @app.post("/admin/users", include_in_schema=False)
    def add_user(
        request: Request,
        who: AdminForm,
        name: Annotated[str, Form()] = "",
        role: Annotated[str, Form()] = "viewer",
        password: Annotated[str, Form()] = "",
        password2: Annotated[str, Form()] = "",
        tokens_only: Annotated[str, Form()] = "",
    ) -> Response:
        try:
            if tokens_only:
                if password or password2:
                    raise ConfigError(
                        "Either give a password or tick 'tokens only (no login)', not both."
                    )
                user_id = auth.create_user(store, name, role=role, password=None)
            else:
                _same(password, password2)
                user_id = auth.create_user(store, name, role=role, password=password)
        except ConfigError as exc:
            return _page(request, who, error=str(exc), status=400,
                         new={"name": name, "role": role, "tokens_only": bool(tokens_only)})
        return _back("added", user_id)

    @app.post("/admin/users/{user_id}/role", include_in_schema=False)
    def change_role(
        request: Request, user_id: str, who: AdminForm, role: Annotated[str, Form()] = ""
    ) -> Response:
        try:
            auth.change_role(store, who, user_id, role)
        except ConfigError as exc:
            return _page(request, who, error=str(exc), status=400, focus=user_id)
        return _back("role", user_id)

    @app.post("/admin/users/{user_id}/disable", include_in_schema=False)
    def disable(request: Request, user_id: str, who: AdminForm) -> Response:
        return _set_disabled(request, who, user_id, True)

    @app.post("/admin/users/{user_id}/enable", include_in_schema=False)
    def enable(request: Request, user_id: str, who: AdminForm) -> Response:
        return _set_disabled(request, who, user_id, False)

    @app.post("/admin/users/{user_id}/password", include_in_schema=False)
    def reset_password(
        request: Request,
        user_id: str,
        who: AdminForm,
        password: Annotated[str, Form()] = "",
        password2: Annotated[str, Form()] = "",
    ) -> Response:
        user = _user(user_id)
        # Their sessions end (a reset means the old password got out), but for the admin
        # changing their own: they stay logged in here.
        keep = request.cookies.get(SESSION_COOKIE) if user_id == who.user_id else None
        try:
            _same(password, password2)
            auth.set_password(store, user["name"], password, keep_session=keep)
        except ConfigError as exc:
            return _page(request, who, error=str(exc), status=400, focus=user_id)
        return _back("password", user_id)

    @app.post("/admin/users/{user_id}/tokens", include_in_schema=False)
    def new_token(
        request: Request, user_id: str, who: AdminForm, label: Annotated[str, Form()] = ""
    ) -> Response:
        user = _user(user_id)
        try:
            secret = auth.create_token(store, user["name"], label)
        except ConfigError as exc:
            return _page(request, who, error=str(exc), status=400, focus=user_id)
        ticket = tickets.put(who.user_id, {
            "user": user["name"], "user_id": user_id, "label": label.strip(), "token": secret,
        })
        return RedirectResponse(f"/admin/tokens/new/{ticket}", status_code=303)

    @app.get("/admin/tokens/new/{ticket}", response_class=HTMLResponse, include_in_schema=False)
    def token_shown_once(request: Request, ticket: str, who: Admin) -> Response:
        shown = tickets.take(who.user_id, ticket)
        if shown is None:
            raise HTTPException(
                410,
                "This token was already shown, or it waited longer than "
                f"{int(TICKET_TTL_S // 60)} minutes. It cannot be shown again (only its hash "
                "is kept): revoke it on the users page and create another.",
            )
        response = render(request, "admin_token.html.j2", who, shown=shown)
        response.headers["Cache-Control"] = "no-store"  # no copy in the browser's cache
        return response

    @app.post("/admin/tokens/{token_id}/revoke", include_in_schema=False)
    def revoke(token_id: str, _who: AdminForm) -> Response:
        row = auth.revoke_token(store, token_id)
        return RedirectResponse(
            f"/admin/users?done=revoked&ref={row['id']}#{row['user_id']}", status_code=303
        )

    # -- helpers ---------------------------------------------------------------------

    def _set_disabled(request: Request, who: Principal, user_id: str, disabled: bool) -> Response:
        try:
            auth.set_disabled(store, who, user_id, disabled)
        except ConfigError as exc:
            return _page(request, who, error=str(exc), status=400, focus=user_id)
        return _back("disabled" if disabled else "enabled", user_id)

    def _user(user_id: str) -> dict[str, Any]:
        user = store.user_by_id(user_id)
        if user is None:
            raise HTTPException(404, f"No user with id {user_id!r}; reload the list of users.")
        return user

    def _page(
        request: Request,
        who: Principal,
        *,
        notice: str | None = None,
        error: str | None = None,
        status: int = 200,
        new: dict[str, Any] | None = None,
        focus: str | None = None,
    ) -> Response:
        users = store.list_users()
        tokens: dict[str, list[dict[str, Any]]] = {}
        for tok in store.list_tokens():
            tokens.setdefault(tok["user_id"], []).append(tok)
        admins = sum(1 for u in users if u["role"] == "admin" and not u["disabled"])
        response = render(
            request, "admin_users.html.j2", who, users=users, tokens=tokens, roles=ROLES,
            admins=admins, notice=notice, error=error, focus=focus,
            new=new or {"name": "", "role": "viewer", "tokens_only": False},
        )
        response.status_code = status
        return response

    def _notice(done: str, ref: str) -> str | None:
        if done == "revoked":
            tok = next((t for t in store.list_tokens() if t["id"] == ref), None)
            return None if tok is None else (
                f"Revoked the token {tok['name']!r} of {tok['user']}: it no longer works."
            )
        user = store.user_by_id(ref) if ref else None
        if user is None:
            return None
        name, role = user["name"], user["role"]
        return {
            "added": f"Added {name} ({role}).",
            "role": f"{name} is now {role}.",
            "disabled": f"Disabled {name}: their sessions have ended and their tokens no "
                        "longer work.",
            "enabled": f"Enabled {name}. Their tokens that are not revoked work again.",
            "password": f"Set a new password for {name}; their other sessions have ended.",
        }.get(done)


def _same(password: str, again: str) -> None:
    if password != again:
        raise ConfigError("The two passwords differ; type the same password twice.")


def _back(done: str, user_id: str) -> Response:
    return RedirectResponse(f"/admin/users?done={done}&ref={user_id}#{user_id}", status_code=303)
