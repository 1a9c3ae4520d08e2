"""The team server's post-mortem pages and API: list, view, edit, draft from a failure.

Pages: ``/postmortems`` (paged, newest first), ``/postmortems/{id}`` (every section of
the blameless template and the action items), ``/postmortems/{id}/edit`` (editors: a
form with a textarea per section and a row per action item) and
``POST /failures/{id}/postmortem`` (editors: draft one from the failure's evidence).
The JSON API under ``/api/v1`` mirrors them. Everything is read and written through the
ledger's post-mortem functions (:mod:`hindsight.ledger.postmortem`).
"""

from typing import Annotated, Any, Literal, get_args

from fastapi import Depends, FastAPI, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import BaseModel, ConfigDict, Field
from starlette.datastructures import FormData

from hindsight.ledger import draft_postmortem, parse_markdown, update_postmortem
from hindsight.ledger.postmortem import ACTION_STATUSES, SECTIONS
from hindsight.ledger.postmortem import STATUSES as PM_STATUSES
from hindsight.ledger.records import PostMortem
from hindsight.store.listing_postmortems import search_postmortems
from hindsight.web.auth import Principal
from hindsight.web.context import PAGE_SIZE, WebContext, page_count

__all__ = ["PostMortemIn", "register"]

#: Empty action-item rows the edit form offers for new items.
NEW_ITEM_ROWS = 3
#: The most action-item rows one form submission is read for.
MAX_ITEM_ROWS = 500
_TEXT = 100_000


#: The ledger's statuses (ACTION_STATUSES, STATUSES in hindsight.ledger.postmortem) as the
#: OpenAPI spec states them; a test checks the two agree.
ActionStatus = Literal["open", "done"]
PostMortemStatus = Literal["draft", "reviewed", "final"]
if get_args(ActionStatus) != ACTION_STATUSES or get_args(PostMortemStatus) != PM_STATUSES:
    raise ImportError("hindsight.web.pages_postmortems: the statuses differ from the ledger's")


class ActionItemIn(BaseModel):
    """One action item: what to do, who owns it, whether it is done."""

    model_config = ConfigDict(extra="forbid")
    text: str = Field(min_length=1, max_length=10_000)
    owner: str = Field(default="", max_length=200)
    status: ActionStatus = "open"


class TimelineEventIn(BaseModel):
    """One timeline entry: when (free text, e.g. an ISO time) and what happened."""

    model_config = ConfigDict(extra="forbid")
    at: str = Field(default="", max_length=100)
    event: str = Field(min_length=1, max_length=10_000)


class LessonItemIn(BaseModel):
    """A lesson of the post-mortem; one without ``id`` is recorded as a new ledger lesson."""

    model_config = ConfigDict(extra="forbid")
    text: str = Field(min_length=1, max_length=10_000)
    id: str | None = Field(default=None, max_length=64)


class PostMortemIn(BaseModel):
    """Changes to a post-mortem (``PUT /api/v1/postmortems/{id}``).

    Fields left out are kept as they are; a list given replaces the whole list.
    """

    model_config = ConfigDict(extra="forbid")
    title: str | None = Field(default=None, min_length=1, max_length=500)
    status: PostMortemStatus | None = None
    summary: str | None = Field(default=None, max_length=_TEXT)
    impact: str | None = Field(default=None, max_length=_TEXT)
    root_cause: str | None = Field(default=None, max_length=_TEXT)
    trigger: str | None = Field(default=None, max_length=_TEXT)
    detection: str | None = Field(default=None, max_length=_TEXT)
    went_well: str | None = Field(default=None, max_length=_TEXT)
    went_wrong: str | None = Field(default=None, max_length=_TEXT)
    timeline: list[TimelineEventIn] | None = Field(default=None, max_length=1000)
    action_items: list[ActionItemIn] | None = Field(default=None, max_length=MAX_ITEM_ROWS)
    lessons: list[LessonItemIn] | None = Field(default=None, max_length=200)


class FormInvalid(Exception):
    """An edit form field is wrong: which field, and why."""

    def __init__(self, field: str, problem: str) -> None:
        super().__init__(f"{field}: {problem}")
        self.field = field


def register(app: FastAPI, ctx: WebContext) -> None:
    """Add the post-mortem pages and API routes to ``app``."""
    ledger = ctx.ledger
    page_user, page_editor, api_user, render = (
        ctx.page_user, ctx.page_editor, ctx.api_user, ctx.render
    )

    # -- pages -----------------------------------------------------------------------

    @app.get("/postmortems", response_class=HTMLResponse, include_in_schema=False)
    def postmortems_page(
        request: Request,
        who: Annotated[Principal, Depends(page_user)],
        page: Annotated[int, Query(ge=1, le=1_000_000)] = 1,
    ) -> HTMLResponse:
        rows, total = _page(page)
        pages = page_count(total)
        return render(
            request, "postmortems.html.j2", who, rows=rows, total=total, page=page,
            pages=pages,
            prev_url=f"/postmortems?page={page - 1}" if page > 1 else None,
            next_url=f"/postmortems?page={page + 1}" if page < pages else None,
        )

    @app.get("/postmortems/{postmortem_id}", response_class=HTMLResponse,
             include_in_schema=False)
    def postmortem_page(
        request: Request, postmortem_id: str, who: Annotated[Principal, Depends(page_user)]
    ) -> HTMLResponse:
        pm = ledger.postmortem(postmortem_id)
        return render(request, "postmortem.html.j2", who, **_view(pm))

    @app.get("/postmortems/{postmortem_id}/edit", response_class=HTMLResponse,
             include_in_schema=False)
    def postmortem_edit_page(
        request: Request, postmortem_id: str, who: Annotated[Principal, Depends(page_user)]
    ) -> Response:
        if not who.can("editor"):
            return ctx.error(request, 403, f"This needs the editor role; {who.name} is {who.role}.")
        pm = ledger.postmortem(postmortem_id)
        return render(
            request, "postmortem_edit.html.j2", who, **_view(pm), statuses=PM_STATUSES,
            action_statuses=ACTION_STATUSES, new_rows=NEW_ITEM_ROWS,
            timeline_text="\n".join(
                f"{e.get('at')} — {e.get('event')}" if e.get("at") else str(e.get("event"))
                for e in pm.body.get("timeline") or []
            ),
        )

    @app.post("/postmortems/{postmortem_id}/edit", include_in_schema=False)
    async def postmortem_edit(
        request: Request, postmortem_id: str, _who: Annotated[Principal, Depends(page_editor)]
    ) -> Response:
        pm = ledger.postmortem(postmortem_id)
        form = await request.form()
        try:
            title, status, sections = _from_form(form, pm)
        except FormInvalid as exc:
            return ctx.error(request, 422, str(exc))
        update_postmortem(ledger, pm.id, title=title, status=status, sections=sections)
        return RedirectResponse(f"/postmortems/{pm.id}", status_code=303)

    @app.post("/failures/{failure_id}/postmortem", include_in_schema=False)
    def draft_from_failure_form(
        failure_id: str, _who: Annotated[Principal, Depends(page_editor)]
    ) -> Response:
        _, full = ledger.resolve(failure_id, "failure")
        pm = draft_postmortem(ledger, full)
        return RedirectResponse(f"/postmortems/{pm.id}/edit", status_code=303)

    # -- JSON API --------------------------------------------------------------------

    @app.get("/api/v1/postmortems", tags=["postmortems"])
    def list_postmortems(
        _who: Annotated[Principal, Depends(api_user("viewer"))],
        page: Annotated[int, Query(ge=1, le=1_000_000)] = 1,
    ) -> dict[str, Any]:
        """One page of post-mortems, newest first, with their open action items."""
        rows, total = _page(page)
        return {"items": rows, "total": total, "page": page, "page_size": PAGE_SIZE,
                "pages": page_count(total)}

    @app.get("/api/v1/postmortems/{postmortem_id}", tags=["postmortems"])
    def get_postmortem(
        postmortem_id: str, _who: Annotated[Principal, Depends(api_user("viewer"))]
    ) -> dict[str, Any]:
        """A post-mortem: its sections, timeline, action items, lessons and evidence."""
        return ledger.postmortem(postmortem_id).to_dict()

    @app.put("/api/v1/postmortems/{postmortem_id}", tags=["postmortems"])
    def put_postmortem(
        postmortem_id: str,
        body: PostMortemIn,
        _who: Annotated[Principal, Depends(api_user("editor"))],
    ) -> dict[str, Any]:
        """Change a post-mortem's title, status or sections; fields left out are kept.

        Lessons without an ``id`` are recorded as ledger lessons linked to it.
        """
        changes = body.model_dump(exclude_unset=True)
        title, status = changes.pop("title", None), changes.pop("status", None)
        # An explicit null for a section means "leave it".
        sections = {k: v for k, v in changes.items() if v is not None}
        return update_postmortem(
            ledger, postmortem_id, title=title, status=status, sections=sections
        ).to_dict()

    @app.post("/api/v1/failures/{failure_id}/postmortem", status_code=201, tags=["postmortems"])
    def post_postmortem(
        failure_id: str, _who: Annotated[Principal, Depends(api_user("editor"))]
    ) -> dict[str, Any]:
        """Draft a blameless post-mortem from a failure and everything recorded around it."""
        _, full = ledger.resolve(failure_id, "failure")
        return draft_postmortem(ledger, full).to_dict()

    def _page(page: int) -> tuple[list[dict[str, Any]], int]:
        return search_postmortems(ctx.store, offset=(page - 1) * PAGE_SIZE, limit=PAGE_SIZE)


def _view(pm: PostMortem) -> dict[str, Any]:
    """What the view and edit templates show of a post-mortem."""
    failure = None
    if pm.failure_id:
        failure = {"id": pm.failure_id, "experiment_id": pm.experiment_id,
                   "title": (pm.body.get("evidence") or {}).get("exception") or pm.failure_id}
    items = [dict(a) for a in pm.body.get("action_items") or []]
    return {
        "pm": pm,
        "sections": [(key, heading, str(pm.body.get(key) or "")) for key, heading in
                     SECTIONS.items()],
        "timeline": list(pm.body.get("timeline") or []),
        "action_items": items,
        "open_items": sum(1 for a in items if a.get("status", "open") == "open"),
        "lessons": list(pm.body.get("lessons") or []),
        "evidence": dict(pm.body.get("evidence") or {}),
        "failure": failure,
    }


def _from_form(form: FormData, pm: PostMortem) -> tuple[str | None, str | None, dict[str, Any]]:
    """The title, status and sections an edit form submitted, checked field by field."""

    def text(name: str) -> str | None:
        value = form.get(name)
        if value is None:
            return None
        if not isinstance(value, str):
            raise FormInvalid(name, "must be text, not a file")
        if len(value) > _TEXT:
            raise FormInvalid(name, f"is longer than {_TEXT:,} characters")
        return value.replace("\r\n", "\n")

    title = (text("title") or "").strip() or None
    status = text("status") or None
    if status is not None and status not in PM_STATUSES:
        raise FormInvalid("status", f"must be one of {', '.join(PM_STATUSES)}; got {status!r}")
    sections: dict[str, Any] = {}
    for key in SECTIONS:
        value = text(key)
        if value is not None:
            sections[key] = value.strip()
    timeline = text("timeline")
    if timeline is not None:
        lines = [ln.strip() for ln in timeline.splitlines() if ln.strip()]
        # The Markdown reader splits "at — event" exactly as the CLI's editor does.
        bullets = "\n".join(ln if ln[:2] in ("- ", "* ", "+ ") else f"- {ln}" for ln in lines)
        sections["timeline"] = parse_markdown(f"## Timeline\n{bullets}\n")["sections"].get(
            "timeline", [])
    items = []
    for i in range(MAX_ITEM_ROWS):
        if f"action-{i}-text" not in form:
            break
        what = (text(f"action-{i}-text") or "").strip()
        owner = (text(f"action-{i}-owner") or "").strip()
        state = text(f"action-{i}-status") or "open"
        if not what:
            if owner:
                raise FormInvalid(f"action-{i}-text", "an action item with an owner needs a text")
            continue  # an empty row, or an item cleared to remove it
        if state not in ACTION_STATUSES:
            raise FormInvalid(
                f"action-{i}-status", f"must be one of {', '.join(ACTION_STATUSES)}; got {state!r}"
            )
        if len(owner) > 200:
            raise FormInvalid(f"action-{i}-owner", "is longer than 200 characters")
        items.append({"text": what, "owner": owner, "status": state})
    if "action-0-text" in form:
        sections["action_items"] = items
    new_lessons = text("new_lessons")
    if new_lessons is not None and new_lessons.strip():
        kept = [dict(les) for les in pm.body.get("lessons") or []]
        added = [{"text": ln.strip()} for ln in new_lessons.splitlines() if ln.strip()]
        sections["lessons"] = kept + added
    return title, status, sections
