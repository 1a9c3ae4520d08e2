"""The Services pages and API: what each served model answered, its breakers and rollouts.

``register(app, ctx)`` adds ``/services`` (one row per service in the prediction log, with
a rollout or with a recorded breaker state: requests in the window, the share each tier
answered, abstention and review-routing rates, p50/p95 latency, versions, how many tiers'
circuit breakers are open or half-open now and the latest rollout), ``/services/{name}``
(the tier shares per hour as a chart, versions, each tier's circuit breaker and its
recent transitions, and every rollout with each interval's analysis) and their
``/api/v1/services`` counterparts, plus ``/api/v1/services/{name}/breakers`` (states and
every transition, paged) and ``/api/v1/rollouts`` (paged).

Only what the store holds is shown. Breaker states are what the running service recorded
(:mod:`hindsight.serving.breaker_events`): each tier's state when the service started and
every change since, written by its prediction log's writer about once a second. The
numbers are aggregated in SQL, see :mod:`hindsight.store.listing_services` (latency
percentiles are exact, NumPy's "linear").
"""

import json
import math
import time
from collections.abc import Mapping
from typing import Annotated, Any
from urllib.parse import quote, urlencode

from fastapi import Depends, FastAPI, Query, Request
from fastapi.responses import HTMLResponse
from markupsafe import Markup, escape

from hindsight.errors import NotFound
from hindsight.ledger.records import iso
from hindsight.reports.lines_svg import Series, line_chart_svg
from hindsight.store.listing_services import (
    breaker_counts,
    known_services,
    page_rollouts,
    service_summaries,
    tier_hours,
)
from hindsight.web.auth import Principal
from hindsight.web.context import PAGE_SIZE, WebContext, page_count

__all__ = ["BREAKER_EVENTS_SHOWN", "DEFAULT_HOURS", "MAX_HOURS", "register"]

#: The window the pages and API show by default, and the longest they accept, in hours.
DEFAULT_HOURS = 24
MAX_HOURS = 720
#: Colours the chart and its legend cycle through (``.t0`` … in service.html.j2).
_PALETTE = 6
_STATUS_CLASS = {"promoted": "good", "rolled_back": "bad", "running": "warn"}
_BREAKER_CLASS = {"closed": "good", "half_open": "warn", "open": "bad"}
#: How many of a service's newest breaker transitions its page lists (the API pages them all).
BREAKER_EVENTS_SHOWN = 50
# Shown at the head of each analysis, not again among its other inputs.
_HEAD = ("interval", "step", "share", "at", "decision", "early")

Hours = Annotated[int, Query(ge=1, le=MAX_HOURS, description="The window, in hours.")]


def register(app: FastAPI, ctx: WebContext) -> None:
    """Add the services pages and API routes to ``app``."""
    store = ctx.store
    page_user, api_user, render = ctx.page_user, ctx.api_user, ctx.render

    # -- pages -----------------------------------------------------------------------

    @app.get("/services", response_class=HTMLResponse, include_in_schema=False)
    def services_page(
        request: Request,
        who: Annotated[Principal, Depends(page_user)],
        hours: Hours = DEFAULT_HOURS,
    ) -> HTMLResponse:
        since, until = _window(hours)
        rows = service_summaries(store, since=since, until=until)
        tiers = _tier_order(rows)
        return render(
            request, "services.html.j2", who, rows=rows, tiers=tiers, hours=hours,
            max_hours=MAX_HOURS, since=_when(since), until=_when(until), pct=_pct, ms=_ms,
            status_class=_STATUS_CLASS, breaker_class=_BREAKER_CLASS,
        )

    @app.get("/services/{service}", response_class=HTMLResponse, include_in_schema=False)
    def service_page(
        request: Request,
        service: str,
        who: Annotated[Principal, Depends(page_user)],
        hours: Hours = DEFAULT_HOURS,
        page: Annotated[int, Query(ge=1, le=1_000_000)] = 1,
    ) -> HTMLResponse:
        detail = _detail(service, hours, page)
        summary = detail["summary"]
        tiers = list(summary["tiers"])
        pages = page_count(detail["rollouts_total"])
        events = store.breaker_events(service, limit=BREAKER_EVENTS_SHOWN)
        events_total = store.count_breaker_events(service) if events else 0
        return render(
            request, "service.html.j2", who, s=summary, hours=hours, max_hours=MAX_HOURS,
            since=_when(detail["since"]), until=_when(detail["until"]),
            chart=_chart(service, detail["hourly"], tiers, hours),
            legend=[(tier, f"t{i % _PALETTE}") for i, tier in enumerate(tiers)],
            hourly=[{**h, "start_text": _when(h["start"])} for h in detail["hourly"]
                    if h["total"]],
            tiers=tiers,
            rollouts=[_rollout_view(r) for r in detail["rollouts"]],
            rollouts_total=detail["rollouts_total"], page=page, pages=pages,
            prev_url=_detail_url(service, hours, page - 1) if page > 1 else None,
            next_url=_detail_url(service, hours, page + 1) if page < pages else None,
            breakers=[_breaker_view(b) for b in detail["breakers"]],
            # Unfolded when there is something to see: a breaker not closed, or a change.
            breakers_unfold=any(b["current"] and b["state"] != "closed"
                                for b in detail["breakers"])
            or any(e["previous"] != e["state"] for e in events),
            breaker_events=[_breaker_view(e) for e in events], breaker_events_total=events_total,
            breaker_events_shown=BREAKER_EVENTS_SHOWN,
            breakers_api=f"/api/v1/services/{quote(service)}/breakers",
            pct=_pct, ms=_ms, status_class=_STATUS_CLASS,
        )

    # -- JSON API --------------------------------------------------------------------

    @app.get("/api/v1/services", tags=["services"])
    def list_services_api(
        _who: Annotated[Principal, Depends(api_user("viewer"))],
        hours: Hours = DEFAULT_HOURS,
    ) -> dict[str, Any]:
        """Every service in the prediction log, with a rollout or with a recorded breaker
        state, over the last ``hours``: requests, per-tier shares, abstention and review
        rates, p50/p95 latency (exact), versions, the latest rollout and ``breakers``: how
        many tiers of its latest chain have their circuit breaker closed, open or half-open
        now (``null`` when none was recorded)."""
        since, until = _window(hours)
        rows = service_summaries(store, since=since, until=until)
        return {"hours": hours, "since": since, "until": until,
                "items": [_summary_json(r) for r in rows]}

    @app.get("/api/v1/services/{service}", tags=["services"])
    def get_service_api(
        service: str,
        _who: Annotated[Principal, Depends(api_user("viewer"))],
        hours: Hours = DEFAULT_HOURS,
        page: Annotated[int, Query(ge=1, le=1_000_000)] = 1,
    ) -> dict[str, Any]:
        """One service over the last ``hours``: its summary, the requests and tier shares
        per hour, each tier's circuit-breaker state now (``breaker_states``: its newest
        recorded event, ``current`` false for a tier not in the latest chain), and one page
        of its rollouts (newest first) with every analysis."""
        detail = _detail(service, hours, page)
        total = detail["rollouts_total"]
        return {
            **_summary_json(detail["summary"]),
            "hours": hours, "since": detail["since"], "until": detail["until"],
            "hourly": detail["hourly"],
            "breaker_states": [_breaker_json(b) for b in detail["breakers"]],
            "rollouts": [_rollout_json(r) for r in detail["rollouts"]],
            "rollouts_total": total, "page": page, "page_size": PAGE_SIZE,
            "pages": page_count(total),
        }

    @app.get("/api/v1/services/{service}/breakers", tags=["services"])
    def get_service_breakers_api(
        service: str,
        _who: Annotated[Principal, Depends(api_user("viewer"))],
        tier: str = "",
        page: Annotated[int, Query(ge=1, le=1_000_000)] = 1,
    ) -> dict[str, Any]:
        """A service's circuit breakers: each tier's state now (``states``, as in the
        service's ``breaker_states``) and one page of the recorded transitions (of
        ``tier``, or of all), newest first, each with the breaker's figures at the change.
        An event whose ``previous`` equals its ``state`` is the tier's state when the
        service started or changed its chain, not a transition."""
        if not known_services(store, service=service):
            raise NotFound(f"No service {service!r} in the prediction log, the rollouts or "
                           "the breaker states.")
        tier_or_all = tier or None
        events = store.breaker_events(service, tier_or_all, limit=PAGE_SIZE,
                                      offset=(page - 1) * PAGE_SIZE)
        total = store.count_breaker_events(service, tier_or_all)
        return {
            "service": service, "tier": tier_or_all,
            "states": [_breaker_json(b) for b in store.breaker_states(service)],
            "counts": breaker_counts(store, service=service).get(service),
            "items": [_breaker_json(e) for e in events], "total": total, "page": page,
            "page_size": PAGE_SIZE, "pages": page_count(total),
        }

    @app.get("/api/v1/rollouts", tags=["services"])
    def list_rollouts_api(
        _who: Annotated[Principal, Depends(api_user("viewer"))],
        service: str = "",
        page: Annotated[int, Query(ge=1, le=1_000_000)] = 1,
    ) -> dict[str, Any]:
        """One page of rollouts (of ``service``, or of all), newest first, with their
        analyses and any A/B lift."""
        rows, total = page_rollouts(store, service=service or None,
                                    offset=(page - 1) * PAGE_SIZE, limit=PAGE_SIZE)
        return {"items": [_rollout_json(r) for r in rows], "total": total, "page": page,
                "page_size": PAGE_SIZE, "pages": page_count(total)}

    def _detail(service: str, hours: int, page: int) -> dict[str, Any]:
        if not known_services(store, service=service):
            raise NotFound(f"No service {service!r} in the prediction log, the rollouts or "
                           "the breaker states.")
        since, until = _window(hours)
        summary = service_summaries(store, since=since, until=until, service=service)[0]
        rollouts, total = page_rollouts(store, service=service,
                                        offset=(page - 1) * PAGE_SIZE, limit=PAGE_SIZE)
        return {
            "summary": summary, "since": since, "until": until,
            "hourly": _hourly(tier_hours(store, service, since=since, until=until),
                              since, until, hours),
            "rollouts": rollouts, "rollouts_total": total,
            "breakers": store.breaker_states(service),
        }


# -- numbers ---------------------------------------------------------------------------


def _window(hours: int) -> tuple[float, float]:
    until = time.time()
    return until - hours * 3600.0, until


def _hourly(rows: list[tuple[int, str, int]], since: float, until: float, hours: int
            ) -> list[dict[str, Any]]:
    """Every hour of the window, oldest first: requests per tier and each tier's share."""
    counts: list[dict[str, int]] = [{} for _ in range(hours)]
    for hour, tier, n in rows:
        slot = counts[min(max(hour, 0), hours - 1)]  # a request at exactly ``until``
        slot[tier] = slot.get(tier, 0) + n
    out = []
    for i, c in enumerate(counts):
        total = sum(c.values())
        out.append({
            "start": since + 3600.0 * i, "end": min(since + 3600.0 * (i + 1), until),
            "total": total, "counts": c,
            "shares": {tier: n / total for tier, n in c.items()},
        })
    return out


def _tier_order(rows: list[dict[str, Any]]) -> list[str]:
    """Every tier in the window, most requests first over all services."""
    totals: dict[str, int] = {}
    for r in rows:
        for tier, n in r["tiers"].items():
            totals[tier] = totals.get(tier, 0) + n
    return [k for k, _ in sorted(totals.items(), key=lambda kv: (-kv[1], kv[0]))]


def _summary_json(row: Mapping[str, Any]) -> dict[str, Any]:
    return {**row, "last_seen_iso": iso(row["last_seen"]) if row["last_seen"] else None}


def _lifts(analyses: Any) -> list[dict[str, Any]]:
    """Each treatment arm's lift over control, from the newest analysis that has one."""
    for a in reversed(analyses if isinstance(analyses, list) else []):
        lift = a.get("lift") if isinstance(a, Mapping) else None
        if isinstance(lift, Mapping) and lift:
            return [{"arm": str(arm), **d} for arm, d in lift.items() if isinstance(d, Mapping)]
    return []


def _breaker_json(row: Mapping[str, Any]) -> dict[str, Any]:
    return {**row, "at_iso": iso(row["at"])}


def _rollout_json(row: Mapping[str, Any]) -> dict[str, Any]:
    return {**row, "created": iso(row["created_at"]), "lift": _lifts(row.get("analyses"))}


# -- what the page shows ---------------------------------------------------------------


def _when(ts: float | None) -> str:
    return "—" if ts is None else str(iso(ts)).replace("T", " ").replace("+00:00", " UTC")


def _pct(v: float | None) -> str:
    return "—" if v is None else f"{100 * v:.1f}%"


def _ms(v: float | None) -> str:
    return "—" if v is None else f"{v:.1f} ms"


def _text(key: str, v: Any) -> str:
    """One analysis input as text: numbers to 4 significant digits, times as UTC."""
    if v is None:
        return "—"
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        if (key == "at" or key.endswith("_at")) and math.isfinite(v):
            return _when(v)
        return f"{v:.4g}"
    if isinstance(v, str):
        return v
    if isinstance(v, list) and all(isinstance(x, int | float | str | bool) or x is None
                                   for x in v):
        if len(v) == 2 and all(isinstance(x, int | float) for x in v):  # an interval
            return f"[{_text('', v[0])}, {_text('', v[1])}]"
        return "; ".join(_text("", x) for x in v)
    return json.dumps(v, separators=(",", ":"), default=str)


def _flatten(value: Any, prefix: str, cells: dict[str, str],
             tables: list[dict[str, Any]] | None) -> None:
    """Nested dicts as dotted keys; a list of dicts as a table of its own (when
    ``tables`` is given; inside a table's row it is shown as JSON)."""
    if isinstance(value, Mapping) and (value or not prefix):
        for k, v in value.items():
            _flatten(v, f"{prefix}.{k}" if prefix else str(k), cells, tables)
    elif (tables is not None and isinstance(value, list) and value
          and all(isinstance(x, Mapping) for x in value)):
        rows: list[dict[str, str]] = []
        for item in value:
            row: dict[str, str] = {}
            _flatten(item, "", row, None)
            rows.append(row)
        columns = list(dict.fromkeys(k for row in rows for k in row))
        tables.append({"key": prefix, "columns": columns,
                       "rows": [[row.get(c, "") for c in columns] for row in rows]})
    else:
        cells[prefix] = _text(prefix.rsplit(".", 1)[-1], value)


def _analysis_view(a: Any) -> dict[str, Any]:
    if not isinstance(a, Mapping):
        return {"decision": "", "head": [], "fields": [("value", _text("", a))], "tables": []}
    cells: dict[str, str] = {}
    tables: list[dict[str, Any]] = []
    _flatten({k: v for k, v in a.items() if k not in _HEAD}, "", cells, tables)
    decision = str(a.get("decision") or "")
    head = [(k, _text(k, a[k])) for k in _HEAD if k in a and k != "decision"]
    return {"decision": decision, "head": head, "fields": list(cells.items()),
            "tables": tables}


def _decision_class(decision: str) -> str:
    return {"pass": "good", "marginal": "warn", "fail": "bad"}.get(decision, "")


def _breaker_view(row: Mapping[str, Any]) -> dict[str, Any]:
    """A breaker state or transition as the service page shows it."""
    snap = row.get("snapshot")
    snap = snap if isinstance(snap, Mapping) else {}
    calls = snap.get("calls")
    judged = isinstance(calls, int) and calls > 0

    def rate(key: str) -> str:
        v = snap.get(key)
        return _pct(float(v)) if judged and isinstance(v, int | float) else "—"

    state = str(row["state"])
    return {
        **row, "state_text": state.replace("_", "-"),
        "previous_text": str(row["previous"]).replace("_", "-"),
        "state_class": _BREAKER_CLASS.get(state, ""),
        "change": row["previous"] != row["state"],
        "at_text": _when(row["at"]), "error_rate": rate("error_rate"),
        "slow_rate": rate("slow_rate"), "calls": calls if judged else None,
        "probes": (f"{snap.get('probes_succeeded', 0)}/{snap.get('probes_issued', 0)}"
                   if snap.get("probes_issued") else None),
        "times_opened": snap.get("times_opened"),
        "current": row.get("current", True),
    }


def _rollout_view(row: Mapping[str, Any]) -> dict[str, Any]:
    stored = row.get("analyses")
    analyses: list[Any] = stored if isinstance(stored, list) else []
    views = [_analysis_view(a) for a in analyses]
    for v in views:
        v["decision_class"] = _decision_class(v["decision"])
    lifts = []
    for d in _lifts(analyses):
        lifts.append({
            "arm": d["arm"], "lift": _pct(d.get("lift")),
            "lift_ci": "—" if not d.get("lift_ci") else
            f"{_pct(d['lift_ci'][0])} to {_pct(d['lift_ci'][1])}",
            "control": f"{d.get('control_events')}/{d.get('control_n')}",
            "treatment": f"{d.get('treatment_events')}/{d.get('treatment_n')}",
            "p_value": _text("p_value", d.get("p_value")),
            "confidence": _pct(d.get("confidence")),
        })
    exp = row.get("experiment_id")
    return {
        **row, "analysis_views": views, "lifts": lifts,
        "experiment_url": f"/experiments/{exp}" if exp else None,
        "failed": row.get("status") == "rolled_back",
        "created_text": _when(row.get("created_at")), "ended_text": _when(row.get("ended_at")),
    }


def _chart(service: str, hourly: list[dict[str, Any]], tiers: list[str], hours: int
           ) -> Markup:
    label = f"Share of {service}'s requests answered by each tier, per hour"
    xs = [float(i - hours) for i in range(hours)]  # each hour's start, in hours before now
    series = []
    for i, tier in enumerate(tiers):
        ys = [h["shares"].get(tier, 0.0) if h["total"] else None for h in hourly]
        # A line needs two points: a tier seen in one hour only is drawn as a dot.
        dots = sum(y is not None for y in ys) < 2
        series.append(Series(xs, ys, css=f"t{i % _PALETTE}", dots=dots))
    svg = line_chart_svg(series, label=label, x_title="hours before now",
                         y_title="share of requests", x_range=(float(-hours), 0.0),
                         y_range=(0.0, 1.0))
    if svg is not None:
        return svg
    return Markup(
        f'<svg class="plot" viewBox="0 0 560 60" role="img" aria-label="{escape(label)}">'
        '<text x="280" y="34" text-anchor="middle">No request in this window.</text></svg>'
    )


def _detail_url(service: str, hours: int, page: int) -> str:
    return f"/services/{quote(service)}?" + urlencode({"hours": hours, "page": page})
