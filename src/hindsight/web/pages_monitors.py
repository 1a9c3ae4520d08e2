"""The Monitors & alerts pages and their API.

``register(app, ctx)`` adds ``/monitors`` (every monitor: windows judged, the last one,
findings flagged lately, open incidents), ``/monitors/{project}/{name}`` (a page of its
judged windows with every check's verdict, one chart per check and key of its value over
the windows, flagged windows as dots, and its incidents with an "Open post-mortem" form)
and their ``/api/v1/monitors…`` counterparts. The Data pages are in
:mod:`hindsight.web.pages_data`.
"""

import math
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import Depends, FastAPI, Query, Request
from fastapi.responses import HTMLResponse

from hindsight.errors import NotFound
from hindsight.ledger.records import iso
from hindsight.reports.lines_svg import Series, line_chart_svg
from hindsight.store.base import Row
from hindsight.store.listing_monitors import (
    RECENT_WINDOWS,
    list_monitors,
    monitor_incidents,
    monitor_series,
    window_page,
)
from hindsight.web.auth import Principal
from hindsight.web.context import PAGE_SIZE, WebContext, page_count

__all__ = ["register"]

#: Charts on a monitor's page draw its newest this-many judged windows.
CHART_WINDOWS = 400
#: At most this many charts (one per check and key) on a monitor's page.
MAX_CHARTS = 24


def register(app: FastAPI, ctx: WebContext) -> None:
    """Add the monitors pages and API routes to ``app``."""
    store = ctx.store
    page_user, api_user, render = ctx.page_user, ctx.api_user, ctx.render

    # -- monitors: pages -------------------------------------------------------------

    @app.get("/monitors", response_class=HTMLResponse, include_in_schema=False)
    def monitors_page(
        request: Request, who: Annotated[Principal, Depends(page_user)]
    ) -> HTMLResponse:
        rows = [_monitor_json(r) for r in _monitors()]
        return render(request, "monitors.html.j2", who, rows=rows, recent=RECENT_WINDOWS)

    @app.get("/monitors/{project}/{name}", response_class=HTMLResponse, include_in_schema=False)
    def monitor_page(
        request: Request,
        project: str,
        name: str,
        who: Annotated[Principal, Depends(page_user)],
        page: Annotated[int, Query(ge=1)] = 1,
    ) -> HTMLResponse:
        detail = _monitor(project, name, page)
        base = f"/monitors/{quote(project, safe='')}/{quote(name, safe='')}"
        return render(
            request, "monitor.html.j2", who, m=detail, recent=RECENT_WINDOWS,
            charts=_charts(project, name),
            can_edit=who.can("editor") and who.csrf is not None,
            prev_url=f"{base}?page={page - 1}" if page > 1 else None,
            next_url=f"{base}?page={page + 1}" if page < detail["pages"] else None,
        )

    # -- monitors: JSON API ----------------------------------------------------------

    @app.get("/api/v1/monitors", tags=["monitors"])
    def list_monitors_api(
        _who: Annotated[Principal, Depends(api_user("viewer"))],
    ) -> dict[str, Any]:
        """Every monitor: windows stored and judged, the last one, flagged lately, incidents."""
        return {"items": [_monitor_json(r) for r in _monitors()], "recent_windows": RECENT_WINDOWS}

    @app.get("/api/v1/monitors/{project}/{name}", tags=["monitors"])
    def get_monitor_api(
        project: str,
        name: str,
        _who: Annotated[Principal, Depends(api_user("viewer"))],
        page: Annotated[int, Query(ge=1, le=1_000_000)] = 1,
    ) -> dict[str, Any]:
        """A monitor with one page of its judged windows (newest first) and its incidents."""
        d = _monitor(project, name, page)
        return {
            **d["summary"],
            "windows": d["windows"],
            "incidents": d["incidents"],
            "total": d["total"], "page": page, "page_size": PAGE_SIZE, "pages": d["pages"],
        }

    # -- reading ---------------------------------------------------------------------

    def _monitors() -> list[Row]:
        rows = list_monitors(store)
        incidents: dict[str, list[Row]] = {}
        for r in rows:
            if r["project"] not in incidents:
                incidents[r["project"]] = monitor_incidents(store, r["project"])
            own = [i for i in incidents[r["project"]] if i["check"] in r["checks"]]
            r["open_incidents"] = sum(1 for i in own if i["open"])
            r["incidents"] = len(own)
        return rows

    def _monitor(project: str, name: str, page: int) -> dict[str, Any]:
        found = list_monitors(store, project=project, monitor=name)
        if not found:
            raise NotFound(f"No monitor {name!r} in project {project!r}.")
        summary = found[0]
        windows, total = window_page(
            store, project, name, offset=(page - 1) * PAGE_SIZE, limit=PAGE_SIZE
        )
        for w in windows:
            w["window"], w["window_end_iso"] = iso(w["window_start"]), iso(w["window_end"])
        incidents = monitor_incidents(store, project, checks=summary["checks"])
        for i in incidents:
            i["created"] = iso(i["created_at"])
        summary["open_incidents"] = sum(1 for i in incidents if i["open"])
        summary["incidents"] = len(incidents)
        return {"summary": _monitor_json(summary), "windows": windows, "total": total,
                "pages": page_count(total), "page": page, "incidents": incidents}

    def _charts(project: str, name: str) -> list[dict[str, Any]]:
        by_key: dict[tuple[str, str], list[Row]] = {}
        for r in monitor_series(store, project, name, windows=CHART_WINDOWS):
            by_key.setdefault((r["check"], r["key"]), []).append(r)
        out = []
        for (check, key), rows in sorted(by_key.items())[:MAX_CHARTS]:
            pts = [r for r in rows if r["value"] is not None and math.isfinite(r["value"])]
            if not pts:
                continue
            x0 = pts[0]["window_start"]
            xs = [(r["window_start"] - x0) / 86400.0 for r in pts]
            ys = [float(r["value"]) for r in pts]
            flagged = [i for i, r in enumerate(pts) if r["flagged"]]
            series = [Series(xs, ys)]
            if flagged:
                series.append(Series([xs[i] for i in flagged], [ys[i] for i in flagged],
                                     css="flag", dots=True))
            since = (iso(x0) or "")[:10]
            svg = line_chart_svg(
                series, label=f"{check} {key} by window", x_title=f"days since {since}",
                y_title=check,
            )
            if svg is not None:
                out.append({"check": check, "key": key, "svg": svg, "points": len(pts),
                            "flagged": len(flagged)})
        return out


def _monitor_json(r: Row) -> dict[str, Any]:
    return {
        **r,
        "first_window_iso": iso(r["first_window"]),
        "last_window_iso": iso(r["last_window"]),
        "updated": iso(r["updated_at"]),
    }
