"""The team server: the dashboard's pages and a JSON API over one store.

``create_app(ledger)`` builds a FastAPI app; ``hindsight server`` runs it with uvicorn.
Every page and every ``/api/v1`` route needs a principal (a session cookie from
``/login``, or ``Authorization: Bearer hs_…``); writes need the ``editor`` role, and forms
also their session's CSRF token (see :mod:`hindsight.web.auth`); admins also manage users
and tokens on ``/admin/users`` (:mod:`hindsight.web.pages_admin`). Pages are rendered on
the server from Jinja2 templates that ship in the package, with no script or font from
anywhere else, so the dashboard works offline and without JavaScript.

Errors follow the path: a page's bad parameter (422), missing record (404), refusal
(403) or wrong method (405) is the error page, naming what was wrong; under ``/api/`` the
same errors are JSON, FastAPI's own 422 body included.
"""

import math
from http import HTTPStatus
from typing import Annotated, Any, Literal
from urllib.parse import quote, urlencode

from fastapi import Depends, FastAPI, Form, HTTPException, Query, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from fastapi.routing import APIRoute
from pydantic import BaseModel, ConfigDict, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from hindsight.errors import AmbiguousId, HindsightError, NotFound
from hindsight.ledger import Ledger, add_lesson
from hindsight.ledger.records import STATUSES
from hindsight.ledger.views import experiment_detail
from hindsight.web import (
    api_ingest,
    auth,
    pages_admin,
    pages_data,
    pages_learning,
    pages_lessons,
    pages_monitors,
    pages_postmortems,
    pages_review,
    pages_services,
)
from hindsight.web.auth import SESSION_COOKIE, Principal
from hindsight.web.context import (
    API_ERRORS,
    PAGE_SIZE,
    LoginRequired,
    WebContext,
    is_api,
    page_count,
    validation_detail,
)

__all__ = ["create_app"]

OUTCOMES = ("success", "failure", "partial")
#: The filters' values as the OpenAPI spec states them ("" is no filter).
OutcomeParam = Literal["", "success", "failure", "partial"]
StatusParam = Literal["", "running", "finished", "crashed", "killed"]


class LessonIn(BaseModel):
    """A lesson to record (``POST /api/v1/lessons``)."""

    model_config = ConfigDict(extra="forbid")
    text: str = Field(min_length=1, max_length=10_000)
    tags: list[Annotated[str, Field(min_length=1, max_length=200)]] = Field(
        default_factory=list, max_length=50
    )
    sources: list[Annotated[str, Field(min_length=4, max_length=64)]] = Field(
        default_factory=list, max_length=50
    )


def create_app(ledger: Ledger, *, secure_cookies: bool = False) -> FastAPI:
    """The dashboard and the JSON API over ``ledger``'s store.

    ``secure_cookies`` marks the session cookie ``Secure`` (serve over HTTPS, e.g. behind
    a proxy that terminates TLS).
    """
    ctx = WebContext(ledger, secure_cookies=secure_cookies)
    store, templates = ledger.store, ctx.templates
    app = FastAPI(
        title="hindsight",
        version="1",
        summary="The team server: experiments, failures, lessons and what is drifting now.",
        docs_url="/api/docs",
        redoc_url=None,
        openapi_url="/api/openapi.json",
        responses=API_ERRORS,
    )
    page_user, page_editor, api_user, render = (
        ctx.page_user, ctx.page_editor, ctx.api_user, ctx.render
    )

    @app.exception_handler(LoginRequired)
    async def _to_login(request: Request, _exc: LoginRequired) -> Response:
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        return RedirectResponse(f"/login?next={quote(target)}", status_code=303)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> Response:
        headers = dict(exc.headers or {})
        if exc.status_code == 405:
            # Starlette's Allow names the first matching route's methods; a path served
            # by several routes (GET and POST /api/v1/lessons) allows all of theirs.
            allowed = sorted({
                m for r in app.routes if isinstance(r, APIRoute)
                and r.path_regex.match(request.url.path) for m in (r.methods or ())
            })
            headers["Allow"] = ", ".join(allowed)
        if is_api(request):
            return JSONResponse({"detail": exc.detail}, status_code=exc.status_code,
                                headers=headers)
        return ctx.error(request, exc.status_code, _page_detail(request, exc, headers),
                         headers=headers)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> Response:
        if is_api(request):  # FastAPI's own 422 body, which the API's clients rely on
            # ... except that a NaN or Infinity sent in the body, echoed back as the
            # error's input, is not JSON: it is echoed as a string instead of a 500.
            errors = _finite(jsonable_encoder(exc.errors()))
            return JSONResponse({"detail": errors}, status_code=422)
        return ctx.error(request, 422, validation_detail(exc.errors()))

    @app.exception_handler(AmbiguousId)
    async def _ambiguous(request: Request, exc: AmbiguousId) -> Response:
        return ctx.error(request, 409, str(exc))

    @app.exception_handler(NotFound)
    async def _not_found(request: Request, exc: NotFound) -> Response:
        return ctx.error(request, 404, str(exc))

    @app.exception_handler(HindsightError)
    async def _bad_input(request: Request, exc: HindsightError) -> Response:
        return ctx.error(request, 400, str(exc))

    # -- login -----------------------------------------------------------------------

    @app.get("/login", response_class=HTMLResponse, include_in_schema=False)
    def login_page(request: Request, next: str = "/experiments") -> HTMLResponse:
        return templates.TemplateResponse(
            request, "login.html.j2", {"user": None, "next": _safe_next(next), "error": None}
        )

    @app.post("/login", include_in_schema=False)
    def login(
        request: Request,
        name: Annotated[str, Form()],
        password: Annotated[str, Form()],
        next: Annotated[str, Form()] = "/experiments",
    ) -> Response:
        user = auth.authenticate(store, name, password)
        if user is None:
            return templates.TemplateResponse(
                request, "login.html.j2",
                {"user": None, "next": _safe_next(next), "error": "Wrong name or password."},
                status_code=401,
            )
        secret = auth.create_session(store, user)
        response = RedirectResponse(_safe_next(next), status_code=303)
        response.set_cookie(
            SESSION_COOKIE, secret, max_age=int(auth.SESSION_TTL_S), httponly=True,
            samesite="lax", secure=secure_cookies, path="/",
        )
        return response

    @app.post("/logout", include_in_schema=False)
    def logout(request: Request, csrf: Annotated[str, Form()] = "") -> Response:
        who = page_user(request)
        if not auth.csrf_ok(who, csrf):
            raise HTTPException(403, "The form's CSRF token is missing or stale; reload the page.")
        auth.end_session(store, request.cookies.get(SESSION_COOKIE, ""))
        response = RedirectResponse("/login", status_code=303)
        response.delete_cookie(SESSION_COOKIE, path="/")
        return response

    # -- pages -----------------------------------------------------------------------

    @app.get("/", include_in_schema=False)
    def home() -> Response:
        return RedirectResponse("/experiments", status_code=303)

    @app.get("/experiments", response_class=HTMLResponse, include_in_schema=False)
    def experiments_page(
        request: Request,
        who: Annotated[Principal, Depends(page_user)],
        project: str = "",
        outcome: OutcomeParam = "",
        status: StatusParam = "",
        tag: str = "",
        q: str = "",
        page: Annotated[int, Query(ge=1)] = 1,
    ) -> HTMLResponse:
        filters = {"project": project, "outcome": outcome, "status": status, "tag": tag, "q": q}
        rows, total = _search(filters, page)
        pages = page_count(total)
        kept = {k: v for k, v in filters.items() if v}
        return render(
            request, "experiments.html.j2", who, rows=rows, total=total, page=page, pages=pages,
            filters=filters, projects=store.list_projects(), outcomes=OUTCOMES,
            statuses=STATUSES,
            prev_url=_page_url(kept, page - 1) if page > 1 else None,
            next_url=_page_url(kept, page + 1) if page < pages else None,
        )

    @app.get("/experiments/{experiment_id}", response_class=HTMLResponse, include_in_schema=False)
    def experiment_page(
        request: Request, experiment_id: str, who: Annotated[Principal, Depends(page_user)]
    ) -> HTMLResponse:
        _, full = ledger.resolve(experiment_id, "experiment")
        return render(request, "experiment.html.j2", who, e=experiment_detail(ledger, full),
                      curves=_curves(store.metric_series(full)))

    @app.post("/experiments/{experiment_id}/lessons", include_in_schema=False)
    def add_lesson_form(
        experiment_id: str,
        who: Annotated[Principal, Depends(page_editor)],
        text: Annotated[str, Form()],
        tags: Annotated[str, Form()] = "",
    ) -> Response:
        _, full = ledger.resolve(experiment_id, "experiment")
        tag_list = [t.strip() for t in tags.split(",") if t.strip()]
        add_lesson(ledger, text, tags=tag_list, sources=[full])
        return RedirectResponse(f"/experiments/{full}#lessons", status_code=303)

    # -- JSON API --------------------------------------------------------------------

    @app.get("/api/v1/whoami", tags=["auth"])
    def whoami(who: Annotated[Principal, Depends(api_user("viewer"))]) -> dict[str, str]:
        """Who the token or session acts as."""
        return {"name": who.name, "role": who.role, "via": who.via}

    @app.get("/api/v1/experiments", tags=["experiments"])
    def list_experiments(
        _who: Annotated[Principal, Depends(api_user("viewer"))],
        project: str = "",
        outcome: OutcomeParam = "",
        status: StatusParam = "",
        tag: str = "",
        q: str = "",
        page: Annotated[int, Query(ge=1, le=1_000_000)] = 1,
    ) -> dict[str, Any]:
        """One page of experiments, newest first, with how many match."""
        filters = {"project": project, "outcome": outcome, "status": status, "tag": tag, "q": q}
        rows, total = _search(filters, page)
        return {"items": rows, "total": total, "page": page, "page_size": PAGE_SIZE,
                "pages": page_count(total)}

    @app.get("/api/v1/experiments/{experiment_id}", tags=["experiments"])
    def get_experiment(
        experiment_id: str, _who: Annotated[Principal, Depends(api_user("viewer"))]
    ) -> dict[str, Any]:
        """An experiment with its failure, diagnosis, similar failures, lessons, next steps."""
        _, full = ledger.resolve(experiment_id, "experiment")
        return experiment_detail(ledger, full)

    @app.post("/api/v1/lessons", status_code=201, tags=["lessons"])
    def post_lesson(
        body: LessonIn, _who: Annotated[Principal, Depends(api_user("editor"))]
    ) -> dict[str, Any]:
        """Record a lesson, linked to the experiments or failures it came from."""
        return add_lesson(ledger, body.text, tags=body.tags, sources=body.sources).to_dict()

    def _search(filters: dict[str, str], page: int) -> tuple[list[dict[str, Any]], int]:
        return store.search_experiments(
            project=filters["project"] or None,
            outcomes=[filters["outcome"]] if filters["outcome"] else (),
            statuses=[filters["status"]] if filters["status"] else (),
            tag=filters["tag"] or None, text=filters["q"] or None,
            offset=(page - 1) * PAGE_SIZE, limit=PAGE_SIZE,
        )

    for module in _PAGE_MODULES:
        module.register(app, ctx)
    return app


#: Route modules with ``register(app, ctx)``: each adds its pages and API routes.
_PAGE_MODULES: tuple[Any, ...] = (
    pages_lessons, pages_postmortems, pages_learning, pages_review, pages_monitors, pages_data,
    pages_services,
    pages_admin,
    api_ingest,
)


def _finite(value: Any) -> Any:
    """``value`` with non-finite floats (NaN, Infinity) as strings, so it is valid JSON."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value


def _curves(series: dict[str, tuple[Any, Any, Any]]) -> list[tuple[str, Any]]:
    """One SVG line chart per metric with at least two points (thinned to ``_CURVE_POINTS``)."""
    import numpy as np

    from hindsight.reports.lines_svg import Series, line_chart_svg

    out = []
    for key in sorted(series)[:_MAX_CURVES]:
        steps, values, _ = series[key]
        if values.size < 2:
            continue
        keep = np.unique(np.linspace(0, values.size - 1, min(values.size, _CURVE_POINTS)).astype(int))
        svg = line_chart_svg(
            [Series(steps[keep].tolist(), values[keep].tolist())],
            label=f"{key} by step", x_title="step", y_title=key,
        )
        if svg is not None:
            out.append((key, svg))
    return out


_MAX_CURVES = 12
_CURVE_POINTS = 400


def _page_url(filters: dict[str, str], page: int) -> str:
    return "/experiments?" + urlencode({**filters, "page": page})


def _page_detail(request: Request, exc: StarletteHTTPException, headers: dict[str, str]) -> str:
    """What an error page says: the route's own message, or advice for Starlette's bare
    "Not Found" and "Method Not Allowed"."""
    detail = str(exc.detail)
    try:
        if detail != HTTPStatus(exc.status_code).phrase:
            return detail
    except ValueError:  # not a standard status
        return detail
    if exc.status_code == 404:
        return f"There is no page at {request.url.path}. Check the address or use the menu."
    if exc.status_code == 405:
        return (f"{request.url.path} does not answer {request.method} (only "
                f"{headers.get('Allow', '?')}): it is the target of a form; go back and use it.")
    return detail


def _safe_next(target: str) -> str:
    """Only a path on this server (no ``//host`` or ``http://`` open redirect)."""
    if not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/experiments"
    return target
