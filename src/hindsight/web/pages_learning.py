"""The learning page: the team's learning metrics over time, one chart per metric.

``GET /learning`` draws, per day or per week, how many experiments the team ran, how fast
it recovered from failures, what share of its lessons it applied, how many failures were
repeats, and what share of its experiments tried something new; ``GET /api/v1/learning``
returns the same numbers as JSON.

Each point is :func:`hindsight.ledger.learning_metrics` over one bucket alone, so the
metric definitions live in one place. Buckets are UTC calendar days, or weeks from Monday
00:00 UTC; the newest bucket ends now. A bucket is half-open, ``[start, end)``: it is
passed to ``learning_metrics`` as ``since=start`` and ``until`` = the largest float below
``end``, so a record at exactly a boundary counts in one bucket only. The newest bucket is
closed, ``[start, now]`` (``until=now``). Each point carries the ``until`` it used.
"""

import datetime as dt
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Annotated, Any, Literal, cast

from fastapi import Depends, FastAPI, Query, Request
from fastapi.responses import HTMLResponse
from markupsafe import Markup, escape

from hindsight.ledger import Ledger, learning_metrics
from hindsight.ledger.records import iso
from hindsight.reports.lines_svg import Series, line_chart_svg
from hindsight.web.auth import Principal
from hindsight.web.context import WebContext

__all__ = ["BUCKETS", "Chart", "bucket_spans", "charts", "learning_series", "register"]

Bucket = Literal["week", "day"]
#: The bucket sizes the page and the API accept.
BUCKETS: tuple[str, ...] = ("week", "day")
DAY = 24 * 3600.0


def bucket_spans(now: float, weeks: int, bucket: Bucket) -> list[tuple[float, float]]:
    """The ``[start, end)`` spans of the window, oldest first.

    ``weeks`` weeks of buckets: ``weeks`` weeks from Monday 00:00 UTC, or ``7 * weeks``
    UTC days. The newest bucket is the one holding ``now`` and ends at ``now``.
    """
    if weeks < 1:
        raise ValueError(f"weeks must be at least 1, not {weeks}.")
    day0 = dt.datetime.fromtimestamp(now, tz=dt.UTC).replace(
        hour=0, minute=0, second=0, microsecond=0
    )
    if bucket == "week":
        first = day0 - dt.timedelta(days=day0.weekday())
        step, count = dt.timedelta(days=7), weeks
    elif bucket == "day":
        first, step, count = day0, dt.timedelta(days=1), 7 * weeks
    else:
        raise ValueError(f"bucket must be one of {', '.join(BUCKETS)}, not {bucket!r}.")
    starts = [(first - i * step).timestamp() for i in range(count - 1, -1, -1)]
    ends = [*starts[1:], now]
    return list(zip(starts, ends, strict=True))


def _until(end: float) -> float:
    """The ``until`` that makes ``learning_metrics``'s closed window end before ``end``."""
    return math.nextafter(end, -math.inf)


class _OneReadLedger:
    """A ledger whose ``experiments()`` reads the store once per set of arguments.

    ``learning_metrics`` lists every experiment of the project on each call; over 728 daily
    buckets that is 728 reads of the same rows. This wrapper answers the repeats from the
    first read (so every bucket also sees the same snapshot) and passes everything else to
    the ledger it wraps.
    """

    def __init__(self, ledger: Ledger) -> None:
        self._ledger = ledger
        self._seen: dict[tuple[tuple[str, Any], ...], list[Any]] = {}

    def experiments(self, **kwargs: Any) -> list[Any]:
        key = tuple(sorted((k, tuple(v) if isinstance(v, list) else v)
                           for k, v in kwargs.items()))
        if key not in self._seen:
            self._seen[key] = self._ledger.experiments(**kwargs)
        return list(self._seen[key])

    def __getattr__(self, name: str) -> Any:
        return getattr(self._ledger, name)


def learning_series(
    ledger: Ledger, spans: Sequence[tuple[float, float]], *, project: str | None = None
) -> list[dict[str, Any]]:
    """One point per span: ``learning_metrics`` over ``[start, end)`` of that span alone.

    The last span is taken as closed, ``[start, end]`` (it ends now, and may be empty).

    Counts are 0 in an empty bucket; a rate (or the median recovery) is ``None`` where
    the bucket has nothing to take it over (no lessons, no failures, no experiments, no
    recovered streak).
    """
    once = cast(Ledger, _OneReadLedger(ledger))
    points = []
    for i, (start, end) in enumerate(spans):
        until = end if i == len(spans) - 1 else _until(end)
        m = learning_metrics(once, project=project, since=start, until=until)
        points.append({
            "start": start,
            "end": end,
            "until": until,
            "start_iso": iso(start),
            "end_iso": iso(end),
            "experiments": m.experiments,
            "velocity_per_week": m.velocity_per_week,
            "recovery_hours_median": m.recovery_hours_median,
            "recoveries": m.recoveries,
            "unrecovered": m.unrecovered,
            "lessons": m.lessons,
            "lessons_applied": m.lessons_applied,
            "lesson_application_rate": m.lesson_application_rate,
            "failures": m.failures,
            "repeat_failures": m.repeat_failures,
            "repeat_failure_rate": m.repeat_failure_rate,
            "innovative_experiments": m.innovative_experiments,
            "innovation_index": m.innovation_index,
        })
    return points


@dataclass(frozen=True)
class Chart:
    """One metric over the buckets: its SVG and the rows of its table."""

    key: str
    title: str
    y_title: str
    note: str
    svg: Markup
    columns: tuple[str, ...]
    rows: list[tuple[str, ...]]


def _finite(v: float | None) -> float | None:
    return None if v is None or not math.isfinite(float(v)) else float(v)


def _runs(xs: Sequence[float], ys: Sequence[float | None]) -> list[Series]:
    """Lines broken at every missing value (an empty bucket is a gap), plus a dot per value."""
    out: list[Series] = []
    run_x: list[float] = []
    run_y: list[float | None] = []
    for x, y in [*zip(xs, ys, strict=True), (math.nan, None)]:
        if y is None:
            if len(run_x) > 1:
                out.append(Series(run_x, run_y, css="cur"))
            run_x, run_y = [], []
        else:
            run_x.append(x)
            run_y.append(y)
    out.append(Series(list(xs), list(ys), css="dot", dots=True))
    return out


def _empty_svg(label: str) -> Markup:
    return Markup(
        f'<svg class="plot" viewBox="0 0 560 60" role="img" aria-label="{escape(label)}">'
        '<text x="280" y="34" text-anchor="middle">No value in this window.</text></svg>'
    )


def _chart_svg(
    ys: Sequence[float | None], *, label: str, x_title: str, y_title: str,
    y_range: tuple[float, float] | None,
) -> Markup:
    n = len(ys)
    xs = [float(i - (n - 1)) for i in range(n)]
    clean = [_finite(y) for y in ys]
    svg = line_chart_svg(
        _runs(xs, clean), label=label, x_title=x_title, y_title=y_title,
        x_range=(xs[0], xs[-1]) if n > 1 else (-1.0, 0.0), y_range=y_range,
    )
    return svg if svg is not None else _empty_svg(label)


def _count_range(counts: Sequence[int]) -> tuple[float, float]:
    """A y axis from 0 with whole-number ticks for small counts."""
    return 0.0, float(max([4, *counts]))


def _when(ts: float) -> str:
    return str(iso(ts)).replace("T", " ").replace("+00:00", " UTC")


def _pct(v: float | None) -> str:
    return "—" if v is None else f"{100 * v:.0f}%"


def _hours(v: float | None) -> str:
    return "—" if v is None else f"{v:.1f}"


def charts(points: Sequence[dict[str, Any]], bucket: Bucket, scope: str) -> list[Chart]:
    """The page's five charts, each with its table, from :func:`learning_series`."""
    unit = "week" if bucket == "week" else "day"
    x_title = f"{unit}s before the current one (0 = this {unit})"
    labels = [
        p["start_iso"][:10] + (" (so far)" if i == len(points) - 1 else "")
        for i, p in enumerate(points)
    ]

    def pct(key: str) -> list[float | None]:
        return [None if p[key] is None else 100.0 * p[key] for p in points]

    specs: list[tuple[str, str, str, str, list[float | None], tuple[float, float] | None,
                      tuple[str, ...], list[tuple[str, ...]]]] = [
        (
            "experiments", "Experiments per " + unit + " (velocity)", "experiments",
            "Experiments started in the " + unit + "; 0 when none.",
            [float(p["experiments"]) for p in points],
            _count_range([p["experiments"] for p in points]),
            ("experiments",),
            [(str(p["experiments"]),) for p in points],
        ),
        (
            "recovery", "Median time to recover (hours)", "hours",
            "From the first failure of a streak to the next success of the same line of "
            "work, for streaks that started and recovered within the " + unit
            + "; a gap when none recovered.",
            [p["recovery_hours_median"] for p in points], None,
            ("median hours", "recovered", "not recovered"),
            [(_hours(p["recovery_hours_median"]), str(p["recoveries"]), str(p["unrecovered"]))
             for p in points],
        ),
        (
            "lessons", "Share of lessons applied", "% applied",
            "Lessons recorded in the " + unit + " that an experiment applied by its end; "
            "a gap when no lesson was recorded.",
            pct("lesson_application_rate"), (0.0, 100.0),
            ("applied", "lessons applied", "lessons"),
            [(_pct(p["lesson_application_rate"]), str(p["lessons_applied"]), str(p["lessons"]))
             for p in points],
        ),
        (
            "repeats", "Repeat failures", "repeat failures",
            "Failures in the " + unit + " whose fingerprint matches an earlier failure that "
            "already had a lesson; 0 when none.",
            [float(p["repeat_failures"]) for p in points],
            _count_range([p["repeat_failures"] for p in points]),
            ("repeat failures", "failures", "share"),
            [(str(p["repeat_failures"]), str(p["failures"]), _pct(p["repeat_failure_rate"]))
             for p in points],
        ),
        (
            "innovation", "Share of innovative experiments", "% innovative",
            "Experiments in the " + unit + " with an approach tag no earlier experiment of "
            "the project used; a gap when no experiment ran.",
            pct("innovation_index"), (0.0, 100.0),
            ("innovative", "innovative experiments", "experiments"),
            [(_pct(p["innovation_index"]), str(p["innovative_experiments"]),
              str(p["experiments"])) for p in points],
        ),
    ]
    out = []
    for key, title, y_title, note, ys, y_range, columns, rows in specs:
        svg = _chart_svg(ys, label=f"{title}, {scope}, per {unit}", x_title=x_title,
                         y_title=y_title, y_range=y_range)
        out.append(Chart(
            key=key, title=title, y_title=y_title, note=note, svg=svg,
            columns=(unit + " from", *columns),
            rows=[(label, *row) for label, row in zip(labels, rows, strict=True)],
        ))
    return out


def register(app: FastAPI, ctx: WebContext) -> None:
    """Add ``GET /learning`` and ``GET /api/v1/learning`` to ``app``."""
    ledger, store = ctx.ledger, ctx.store

    def compute(project: str, weeks: int, bucket: Bucket
                ) -> tuple[list[dict[str, Any]], dict[str, Any]]:
        now = time.time()
        spans = bucket_spans(now, weeks, bucket)
        points = learning_series(ledger, spans, project=project or None)
        totals = learning_metrics(
            ledger, project=project or None, since=spans[0][0], until=now
        ).to_dict()
        return points, totals

    @app.get("/learning", response_class=HTMLResponse, include_in_schema=False)
    def learning_page(
        request: Request,
        who: Annotated[Principal, Depends(ctx.page_user)],
        project: str = "",
        weeks: Annotated[int, Query(ge=1, le=104)] = 12,
        bucket: Bucket = "week",
    ) -> HTMLResponse:
        points, totals = compute(project, weeks, bucket)
        scope = f"project {project}" if project else "all projects"
        return ctx.render(
            request, "learning.html.j2", who,
            projects=store.list_projects(), project=project, weeks=weeks, bucket=bucket,
            buckets=BUCKETS, scope=scope, charts=charts(points, bucket, scope),
            totals=totals, window_start=_when(points[0]["start"]),
            window_end=_when(points[-1]["end"]),
        )

    @app.get("/api/v1/learning", tags=["learning"])
    def get_learning(
        _who: Annotated[Principal, Depends(ctx.api_user("viewer"))],
        project: str = "",
        weeks: Annotated[int, Query(ge=1, le=104)] = 12,
        bucket: Bucket = "week",
    ) -> dict[str, Any]:
        """Learning metrics per day or week over the last ``weeks`` weeks, and in total.

        Each point is ``learning_metrics`` over its bucket alone, ``[start, end)``;
        the newest bucket ends now. ``totals`` is ``learning_metrics`` over the whole window.
        """
        points, totals = compute(project, weeks, bucket)
        return {"bucket": bucket, "project": project or None, "weeks": weeks,
                "points": points, "totals": totals}
