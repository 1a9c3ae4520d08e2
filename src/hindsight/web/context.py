"""What every route of the team server shares: the ledger, templates and the auth checks.

Route modules take a :class:`WebContext` and use its methods as FastAPI dependencies:
``Depends(ctx.page_user)`` for a page (a browser without a session is sent to
``/login``), ``Depends(ctx.page_editor)`` for a form that writes (the editor role and the
session's CSRF token), ``Depends(ctx.api_user("viewer"))`` for the JSON API (401 without a
principal, 403 below the role).
"""

from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import jinja2
from fastapi import Depends, Form, HTTPException, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from fastapi.templating import Jinja2Templates

from hindsight.ledger import Ledger
from hindsight.web import auth
from hindsight.web.auth import SESSION_COOKIE, Principal

__all__ = ["API_ERRORS", "PAGE_SIZE", "LoginRequired", "WebContext", "page_count"]

TEMPLATES = Path(__file__).parent / "templates"
#: Rows per page on every list page and list endpoint.
PAGE_SIZE = 50
_BEARER = HTTPBearer(auto_error=False, description="An API token: `hindsight users token NAME`.")


def _error_response(what: str) -> dict[str, Any]:
    return {
        "description": what,
        "content": {"application/json": {"schema": {
            "type": "object", "properties": {"detail": {"type": "string"}}, "required": ["detail"],
        }}},
    }


#: The errors every API route may answer with (documented once, for the whole app).
API_ERRORS: dict[int | str, dict[str, Any]] = {
    400: _error_response("Bad input: the detail says what was wrong and what to do."),
    401: _error_response("No session and no valid bearer token."),
    403: _error_response("The caller's role is not enough, or a form's CSRF token is wrong."),
    404: _error_response("No such record."),
    409: _error_response("The record changed state (claimed, decided) in the meantime."),
}


class LoginRequired(Exception):
    """A page was asked for without a session: the app sends the browser to the login."""


def page_count(total: int) -> int:
    return max(1, -(-total // PAGE_SIZE))


class WebContext:
    """The ledger, the templates and the auth dependencies of one app."""

    def __init__(self, ledger: Ledger, *, secure_cookies: bool = False) -> None:
        self.ledger = ledger
        self.store = ledger.store
        self.secure_cookies = secure_cookies
        env = jinja2.Environment(
            loader=jinja2.FileSystemLoader(str(TEMPLATES)),
            autoescape=True,
            undefined=jinja2.StrictUndefined,
        )
        env.filters["ago"] = _ago
        env.globals["outcome_class"] = _outcome_class
        self.templates = Jinja2Templates(env=env)

    # -- who is asking -----------------------------------------------------------------

    def principal(self, request: Request) -> Principal | None:
        header = request.headers.get("authorization", "")
        if header[:7].lower() == "bearer ":
            return auth.principal_for_token(self.store, header[7:].strip())
        cookie = request.cookies.get(SESSION_COOKIE)
        return auth.principal_for_session(self.store, cookie) if cookie else None

    def api_user(self, role: str) -> Callable[..., Principal]:
        """A dependency: the API caller, who must have ``role`` or above.

        The bearer scheme is declared (so the OpenAPI spec says how to authenticate); a
        browser's session cookie is accepted too.
        """

        def check(
            request: Request,
            _bearer: Annotated[HTTPAuthorizationCredentials | None, Depends(_BEARER)] = None,
        ) -> Principal:
            who = self.principal(request)
            if who is None:
                raise HTTPException(
                    401,
                    "Log in or send 'Authorization: Bearer <token>' "
                    "(create one with `hindsight users token NAME`).",
                    headers={"WWW-Authenticate": "Bearer"},
                )
            if not who.can(role):
                raise HTTPException(403, f"This needs the {role} role; {who.name} is {who.role}.")
            return who

        return check

    def page_user(self, request: Request) -> Principal:
        """A dependency: the logged-in person viewing a page."""
        who = self.principal(request)
        if who is None:
            raise LoginRequired()
        return who

    def page_editor(self, request: Request, csrf: Annotated[str, Form()] = "") -> Principal:
        """A dependency for forms that write: an editor, with the session's CSRF token."""
        who = self.page_user(request)
        if not auth.csrf_ok(who, csrf):
            raise HTTPException(403, "The form's CSRF token is missing or stale; reload the page.")
        if not who.can("editor"):
            raise HTTPException(403, f"This needs the editor role; {who.name} is {who.role}.")
        return who

    # -- responses ---------------------------------------------------------------------

    def render(self, request: Request, name: str, who: Principal | None, **context: Any
               ) -> HTMLResponse:
        return self.templates.TemplateResponse(request, name, {"user": who, **context})

    def error(self, request: Request, status: int, detail: str) -> Response:
        if request.url.path.startswith("/api/"):
            return JSONResponse({"detail": detail}, status_code=status)
        return self.templates.TemplateResponse(
            request, "error.html.j2", {"status": status, "detail": detail, "user": None},
            status_code=status,
        )


def _ago(ts: float | None) -> str:
    import time

    if ts is None:
        return "—"
    s = max(0.0, time.time() - float(ts))
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if s >= size:
            return f"{int(s // size)} {unit} ago"
    return f"{int(s)} s ago"


def _outcome_class(status: str | None, outcome: str | None) -> str:
    if status in ("crashed", "killed") or outcome == "failure":
        return "bad"
    if outcome == "partial":
        return "warn"
    if outcome == "success":
        return "good"
    return "neutral"
