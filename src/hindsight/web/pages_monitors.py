"""The Monitors & alerts pages, the Data pages and their API.

``register(app, ctx)`` adds ``/monitors`` (every monitor: windows judged, the last one,
findings flagged lately, open incidents), ``/monitors/{project}/{name}`` (a page of its
judged windows with every check's verdict, one chart per check and key of its value over
the windows, flagged windows as dots, and its incidents with an "Open post-mortem" form),
``/data`` (stored reference profiles) and ``/data/{project}/{name}`` (a profile's columns:
type, counts, quantiles and a histogram or the top categories), and their ``/api/v1``
counterparts (``/api/v1/monitors…``, ``/api/v1/profiles…``).
"""

import math
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import Depends, FastAPI, Query, Request
from fastapi.responses import HTMLResponse
from markupsafe import Markup, escape

from hindsight.data import CategoricalColumnProfile, DatasetProfile, NumericColumnProfile
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
#: Bars in a numeric column's histogram; categories shown for a categorical column.
HIST_BINS = 20
TOP_CATEGORIES = 10


def register(app: FastAPI, ctx: WebContext) -> None:
    """Add the monitors and data pages and API routes to ``app``."""
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

    # -- data: pages -----------------------------------------------------------------

    @app.get("/data", response_class=HTMLResponse, include_in_schema=False)
    def data_page(request: Request, who: Annotated[Principal, Depends(page_user)]) -> HTMLResponse:
        return render(request, "data.html.j2", who, rows=_profiles())

    @app.get("/data/{project}/{name}", response_class=HTMLResponse, include_in_schema=False)
    def profile_page(
        request: Request, project: str, name: str, who: Annotated[Principal, Depends(page_user)]
    ) -> HTMLResponse:
        row, prof = _profile(project, name)
        columns = [_column_view(c) for c in prof.columns.values()]
        return render(request, "profile.html.j2", who, p=row, columns=columns,
                      skipped=dict(prof.skipped))

    # -- data: JSON API --------------------------------------------------------------

    @app.get("/api/v1/profiles", tags=["data"])
    def list_profiles_api(
        _who: Annotated[Principal, Depends(api_user("viewer"))],
    ) -> dict[str, Any]:
        """The newest version of every stored profile, with how many versions there are."""
        return {"items": [{**r, "created": iso(r["created_at"])} for r in _profiles()]}

    @app.get("/api/v1/profiles/{project}/{name}", tags=["data"])
    def get_profile_api(
        project: str, name: str, _who: Annotated[Principal, Depends(api_user("viewer"))]
    ) -> dict[str, Any]:
        """The newest stored profile of the name: every column's statistics (no arrays)."""
        row, prof = _profile(project, name)
        return {**row, "created": iso(row["created_at"]), **prof.describe()}

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

    def _profiles() -> list[Row]:
        newest: dict[tuple[str, str], Row] = {}
        for r in store.list_profiles():  # newest first
            k = (str(r["project"]), str(r["name"]))
            if k in newest:
                newest[k]["versions"] += 1
            else:
                newest[k] = {**r, "versions": 1}
        return [newest[k] for k in sorted(newest)]

    def _profile(project: str, name: str) -> tuple[Row, DatasetProfile]:
        row = store.load_profile(project, name)
        if row is None:
            raise NotFound(f"No stored profile {name!r} in project {project!r}.")
        prof = DatasetProfile.from_bytes(bytes(row["data"]))
        meta = {k: v for k, v in row.items() if k != "data"}
        return meta, prof


def _monitor_json(r: Row) -> dict[str, Any]:
    return {
        **r,
        "first_window_iso": iso(r["first_window"]),
        "last_window_iso": iso(r["last_window"]),
        "updated": iso(r["updated_at"]),
    }


# -- a profile's columns, for the page ----------------------------------------------------


def _number(v: float | None, kind: str = "numeric") -> str:
    if v is None or not math.isfinite(v):
        return "—"
    if kind == "datetime":
        return iso(v) or "—"
    if v == int(v) and abs(v) < 1e15:
        return f"{int(v):,}"
    if abs(v) >= 1e5 or abs(v) < 1e-3:
        return f"{v:.3e}"
    return f"{v:.4g}"


def _bars_svg(heights: list[float], label: str, titles: list[str]) -> Markup | None:
    """Small vertical bars (a histogram, category counts); escaped text only."""
    vals = [h if math.isfinite(h) and h > 0 else 0.0 for h in heights]
    top = max(vals, default=0.0)
    if not vals or top <= 0:
        return None
    w, h, gap = 240.0, 56.0, 1.0
    bw = w / len(vals)
    parts = [
        f'<svg class="bars" viewBox="0 0 {w:g} {h:g}" width="{w:g}" height="{h:g}" '
        f'role="img" aria-label="{escape(label)}">'
    ]
    for i, (v, title) in enumerate(zip(vals, titles, strict=True)):
        bh = max(h * v / top, 1.0 if v > 0 else 0.0)
        parts.append(
            f'<rect x="{i * bw + gap / 2:.2f}" y="{h - bh:.2f}" width="{max(bw - gap, 0.5):.2f}" '
            f'height="{bh:.2f}"><title>{escape(title)}</title></rect>'
        )
    parts.append("</svg>")
    return Markup("".join(parts))


def _column_view(col: NumericColumnProfile | CategoricalColumnProfile) -> dict[str, Any]:
    distinct = col.n_distinct
    view: dict[str, Any] = {
        "name": col.name,
        "kind": col.kind,
        "type": col.arrow_type,
        "count": col.count,
        "nulls": col.null_count,
        "missing": col.missing,
        "null_rate": f"{100 * col.null_rate:.1f}%",
        "distinct": f"{round(distinct):,}" if math.isfinite(distinct) else "—",
        "distinct_exact": col.distinct.exact,
        "numeric": isinstance(col, NumericColumnProfile),
        "stats": [],
        "quantiles": [],
        "top": [],
        "other_count": 0,
        "bars": None,
    }
    if isinstance(col, NumericColumnProfile):
        kind = col.kind
        view["stats"] = [
            ("min", _number(col.min, kind)), ("mean", _number(col.mean, kind)),
            ("std", _number(col.std) if kind != "datetime" else f"{_number(col.std)} s"),
            ("max", _number(col.max, kind)), ("NaN", f"{col.nan_count:,}"),
            ("±inf", f"{col.inf_count:,}"),
        ]
        view["quantiles"] = [(q, _number(v, kind)) for q, v in col.quantiles().items()]
        hist = col.histogram(HIST_BINS)
        edges, counts = hist["edges"], hist["counts"]
        if counts:
            titles = [
                f"{_number(edges[i], kind)} to {_number(edges[i + 1], kind)}: "
                f"{_number(round(c))}"
                for i, c in enumerate(counts)
            ]
            view["bars"] = _bars_svg([float(c) for c in counts],
                                     f"histogram of {col.name}", titles)
            view["range"] = (_number(edges[0], kind), _number(edges[-1], kind))
    else:
        top = [(lab, int(c)) for lab, c in zip(col.labels, col.counts, strict=True)]
        view["top"] = top[:TOP_CATEGORIES]
        view["other_count"] = col.other_count + sum(c for _, c in top[TOP_CATEGORIES:])
        view["bars"] = _bars_svg(
            [float(c) for _, c in view["top"]], f"top categories of {col.name}",
            [f"{lab}: {c:,}" for lab, c in view["top"]],
        )
    view.setdefault("range", None)
    return view
