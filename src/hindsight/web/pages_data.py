"""The Data pages and their API: stored reference profiles and stored drift reports.

``register(app, ctx)`` adds ``/data`` (the newest version of every stored profile, and a
filtered, paged list of stored drift reports), ``/data/drift/{id}`` (one drift report:
the dataset verdict with its rule, schema changes, every column's test, statistic,
p-value, effect size and verdict, and its reference and current distributions drawn as
inline SVG), ``/data/{project}/{name}`` (a profile's columns: type, counts, quantiles and
a histogram or the top categories), and their ``/api/v1`` counterparts
(``/api/v1/profiles…``, ``/api/v1/drift-reports…``, and ``POST /api/v1/drift-reports``,
with which a client stores the JSON of ``DriftReport.to_dict()``).
"""

import json
import math
from collections.abc import Callable, Coroutine, Mapping
from typing import Annotated, Any, Literal
from urllib.parse import urlencode

from fastapi import Body, Depends, FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, Response
from fastapi.routing import APIRoute
from markupsafe import Markup, escape

from hindsight.data import CategoricalColumnProfile, DatasetProfile, NumericColumnProfile
from hindsight.drift import ReportDocument, save_drift_report
from hindsight.drift.document import document_of
from hindsight.errors import DriftError, NotFound
from hindsight.ledger.ids import kind_of
from hindsight.ledger.records import iso
from hindsight.reports.svg import bars_svg, histogram_svg
from hindsight.store.base import Row
from hindsight.web.auth import Principal
from hindsight.web.context import API_ERRORS, PAGE_SIZE, WebContext, page_count

__all__ = ["DriftedParam", "register"]

#: The drift-report filter's values as the OpenAPI spec states them ("" is no filter).
DriftedParam = Literal["", "yes", "no"]
#: Bars in a numeric column's histogram; categories shown for a categorical column.
HIST_BINS = 20
TOP_CATEGORIES = 10

_DRIFTED = {"": None, "yes": True, "no": False}
#: A report's name: no control characters, not only spaces (what save_drift_report takes).
_NAME = r"^[^\x00-\x1f]*[^\s\x00-\x1f][^\x00-\x1f]*$"
_REPORT_BODY = Body(
    description="A drift report: the JSON of `DriftReport.to_dict()` (schema "
    "`hindsight.drift_report/1`), as `hindsight drift --json` writes it.",
)


def register(app: FastAPI, ctx: WebContext) -> None:
    """Add the data pages and API routes to ``app``."""
    ledger, store = ctx.ledger, ctx.store
    page_user, api_user, render = ctx.page_user, ctx.api_user, ctx.render

    # -- pages -----------------------------------------------------------------------

    @app.get("/data", response_class=HTMLResponse, include_in_schema=False)
    def data_page(
        request: Request,
        who: Annotated[Principal, Depends(page_user)],
        project: str = "",
        name: str = "",
        drifted: DriftedParam = "",
        page: Annotated[int, Query(ge=1, le=1_000_000)] = 1,
    ) -> HTMLResponse:
        filters = {"project": project, "name": name, "drifted": drifted}
        all_profiles = _profiles()
        profiles = [
            r for r in all_profiles
            if (not project or r["project"] == project) and (not name or r["name"] == name)
        ]
        reports, total = _reports(filters, page)
        pages = page_count(total)
        kept = {k: v for k, v in filters.items() if v}
        return render(
            request, "data.html.j2", who, rows=profiles, any_profiles=bool(all_profiles),
            reports=reports, total=total, page=page, pages=pages, filters=filters,
            projects=sorted({*store.drift_report_projects(), *(r["project"] for r in all_profiles)}),
            names=sorted({*store.drift_report_names(), *(r["name"] for r in all_profiles)}),
            prev_url=_page_url(kept, page - 1) if page > 1 else None,
            next_url=_page_url(kept, page + 1) if page < pages else None,
        )

    # Declared before the profile page, whose /data/{project}/{name} would match it too.
    @app.get("/data/drift/{report_id}", response_class=HTMLResponse, include_in_schema=False)
    def drift_report_page(
        request: Request, report_id: str, who: Annotated[Principal, Depends(page_user)]
    ) -> HTMLResponse:
        if kind_of(report_id) != "drift_report":  # a profile of a project called "drift"
            return profile_page(request, "drift", report_id, who)
        row = store.get_drift_report(report_id)
        doc: Mapping[str, Any] = row.pop("report")
        return render(request, "drift_report.html.j2", who, r=_summary(row),
                      **_report_view(doc))

    @app.get("/data/{project}/{name}", response_class=HTMLResponse, include_in_schema=False)
    def profile_page(
        request: Request, project: str, name: str, who: Annotated[Principal, Depends(page_user)]
    ) -> HTMLResponse:
        row, prof = _profile(project, name)
        columns = [_column_view(c) for c in prof.columns.values()]
        return render(request, "profile.html.j2", who, p=row, columns=columns,
                      skipped=dict(prof.skipped))

    # -- JSON API: profiles ----------------------------------------------------------

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

    # -- JSON API: drift reports -----------------------------------------------------

    @app.get("/api/v1/drift-reports", tags=["data"])
    def list_drift_reports_api(
        _who: Annotated[Principal, Depends(api_user("viewer"))],
        project: str = "",
        name: str = "",
        drifted: DriftedParam = "",
        page: Annotated[int, Query(ge=1, le=1_000_000)] = 1,
    ) -> dict[str, Any]:
        """One page of stored drift reports (without their documents), newest first."""
        rows, total = _reports({"project": project, "name": name, "drifted": drifted}, page)
        return {"items": rows, "total": total, "page": page, "page_size": PAGE_SIZE,
                "pages": page_count(total)}

    @app.get("/api/v1/drift-reports/{report_id}", tags=["data"])
    def get_drift_report_api(
        report_id: str, _who: Annotated[Principal, Depends(api_user("viewer"))]
    ) -> dict[str, Any]:
        """A stored drift report: where it is filed, and its document under ``report``."""
        row = store.get_drift_report(report_id)
        doc = row.pop("report")
        return {**_summary(row), "report": doc}

    def post_drift_report_api(
        report: Annotated[ReportDocument, _REPORT_BODY],
        _who: Annotated[Principal, Depends(api_user("editor"))],
        name: Annotated[str, Query(min_length=1, max_length=200, pattern=_NAME)],
        project: Annotated[str, Query(max_length=200, pattern=f"^({_NAME[1:-1]})?$")] = "",
    ) -> dict[str, Any]:
        """Store a drift report under a name (and a project: the server's by default).

        The body is the JSON of ``DriftReport.to_dict()``; one that is not a
        ``hindsight.drift_report/1`` document is refused with 422, saying which field is
        wrong. The report's ``drifted_columns`` and counts are taken from its columns.
        Returns where it is filed, as the listing shows it.
        """
        try:
            doc = document_of(report)
        except DriftError as exc:
            raise _invalid("body", exc) from None
        try:
            report_id = save_drift_report(doc, name, ledger=ledger, project=project or None)
        except DriftError as exc:
            raise _invalid("query", exc) from None
        row = store.get_drift_report(report_id)
        row.pop("report")
        return _summary(row)

    # Its own route class: the body is parsed refusing NaN and Infinity (see
    # _FiniteJSONRoute). Added to the app's router itself, where the 405 handler sees it.
    app.router.add_api_route(
        "/api/v1/drift-reports", post_drift_report_api, methods=["POST"], status_code=201,
        tags=["data"], responses=API_ERRORS, route_class_override=_FiniteJSONRoute,
    )

    # -- reading ---------------------------------------------------------------------

    def _reports(filters: Mapping[str, str], page: int) -> tuple[list[dict[str, Any]], int]:
        rows, total = store.list_drift_reports(
            project=filters["project"] or None, name=filters["name"] or None,
            drifted=_DRIFTED[filters["drifted"]], page=page, per_page=PAGE_SIZE,
        )
        return [_summary(r) for r in rows], total

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


def _not_json(word: str) -> Any:
    raise json.JSONDecodeError(f"{word} is not JSON; write null for a missing number", word, 0)


class _FiniteJSONRequest(Request):
    """A request whose JSON body may not hold NaN or Infinity.

    Python's parser takes them, but they are not JSON, and FastAPI's 422 for a body that
    holds one echoes it into a response it cannot encode (a 500). Refused here, they get
    FastAPI's own 422 for a body that is not JSON.
    """

    async def json(self) -> Any:
        if not hasattr(self, "_json"):
            self._json = json.loads(await self.body(), parse_constant=_not_json)
        return self._json


class _FiniteJSONRoute(APIRoute):
    """A route whose handler reads its request as a :class:`_FiniteJSONRequest`."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def finite(request: Request) -> Response:
            return await handler(_FiniteJSONRequest(request.scope, request.receive))

        return finite


def _invalid(where: str, exc: DriftError) -> RequestValidationError:
    """A 422 in FastAPI's own (documented) shape, with our message."""
    return RequestValidationError(
        [{"type": "value_error", "loc": (where,), "msg": str(exc), "input": None}]
    )


def _summary(row: Row) -> dict[str, Any]:
    """A stored report's listing row, with its time in ISO form and its page."""
    return {**row, "created": iso(row["created_at"]), "url": f"/data/drift/{row['id']}"}


def _page_url(filters: dict[str, str], page: int) -> str:
    return "/data?" + urlencode({**filters, "page": page})


# -- a drift report, for the page ---------------------------------------------------------


def _num(x: Any) -> str:
    """A statistic or effect size, short."""
    if isinstance(x, bool) or not isinstance(x, int | float) or not math.isfinite(x):
        return "—"
    if x == 0:
        return "0"
    if 1e-3 <= abs(x) < 1e4:
        return f"{x:.4g}"
    return f"{x:.3e}"


def _p(x: Any) -> str:
    """A p-value: three decimals, or scientific below 0.001."""
    if isinstance(x, bool) or not isinstance(x, int | float) or not math.isfinite(x):
        return "—"
    if x <= 0:
        return "< 1e-300"
    return f"{x:.3f}" if x >= 1e-3 else f"{x:.2e}"


def _pct(x: Any) -> str:
    if isinstance(x, bool) or not isinstance(x, int | float) or not math.isfinite(x):
        return "—"
    return f"{100 * x:.1f}%"


def _report_view(doc: Mapping[str, Any]) -> dict[str, Any]:
    """What the report page shows of a stored document (checked when it was stored)."""
    columns = [_drift_column_view(c) for c in doc.get("columns") or []]
    columns.sort(key=lambda c: (not c["drifted"], c["name"]))
    settings = doc.get("settings") or {}
    return {
        "verdict": {
            "drifted": bool(doc.get("drift_detected")),
            "rule": str(doc.get("rule", "")),
            "n_drifted": sum(1 for c in columns if c["drifted"]),
            "n_columns": len(columns),
            "share": _pct(doc.get("share_drifted")),
            "alpha": settings.get("alpha"),
        },
        "reference": _side(doc.get("reference")),
        "current": _side(doc.get("current")),
        "schema": str(doc.get("schema", "")),
        "schema_changes": [
            {k: str(s.get(k) or "—") for k in ("column", "change", "reference_kind", "current_kind")}
            for s in doc.get("schema_changes") or []
        ],
        "skipped": sorted((str(k), str(v)) for k, v in (doc.get("skipped_columns") or {}).items()),
        "multivariate": [
            {
                "test": str(m.get("test", "")),
                "columns": ", ".join(str(c) for c in m.get("columns") or []),
                "statistic": _num(m.get("statistic")),
                "p_value": _p(m.get("p_value")),
                "effect": _num(m.get("effect_size")),
                "drifted": bool(m.get("drifted")),
            }
            for m in doc.get("multivariate") or []
        ],
        "columns": columns,
    }


def _side(side: Any) -> dict[str, Any]:
    side = side if isinstance(side, Mapping) else {}
    source, rows = str(side.get("source", "")), side.get("rows")
    counted = f"{rows:,}" if isinstance(rows, int) else "?"
    # Sources like "data (20,000 rows)" already say how many rows.
    return {"source": source, "rows": None if counted in source else f"{counted} rows"}


def _drift_column_view(col: Mapping[str, Any]) -> dict[str, Any]:
    name, kind = str(col.get("column", "")), str(col.get("kind", ""))
    raw_details, raw_plot = col.get("details"), col.get("plot")
    details: Mapping[str, Any] = raw_details if isinstance(raw_details, Mapping) else {}
    plot: Mapping[str, Any] = raw_plot if isinstance(raw_plot, Mapping) else {}
    svg: Markup | None = None
    if plot.get("type") == "histogram":
        svg = histogram_svg(plot, kind, name)
    elif plot.get("type") == "bars":
        unseen = {str(x) for x in details.get("unseen_categories") or []}
        svg = bars_svg(plot, name, unseen)
    threshold = col.get("effect_threshold")
    return {
        "name": name,
        "kind": kind,
        "test": str(col.get("test", "")),
        "statistic": _num(col.get("statistic")),
        "p_value": _p(col.get("p_value")),
        "p_adjusted": _p(col.get("p_adjusted")),
        "effect_name": str(col.get("effect_name", "effect")).replace("_", " "),
        "effect_size": _num(col.get("effect_size")),
        "threshold": None if threshold is None else _num(threshold),
        "decided_by": str(col.get("decided_by", "")).replace("_", " "),
        "drifted": bool(col.get("drifted")),
        "rows": (col.get("n_reference"), col.get("n_current")),
        "svg": svg,
        "plot_type": plot.get("type"),
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
