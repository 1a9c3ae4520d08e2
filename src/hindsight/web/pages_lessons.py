"""The Lessons pages and API: what was learned, where it came from, and who applied it.

``register(app, ctx)`` adds ``/lessons`` (a filtered, paged list), ``/lessons/{id}`` (one
lesson, with an editor's "applied by experiment" form) and their ``/api/v1/lessons``
counterparts.
"""

from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import Depends, FastAPI, Form, HTTPException, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import BaseModel, ConfigDict, Field

from hindsight.ledger import apply_lesson
from hindsight.ledger.ids import kind_of
from hindsight.ledger.records import Lesson, iso
from hindsight.store.listing_lessons import lesson_projects, search_lessons
from hindsight.web.auth import Principal
from hindsight.web.context import PAGE_SIZE, WebContext, page_count

__all__ = ["ApplyIn", "register"]


class ApplyIn(BaseModel):
    """An experiment that applied a lesson (``POST /api/v1/lessons/{id}/apply``)."""

    model_config = ConfigDict(extra="forbid")
    experiment: str = Field(min_length=1, max_length=200)


def register(app: FastAPI, ctx: WebContext) -> None:
    """Add the lessons pages and API routes to ``app``."""
    ledger, store = ctx.ledger, ctx.store
    page_user, page_editor, api_user, render = (
        ctx.page_user, ctx.page_editor, ctx.api_user, ctx.render
    )

    # -- pages -----------------------------------------------------------------------

    @app.get("/lessons", response_class=HTMLResponse, include_in_schema=False)
    def lessons_page(
        request: Request,
        who: Annotated[Principal, Depends(page_user)],
        q: str = "",
        tag: str = "",
        project: str = "",
        page: Annotated[int, Query(ge=1)] = 1,
    ) -> HTMLResponse:
        filters = {"q": q, "tag": tag, "project": project}
        rows, total = _search(filters, page)
        pages = page_count(total)
        kept = {k: v for k, v in filters.items() if v}
        return render(
            request, "lessons.html.j2", who, rows=rows, total=total, page=page, pages=pages,
            filters=filters, projects=lesson_projects(store),
            prev_url=_page_url(kept, page - 1) if page > 1 else None,
            next_url=_page_url(kept, page + 1) if page < pages else None,
        )

    @app.get("/lessons/{lesson_id}", response_class=HTMLResponse, include_in_schema=False)
    def lesson_page(
        request: Request, lesson_id: str, who: Annotated[Principal, Depends(page_user)]
    ) -> HTMLResponse:
        lesson = _lesson(lesson_id)
        sources = [{"id": s, "kind": kind_of(s) or "record"} for s in lesson.sources]
        return render(request, "lesson.html.j2", who, les=lesson, sources=sources)

    @app.post("/lessons/{lesson_id}/apply", include_in_schema=False)
    def apply_form(
        lesson_id: str,
        who: Annotated[Principal, Depends(page_editor)],
        experiment: Annotated[str, Form()] = "",
    ) -> Response:
        full = _apply(lesson_id, experiment)
        return RedirectResponse(f"/lessons/{full}#applied", status_code=303)

    # -- JSON API --------------------------------------------------------------------

    @app.get("/api/v1/lessons", tags=["lessons"])
    def list_lessons_api(
        _who: Annotated[Principal, Depends(api_user("viewer"))],
        q: str = "",
        tag: str = "",
        project: str = "",
        page: Annotated[int, Query(ge=1, le=1_000_000)] = 1,
    ) -> dict[str, Any]:
        """One page of lessons, newest first, with how many match."""
        rows, total = _search({"q": q, "tag": tag, "project": project}, page)
        items = [{**r, "created": iso(r["created_at"])} for r in rows]
        return {"items": items, "total": total, "page": page, "page_size": PAGE_SIZE,
                "pages": page_count(total)}

    @app.get("/api/v1/lessons/{lesson_id}", tags=["lessons"])
    def get_lesson(
        lesson_id: str, _who: Annotated[Principal, Depends(api_user("viewer"))]
    ) -> dict[str, Any]:
        """A lesson with where it came from and the experiments that applied it."""
        return _lesson(lesson_id).to_dict()

    @app.post("/api/v1/lessons/{lesson_id}/apply", status_code=201, tags=["lessons"])
    def apply_api(
        lesson_id: str, body: ApplyIn, _who: Annotated[Principal, Depends(api_user("editor"))]
    ) -> dict[str, Any]:
        """Record that an experiment applied the lesson; returns the lesson."""
        return _lesson(_apply(lesson_id, body.experiment)).to_dict()

    def _search(filters: dict[str, str], page: int) -> tuple[list[dict[str, Any]], int]:
        return search_lessons(
            store, text=filters["q"] or None, tag=filters["tag"] or None,
            project=filters["project"] or None,
            offset=(page - 1) * PAGE_SIZE, limit=PAGE_SIZE,
        )

    def _lesson(lesson_id: str) -> Lesson:
        _, full = ledger.resolve(lesson_id, "lesson")
        return ledger.lessons_by_id([full])[0]

    def _apply(lesson_id: str, experiment_id: str) -> str:
        """Link the experiment to the lesson as one that applied it; the lesson's full id."""
        experiment_id = experiment_id.strip()
        if not experiment_id:
            # An empty prefix would match every experiment.
            raise HTTPException(422, "Give the id of the experiment that applied the lesson.")
        _, full = ledger.resolve(lesson_id, "lesson")
        apply_lesson(ledger, full, experiment_id)
        return full


def _page_url(filters: dict[str, str], page: int) -> str:
    return "/lessons?" + urlencode({**filters, "page": page})
