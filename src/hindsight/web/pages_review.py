"""The Review queue pages and API: cases the served models sent to people, and decisions.

``register(app, ctx)`` adds ``/review`` (a filtered, paged list of review items),
``/review/{id}`` (one item in full, with an editor's Claim and Decide forms) and their
``/api/v1/review`` counterparts. Every change goes through the store-backed
:class:`~hindsight.review.ReviewQueue` of the item's service, acting as the logged-in
user; a decision is then recorded as the prediction's label in the outcome log
(``Decision.as_label()``), as :meth:`hindsight.serving.Service.decide` does.
"""

import json
import time
from typing import Annotated, Any, Literal
from urllib.parse import urlencode

from fastapi import Depends, FastAPI, Form, HTTPException, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import BaseModel, ConfigDict, Field

from hindsight.errors import NotFound, ReviewError, ReviewNotFound
from hindsight.ledger.ids import new_id
from hindsight.ledger.records import iso
from hindsight.review import Decision, ReviewItem, ReviewQueue
from hindsight.store.base import Row
from hindsight.store.listing_review import (
    review_item_row,
    review_outcomes,
    review_services,
    search_review_items,
)
from hindsight.store.schema import SCHEMA_VERSION
from hindsight.web.auth import Principal
from hindsight.web.context import PAGE_SIZE, WebContext, page_count

__all__ = ["DecideIn", "register"]

#: The status filter: one of the queue's statuses, or "" for any.
StatusFilter = Literal["", "pending", "claimed", "decided", "expired"]
_NOTE_MAX = 10_000


class DecideIn(BaseModel):
    """A reviewer's decision (``POST /api/v1/review/{id}/decide``)."""

    model_config = ConfigDict(extra="forbid")
    decision: Any = Field(description="The reviewer's answer (any JSON value but null).")
    note: str | None = Field(default=None, max_length=_NOTE_MAX)


class ReviewRefused(Exception):
    """The queue refused a claim or decision (wrong state or reviewer): a 409."""


def register(app: FastAPI, ctx: WebContext) -> None:
    """Add the review queue pages and API routes to ``app``."""
    store = ctx.store
    page_user, page_editor, api_user, render = (
        ctx.page_user, ctx.page_editor, ctx.api_user, ctx.render
    )

    # -- pages -----------------------------------------------------------------------

    @app.get("/review", response_class=HTMLResponse, include_in_schema=False)
    def review_page(
        request: Request,
        who: Annotated[Principal, Depends(page_user)],
        service: str = "",
        status: StatusFilter = "pending",
        page: Annotated[int, Query(ge=1)] = 1,
    ) -> HTMLResponse:
        rows, total = _search(service, status, page)
        pages = page_count(total)
        kept: dict[str, str] = {"service": service, "status": status} if service else {
            "status": status
        }
        return render(
            request, "review.html.j2", who, rows=[_list_view(r) for r in rows], total=total,
            page=page, pages=pages, filters={"service": service, "status": status},
            services=review_services(store), statuses=("pending", "claimed", "decided",
                                                       "expired"),
            prev_url=_page_url(kept, page - 1) if page > 1 else None,
            next_url=_page_url(kept, page + 1) if page < pages else None,
        )

    @app.get("/review/{item_id}", response_class=HTMLResponse, include_in_schema=False)
    def review_item_page(
        request: Request, item_id: str, who: Annotated[Principal, Depends(page_user)]
    ) -> HTMLResponse:
        detail = _detail(item_id)
        return render(request, "review_item.html.j2", who, it=_page_view(detail))

    @app.post("/review/{item_id}/claim", include_in_schema=False)
    def claim_form(
        request: Request, item_id: str, who: Annotated[Principal, Depends(page_editor)]
    ) -> Response:
        try:
            _claim(item_id, who)
        except ReviewRefused as exc:
            return ctx.error(request, 409, str(exc))
        return RedirectResponse(f"/review/{item_id}#decide", status_code=303)

    @app.post("/review/{item_id}/decide", include_in_schema=False)
    def decide_form(
        request: Request,
        item_id: str,
        who: Annotated[Principal, Depends(page_editor)],
        choice: Annotated[str, Form()] = "",
        answer: Annotated[str, Form()] = "",
        note: Annotated[str, Form(max_length=_NOTE_MAX)] = "",
    ) -> Response:
        item = _item(item_id)
        if choice == "accept":
            output = item.proposed_output
        elif choice == "answer":
            output = _parse_answer(answer)
        else:
            raise HTTPException(
                422, "Choose 'accept' (the model's answer) or 'answer' (your own)."
            )
        try:
            _decide(item, who, output, note.strip() or None)
        except ReviewRefused as exc:
            return ctx.error(request, 409, str(exc))
        return RedirectResponse(f"/review/{item_id}#decision", status_code=303)

    # -- JSON API --------------------------------------------------------------------

    @app.get("/api/v1/review", tags=["review"])
    def list_review_api(
        _who: Annotated[Principal, Depends(api_user("viewer"))],
        service: str = "",
        status: StatusFilter = "pending",
        page: Annotated[int, Query(ge=1, le=1_000_000)] = 1,
    ) -> dict[str, Any]:
        """One page of review items (``status=`` for any status), highest priority first."""
        rows, total = _search(service, status, page)
        return {"items": [_api_row(r) for r in rows], "total": total, "page": page,
                "page_size": PAGE_SIZE, "pages": page_count(total)}

    @app.get("/api/v1/review/{item_id}", tags=["review"])
    def get_review_api(
        item_id: str, _who: Annotated[Principal, Depends(api_user("viewer"))]
    ) -> dict[str, Any]:
        """One review item in full, whether the decision overrode the model, its labels."""
        return _api_detail(_detail(item_id))

    @app.post("/api/v1/review/{item_id}/claim", tags=["review"])
    def claim_api(
        item_id: str, who: Annotated[Principal, Depends(api_user("editor"))]
    ) -> dict[str, Any]:
        """Claim a pending item for the caller; 409 when it is not pending."""
        try:
            _claim(item_id, who)
        except ReviewRefused as exc:
            raise HTTPException(409, str(exc)) from exc
        return _api_detail(_detail(item_id))

    @app.post("/api/v1/review/{item_id}/decide", tags=["review"])
    def decide_api(
        item_id: str, body: DecideIn, who: Annotated[Principal, Depends(api_user("editor"))]
    ) -> dict[str, Any]:
        """Decide an item the caller claimed; the decision becomes the prediction's label."""
        item = _item(item_id)
        output = _check_output(body.decision)
        note = body.note.strip() if body.note else None
        try:
            _decide(item, who, output, note or None)
        except ReviewRefused as exc:
            raise HTTPException(409, str(exc)) from exc
        return _api_detail(_detail(item_id))

    # -- helpers ---------------------------------------------------------------------

    def _search(service: str, status: str, page: int) -> tuple[list[Row], int]:
        return search_review_items(
            store, service=service or None, status=status or None,
            offset=(page - 1) * PAGE_SIZE, limit=PAGE_SIZE,
        )

    def _queue(service: str) -> ReviewQueue:
        # The same store-backed queue the service shares; capacity and SLA only gate
        # submissions, which the team server never makes.
        return ReviewQueue(store=store, service=service)

    def _item(item_id: str) -> ReviewItem:
        row = review_item_row(store, item_id)
        if row is None:
            raise NotFound(f"No review item {item_id!r}. See the queue at /review.")
        try:
            return _queue(str(row["service"])).get(item_id)
        except ReviewNotFound as exc:
            raise NotFound(str(exc)) from exc

    def _detail(item_id: str) -> dict[str, Any]:
        row = review_item_row(store, item_id)
        if row is None:
            raise NotFound(f"No review item {item_id!r}. See the queue at /review.")
        item = _queue(str(row["service"])).get(item_id)
        outcomes = review_outcomes(store, item.prediction_id) if item.prediction_id else []
        return {
            "item": item,
            "confidence": row.get("confidence"),
            "tier": row.get("tier"),
            "served_output": row.get("served_output"),
            "served_reason": row.get("served_reason"),
            "overridden": _overridden(item),
            "labels": [
                {"id": o["id"], "label": o["label"], "reward": o["reward"],
                 "created_at": o["created_at"]}
                for o in outcomes
            ],
        }

    def _claim(item_id: str, who: Principal) -> None:
        item = _item(item_id)
        try:
            _queue(item.service).claim(item.id, who.name)
        except ReviewNotFound as exc:
            raise NotFound(str(exc)) from exc
        except ReviewError as exc:
            raise ReviewRefused(str(exc)) from exc

    def _decide(item: ReviewItem, who: Principal, output: Any, note: str | None) -> Decision:
        try:
            decision = _queue(item.service).decide(item.id, who.name, output, note=note)
        except ReviewNotFound as exc:
            raise NotFound(str(exc)) from exc
        except ReviewError as exc:
            raise ReviewRefused(str(exc)) from exc
        prediction_id, label = decision.as_label()
        if prediction_id:
            store.record_outcomes([{
                "id": new_id("outcome"), "prediction_id": prediction_id, "label": label,
                "reward": None, "created_at": time.time(), "schema_version": SCHEMA_VERSION,
            }])  # fmt: skip
        return decision


# -- views -------------------------------------------------------------------------------


def _overridden(item: ReviewItem) -> bool | None:
    """Whether a decided item's answer differs from the proposed one (None if undecided)."""
    if item.status != "decided":
        return None
    return Decision(
        item_id=item.id, prediction_id=item.prediction_id, reviewer=item.reviewer or "",
        output=item.decision, proposed_output=item.proposed_output, note=item.note,
        decided_at=item.decided_at or 0.0,
    ).overridden


def _row_overridden(row: Row) -> bool | None:
    if row["status"] != "decided":
        return None
    return bool(row["decision"] != row["proposed_output"])


def _show(value: Any) -> str:
    """A JSON value as people read it: strings bare, anything else as compact JSON."""
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False, sort_keys=True)


def _due(status: str, due_at: float | None) -> dict[str, Any]:
    """The due time as ISO text, and whether an open item is past it."""
    late = status in ("pending", "claimed") and due_at is not None and due_at < time.time()
    return {"due": iso(due_at) or "—", "overdue": late}


def _list_view(row: Row) -> dict[str, Any]:
    return {**row, "proposed": _show(row["proposed_output"]),
            "overridden": _row_overridden(row), **_due(row["status"], row["due_at"])}


def _api_row(row: Row) -> dict[str, Any]:
    out = {**row, "priority": int(row["priority"] or 0), "overridden": _row_overridden(row)}
    out.pop("schema_version", None)
    for key in ("created_at", "claimed_at", "decided_at", "due_at"):
        out[key.removesuffix("_at")] = iso(row[key])
    return out


def _api_detail(detail: dict[str, Any]) -> dict[str, Any]:
    item: ReviewItem = detail["item"]
    labels = [{**x, "created": iso(x["created_at"])} for x in detail["labels"]]
    return {
        **item.to_dict(),
        "created": iso(item.created_at), "claimed": iso(item.claimed_at),
        "decided": iso(item.decided_at), "due": iso(item.due_at),
        "confidence": detail["confidence"], "overridden": detail["overridden"],
        "labels": labels,
    }  # fmt: skip


def _page_view(detail: dict[str, Any]) -> dict[str, Any]:
    item: ReviewItem = detail["item"]
    inputs = [(str(k), _show(v)) for k, v in sorted(item.inputs.items(), key=lambda kv: str(kv[0]))]
    history: list[tuple[float | None, str]] = [
        (item.created_at, f"Sent for review: {item.reason or 'no reason given'}"),
    ]
    if item.claimed_at is not None:
        history.append((item.claimed_at, f"Claimed by {item.reviewer}"))
    if item.decided_at is not None:
        history.append((item.decided_at, f"Decided by {item.reviewer}: {_show(item.decision)}"))
    if item.status == "expired":
        history.append((item.due_at, "Expired unreviewed (the served answer stands)"))
    for x in detail["labels"]:
        history.append((x["created_at"], f"Label recorded: {_show(x['label'])}"))
    history.sort(key=lambda h: h[0] or 0.0)
    return {
        **detail,
        "inputs": inputs,
        "inputs_json": json.dumps(dict(item.inputs), indent=2, sort_keys=True, default=str),
        "proposed": _show(item.proposed_output),
        "decision": _show(item.decision) if item.status == "decided" else None,
        "served": _show(detail["served_output"]) if detail["tier"] is not None else None,
        "labels": [{**x, "shown": _show(x["label"])} for x in detail["labels"]],
        "history": history,
        **_due(item.status, item.due_at),
    }


# -- parsing -----------------------------------------------------------------------------


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON a store keeps")


def _parse_answer(text: str) -> Any:
    """The reviewer's own answer: JSON if it parses, else the text as a string."""
    text = text.strip()
    if not text:
        raise HTTPException(422, "Give your answer, or accept the model's.")
    try:
        value = json.loads(text, parse_constant=_no_constant)
    except ValueError:
        value = text
    return _check_output(value)


def _check_output(value: Any) -> Any:
    if value is None:
        raise HTTPException(422, "A decision needs an answer; null is not one.")
    try:
        json.dumps(value, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise HTTPException(422, f"The decision must be plain JSON: {exc}.") from exc
    return value


def _page_url(filters: dict[str, str], page: int) -> str:
    return "/review?" + urlencode({**filters, "page": page})
