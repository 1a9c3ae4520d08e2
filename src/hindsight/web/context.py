"""What every route of the team server shares: the ledger, templates and the auth checks.

Route modules take a :class:`WebContext` and use its methods as FastAPI dependencies:
``Depends(ctx.page_user)`` for a page (a browser without a session is sent to
``/login``), ``Depends(ctx.page_editor)`` for a form that writes (the editor role and the
session's CSRF token), ``Depends(ctx.page_admin)`` and ``Depends(ctx.form_admin)`` for the
admin pages and their forms, ``Depends(ctx.api_user("viewer"))`` for the JSON API (401
without a principal, 403 below the role).

Errors on pages are pages too (``error.html.j2``, via :meth:`WebContext.error`); under
``/api/`` they stay JSON ``{"detail": …}``.
"""

from collections.abc import Callable, Mapping, Sequence
from http import HTTPStatus
from pathlib import Path
from typing import Annotated, Any

import jinja2
from fastapi import Depends, Form, HTTPException, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from fastapi.templating import Jinja2Templates

from hindsight.errors import HindsightError
from hindsight.ledger import Ledger
from hindsight.web import auth
from hindsight.web.auth import SESSION_COOKIE, Principal

__all__ = [
    "API_ERRORS",
    "PAGE_SIZE",
    "LoginRequired",
    "WebContext",
    "is_api",
    "page_count",
    "validation_detail",
]

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


def is_api(request: Request) -> bool:
    """Whether a request is for the JSON API (its errors are JSON, not pages)."""
    return request.url.path.startswith("/api/")


_WHERE = {"query": "query parameter", "path": "part of the address", "body": "form field",
          "header": "header", "cookie": "cookie"}
_FIX = {
    "query": "Correct it in the address (or remove it to use the default) and reload.",
    "path": "Check the address.",
    "body": "Go back, correct the form and send it again.",
}


def validation_detail(errors: Sequence[Mapping[str, Any]]) -> str:
    """A page's message for FastAPI's validation errors: which parameter, what was wrong
    and what to do. Form fields' values are never echoed (one may be a password)."""
    parts, fixes = [], []
    for err in errors[:5]:
        loc = [str(x) for x in err.get("loc", ())]
        source = loc[0] if loc else ""
        name = ".".join(loc[1:]) or source or "input"
        part = f"The {_WHERE.get(source, 'value')} '{name}' is not valid: {err.get('msg', '')}"
        got = err.get("input")
        if source in ("query", "path") and err.get("type") != "missing" and got is not None:
            part += f" (got {str(got)[:80]!r})"
        parts.append(part.rstrip(". ") + ".")
        fix = _FIX.get(source, "Go back and try again.")
        if fix not in fixes:
            fixes.append(fix)
    if len(errors) > 5:
        parts.append(f"… and {len(errors) - 5} more.")
    return " ".join(parts + fixes)


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
        return self._form_user(request, csrf, "editor")

    def page_admin(self, request: Request) -> Principal:
        """A dependency: an admin viewing an admin page (403 for anyone else)."""
        who = self.page_user(request)
        if not who.can("admin"):
            raise HTTPException(
                403, f"Only admins manage users and tokens; {who.name} is {who.role}. "
                "Ask an admin if you need another role."
            )
        return who

    def form_admin(self, request: Request, csrf: Annotated[str, Form()] = "") -> Principal:
        """A dependency for the admin pages' forms: an admin, with the session's CSRF token."""
        return self._form_user(request, csrf, "admin")

    def _form_user(self, request: Request, csrf: str, role: str) -> Principal:
        who = self.page_user(request)
        if not auth.csrf_ok(who, csrf):
            raise HTTPException(403, "The form's CSRF token is missing or stale; reload the page.")
        if not who.can(role):
            raise HTTPException(403, f"This needs the {role} role; {who.name} is {who.role}.")
        return who

    # -- responses ---------------------------------------------------------------------

    def render(self, request: Request, name: str, who: Principal | None, **context: Any
               ) -> HTMLResponse:
        return self.templates.TemplateResponse(request, name, {"user": who, **context})

    def error(self, request: Request, status: int, detail: str,
              headers: Mapping[str, str] | None = None) -> Response:
        """An error: JSON ``{"detail": …}`` under ``/api/``, the error page elsewhere."""
        if is_api(request):
            return JSONResponse({"detail": detail}, status_code=status, headers=headers)
        try:
            who = self.principal(request)  # the page keeps its navigation for a known user
        except HindsightError:
            who = None  # the store itself may be what failed
        title = _TITLES.get(status) or _phrase(status)
        return self.templates.TemplateResponse(
            request, "error.html.j2",
            {"status": status, "title": title, "detail": detail, "user": who},
            status_code=status, headers=headers,
        )


_TITLES = {400: "Bad input", 403: "Not allowed", 404: "Not found", 409: "Changed meanwhile",
           422: "Invalid input"}


def _phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


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
