"""Inline SVG line charts for the reports: a cost curve, a reliability diagram. Escaped text only."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from markupsafe import Markup, escape

from hindsight.reports.svg import _c, _nice_step, _svg_open

__all__ = ["Mark", "Series", "line_chart_svg"]

_W = 560
_H = 240
_LEFT, _RIGHT, _TOP, _BOTTOM = 52, 14, 10, 38


@dataclass(frozen=True)
class Series:
    """One line (or, with ``dots``, points) of a chart; ``css`` is its class in the page."""

    xs: Sequence[float]
    ys: Sequence[float | None]
    css: str = "cur"
    dots: bool = False


@dataclass(frozen=True)
class Mark:
    """A vertical rule at ``x`` with a short label (the threshold in use, the cheapest one)."""

    x: float
    label: str
    css: str = "mark"


def _ticks(lo: float, hi: float, target: int = 5) -> tuple[float, float, list[float]]:
    if not hi > lo:
        hi = lo + (abs(lo) or 1.0)
    step = _nice_step(hi - lo, target)
    start = math.floor(lo / step + 1e-9) * step
    stop = math.ceil(hi / step - 1e-9) * step
    count = round((stop - start) / step)
    return start, stop, [start + i * step for i in range(count + 1)]


def _fmt(v: float) -> str:
    if v == 0:
        return "0"
    if abs(v) >= 1e4 or abs(v) < 1e-3:
        return f"{v:.1e}"
    return f"{v:.4g}"


def line_chart_svg(
    series: Sequence[Series],
    *,
    label: str,
    x_title: str,
    y_title: str,
    marks: Sequence[Mark] = (),
    x_range: tuple[float, float] | None = None,
    y_range: tuple[float, float] | None = None,
) -> Markup | None:
    """Lines on shared axes with ticks, axis titles and labelled vertical marks."""
    points = [
        (float(x), float(y))
        for s in series
        for x, y in zip(s.xs, s.ys, strict=True)
        if y is not None and math.isfinite(float(y)) and math.isfinite(float(x))
    ]
    if not points:
        return None
    xs = [p[0] for p in points] + [m.x for m in marks if math.isfinite(m.x)]
    ys = [p[1] for p in points]
    x0, x1, xticks = _ticks(*(x_range or (min(xs), max(xs))))
    y0, y1, yticks = _ticks(*(y_range or (min(0.0, min(ys)), max(ys))))
    pw, ph = _W - _LEFT - _RIGHT, _H - _TOP - _BOTTOM
    base = _TOP + ph

    def sx(v: float) -> float:
        return _LEFT + pw * (min(max(v, x0), x1) - x0) / (x1 - x0)

    def sy(v: float) -> float:
        return _TOP + ph * (1 - (min(max(v, y0), y1) - y0) / (y1 - y0))

    parts = [_svg_open(_H, label)]
    grid = "".join(f"M{_c(_LEFT)} {_c(sy(t))}H{_c(_LEFT + pw)}" for t in yticks[1:])
    parts.append(f'<path class="grid" d="{grid}"/>')
    parts.append('<g class="ax yax">')
    parts += [f'<text x="{_c(_LEFT - 5)}" y="{_c(sy(t) + 3.5)}">{_fmt(t)}</text>' for t in yticks]
    parts.append("</g>")
    for s in series:
        pts = [
            (sx(float(x)), sy(float(y)))
            for x, y in zip(s.xs, s.ys, strict=True)
            if y is not None and math.isfinite(float(y))
        ]
        if not pts:
            continue
        if s.dots:
            parts.append(
                f'<g class="{escape(s.css)}">'
                + "".join(f'<circle cx="{_c(x)}" cy="{_c(y)}" r="3.2"/>' for x, y in pts)
                + "</g>"
            )
        else:
            d = "M" + "L".join(f"{_c(x)} {_c(y)}" for x, y in pts)
            parts.append(f'<path class="{escape(s.css)}" d="{d}"/>')
    for m in marks:
        if not math.isfinite(m.x):
            continue
        x = sx(m.x)
        anchor = "end" if x > _LEFT + pw * 0.7 else "start"
        dx = -4 if anchor == "end" else 4
        parts.append(
            f'<g class="{escape(m.css)}"><path d="M{_c(x)} {_c(_TOP)}V{_c(base)}"/>'
            f'<text x="{_c(x + dx)}" y="{_c(_TOP + 11)}" text-anchor="{anchor}">'
            f"{escape(m.label)}</text></g>"
        )
    parts.append(
        f'<path class="axis" d="M{_c(_LEFT)} {_c(_TOP)}V{_c(base)}H{_c(_LEFT + pw)}"/>'
    )
    parts.append('<g class="ax xax">')
    parts.append(
        '<path class="tick" d="' + "".join(f"M{_c(sx(t))} {_c(base)}v4" for t in xticks) + '"/>'
    )
    parts += [f'<text x="{_c(sx(t))}" y="{_c(base + 15)}">{_fmt(t)}</text>' for t in xticks]
    parts.append(
        f'<text class="axt" x="{_c(_LEFT + pw / 2)}" y="{_c(_H - 4)}">{escape(x_title)}</text>'
    )
    parts.append("</g>")
    parts.append(
        f'<text class="axt" transform="translate(12 {_c(_TOP + ph / 2)}) rotate(-90)" '
        f'text-anchor="middle">{escape(y_title)}</text>'
    )
    parts.append("</svg>")
    return Markup("".join(parts))
