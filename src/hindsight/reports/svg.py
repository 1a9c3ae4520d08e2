"""Inline SVG plots for the HTML reports: histograms and paired bars, escaped text only."""

from __future__ import annotations

import datetime as dt
import itertools
import math
from collections.abc import Mapping, Sequence
from typing import Any

from markupsafe import Markup, escape

from hindsight.reports._format import as_float, fmt_pct

__all__ = ["bars_svg", "histogram_svg"]

# Plot geometry, in SVG user units (the SVG scales to its box).
_W = 560
_HIST_H = 220
_MARGIN_LEFT = 44
_MARGIN_RIGHT = 12
_MARGIN_TOP = 10
_MARGIN_BOTTOM = 36
_BAR_LABEL_W = 150
_BAR_ROW_H = 26
_MAX_LABEL_CHARS = 22
_MAX_X_TICKS = 7
_CHAR_W = 6.2  # mean width of a character of the 11px axis font, in SVG units
_BUCKETS = ("(other)", "(rest)")  # the engine's catch-all categories


def _c(v: float) -> str:
    """A coordinate with one decimal at most."""
    text = f"{v:.1f}".rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


def _nice_step(span: float, target: int) -> float:
    raw = span / max(target, 1)
    mag = 10 ** math.floor(math.log10(raw))
    for m in (1.0, 2.0, 2.5, 5.0):
        if m * mag >= raw * (1 - 1e-9):
            return m * mag
    return 10 * mag


def _share_axis(top: float) -> tuple[float, list[float], int]:
    """Axis maximum, tick values and decimals (of the percent) for shares up to ``top``."""
    top = max(top, 1e-9)
    step = _nice_step(top, 4)
    axis_max = math.ceil(top / step - 1e-9) * step
    ticks = [i * step for i in range(round(axis_max / step) + 1)]
    decimals = 0
    while decimals < 6 and abs(round(step * 100, decimals) - step * 100) > 1e-9 * step * 100:
        decimals += 1
    return axis_max, ticks, decimals


def _pct_tick(v: float, decimals: int) -> str:
    text = f"{100 * v:.{decimals}f}"
    return (text.rstrip("0").rstrip(".") if "." in text else text) + "%"


def _edge_formatter(edges: Sequence[float], kind: str) -> tuple[Any, Any]:
    """Formatters for axis ticks (short) and tooltips (precise) of histogram edges."""
    lo, hi = min(edges), max(edges)
    span = hi - lo
    if kind == "datetime":
        try:
            dt.datetime.fromtimestamp(lo, tz=dt.UTC)
            dt.datetime.fromtimestamp(hi, tz=dt.UTC)
        except (OverflowError, OSError, ValueError):
            pass
        else:
            if span >= 3 * 86400:
                tick_fmt, tip_fmt = "%Y-%m-%d", "%Y-%m-%d %H:%M"
            elif span >= 3 * 3600:
                tick_fmt, tip_fmt = "%m-%d %H:%M", "%Y-%m-%d %H:%M"
            else:
                tick_fmt, tip_fmt = "%H:%M:%S", "%Y-%m-%d %H:%M:%S"

            def tick_dt(v: float) -> str:
                return dt.datetime.fromtimestamp(v, tz=dt.UTC).strftime(tick_fmt)

            def tip_dt(v: float) -> str:
                return dt.datetime.fromtimestamp(v, tz=dt.UTC).strftime(tip_fmt)

            return tick_dt, tip_dt
    magnitude = max(abs(lo), abs(hi))
    scale, suffix = 1.0, ""
    for s, suf in ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")):
        if magnitude >= 10 * s:
            scale, suffix = s, suf
            break
    step = span / _MAX_X_TICKS if span > 0 else magnitude or 1.0
    scientific = magnitude > 0 and (magnitude < 1e-3 or magnitude >= 1e15)
    decimals = max(0, min(6, 1 - math.floor(math.log10(step / scale)))) if step > 0 else 2

    def tick(v: float) -> str:
        if scientific:
            return f"{v:.2e}"
        text = f"{v / scale:.{decimals}f}"
        return ("0" if float(text) == 0 else text) + suffix

    def tip(v: float) -> str:
        return f"{v:.4g}" if scientific or abs(v) < 1e4 else f"{v:,.0f}"

    return tick, tip


def _svg_open(height: float, label: str, attrs: str = "") -> str:
    # aria-label, not <title>: a title would pop up over the whole plot on hover.
    return f'<svg class="plot" viewBox="0 0 {_W} {_c(height)}" role="img" aria-label="{escape(label)}"{attrs}>'


def histogram_svg(plot: Mapping[str, Any], kind: str, column: str) -> Markup | None:
    """Reference as a filled step area, current as a step line, on shared bins.

    Exact shares per bin travel as compact data attributes (``data-x`` bin boundaries in
    SVG units, ``data-l`` edge labels, ``data-r``/``data-c`` percentages) for the page's
    hover readout; the drawing itself needs no script.
    """
    ref = [as_float(x) or 0.0 for x in plot.get("reference") or []]
    cur = [as_float(x) or 0.0 for x in plot.get("current") or []]
    edges = [as_float(x) for x in plot.get("edges") or []]
    n = len(ref)
    if n == 0 or len(cur) != n:
        return None
    left, top = _MARGIN_LEFT, _MARGIN_TOP
    pw = _W - _MARGIN_LEFT - _MARGIN_RIGHT
    ph = _HIST_H - _MARGIN_TOP - _MARGIN_BOTTOM
    base = top + ph
    axis_max, yticks, ydec = _share_axis(max(ref + cur))
    good_edges = [e for e in edges if e is not None]
    has_edges = len(good_edges) == n + 1 and n > 1
    increasing = has_edges and all(b > a for a, b in itertools.pairwise(good_edges))
    if increasing:
        lo, span = good_edges[0], good_edges[-1] - good_edges[0]
        xs = [left + pw * (e - lo) / span for e in good_edges]
    else:
        xs = [left + pw * i / n for i in range(n + 1)]

    def y(v: float) -> float:
        return top + ph * (1 - min(v, axis_max) / axis_max)

    hover = ""
    if has_edges:
        _, tip = _edge_formatter(good_edges, kind)
        hover = (
            f' data-x="{" ".join(_c(x) for x in xs)}"'
            f' data-l="{escape("|".join(tip(e) for e in good_edges))}"'
            f' data-r="{" ".join(_pct_data(v) for v in ref)}"'
            f' data-c="{" ".join(_pct_data(v) for v in cur)}"'
        )
    label = f"Histogram of {column}: share of rows per bin, reference vs current"
    parts = [_svg_open(_HIST_H, label, hover)]
    grid = "".join(f"M{_c(left)} {_c(y(t))}H{_c(left + pw)}" for t in yticks[1:])
    parts.append(f'<path class="grid" d="{grid}"/>')
    parts.append('<g class="ax yax">')
    parts += [
        f'<text x="{_c(left - 5)}" y="{_c(y(t) + 3.5)}">{_pct_tick(t, ydec)}</text>' for t in yticks
    ]
    parts.append("</g>")
    parts.append(f'<rect class="hl" x="0" y="{_c(top)}" width="0" height="{_c(ph)}"/>')
    area = "".join(f"V{_c(y(v))}H{_c(xs[i + 1])}" for i, v in enumerate(ref))
    parts.append(f'<path class="ref" d="M{_c(xs[0])} {_c(base)}{area}V{_c(base)}Z"/>')
    line = "".join(f"V{_c(y(v))}H{_c(xs[i + 1])}" for i, v in enumerate(cur))
    parts.append(f'<path class="cur" d="M{_c(xs[0])} {_c(base)}{line}V{_c(base)}"/>')
    parts.append(f'<path class="axis" d="M{_c(left)} {_c(base)}H{_c(left + pw)}"/>')

    # X ticks at bin edges (or one label under a single, degenerate bin).
    parts.append('<g class="ax xax">')
    if has_edges:
        tick, _ = _edge_formatter(good_edges, kind)
        # As many ticks as fit: neighbours at least 1.5 label widths apart (edge labels hang out).
        widest = max(len(tick(e)) for e in good_edges) * _CHAR_W
        fit = max(1, int(pw // (1.5 * widest + 6)))
        every = max(1, math.ceil(n / min(_MAX_X_TICKS - 1, fit)))
        idx = list(range(0, n + 1, every))
        if idx[-1] != n:
            if n - idx[-1] < every / 2:
                idx[-1] = n
            else:
                idx.append(n)
        ticks = "".join(f"M{_c(xs[i])} {_c(base)}v4" for i in idx)
        parts.append(f'<path class="tick" d="{ticks}"/>')
        for i in idx:
            anchor = ' class="s"' if i == 0 else ' class="e"' if i == n else ""
            text = escape(tick(good_edges[i]))
            parts.append(f'<text x="{_c(xs[i])}" y="{_c(base + 15)}"{anchor}>{text}</text>')
    elif good_edges:
        tick, _ = _edge_formatter(good_edges, kind)
        parts.append(
            f'<text x="{_c(left + pw / 2)}" y="{_c(base + 15)}">{escape(tick(good_edges[0]))}</text>'
        )
    unit = " (UTC)" if kind == "datetime" else ""
    parts.append(
        f'<text class="axt" x="{_c(left + pw / 2)}" y="{_c(_HIST_H - 4)}">{escape(column)}{unit}</text>'
    )
    parts.append("</g></svg>")
    return Markup("".join(parts))


def _pct_data(share: float) -> str:
    """A share as a short percentage for the hover readout."""
    pct = 100 * share
    return "0" if pct == 0 else f"{pct:.3g}"


def _truncate(label: str, limit: int) -> str:
    """At most ``limit`` characters, cut in the middle: labels often differ at either end."""
    if len(label) <= limit:
        return label
    head = math.ceil((limit - 1) * 0.6)
    return label[:head] + "…" + label[len(label) - (limit - 1 - head) :]


def bars_svg(plot: Mapping[str, Any], column: str, unseen: set[str]) -> Markup | None:
    """Horizontal paired bars per category (reference above current), shares written out."""
    labels = [str(x) for x in plot.get("labels") or []]
    ref = [as_float(x) or 0.0 for x in plot.get("reference") or []]
    cur = [as_float(x) or 0.0 for x in plot.get("current") or []]
    n = len(labels)
    if n == 0 or len(ref) != n or len(cur) != n:
        return None
    left = _BAR_LABEL_W
    top = _MARGIN_TOP
    pw = _W - left - _MARGIN_RIGHT - 34  # room for the shares written right of the bars
    ph = n * _BAR_ROW_H
    height = top + ph + 34
    base = top + ph
    axis_max, xticks, xdec = _share_axis(max(ref + cur))

    def x(v: float) -> float:
        return left + pw * min(max(v, 0.0), axis_max) / axis_max

    label = f"Bar chart of {column}: share of rows per category, reference vs current"
    parts = [_svg_open(height, label)]
    grid = "".join(f"M{_c(x(t))} {_c(top)}V{_c(base)}" for t in xticks[1:])
    parts.append(f'<path class="grid" d="{grid}"/>')
    bar_h = (_BAR_ROW_H - 6) / 2
    parts.append('<g class="bars">')
    for i, (name, r, c) in enumerate(zip(labels, ref, cur, strict=True)):
        row = top + i * _BAR_ROW_H + 3
        new = name in unseen and name not in _BUCKETS
        suffix = " (new)" if new else ""
        shown = _truncate(name, _MAX_LABEL_CHARS - len(suffix)) + suffix
        title = ""
        if shown != name + suffix:  # truncated: the full label on hover
            title = f"<title>{escape(name)}{suffix}: reference {fmt_pct(r)}, current {fmt_pct(c)}</title>"
        cls = "lab new" if new else "lab"
        parts.append(
            f"<g>{title}"
            f'<rect class="ref" x="{_c(left)}" y="{_c(row)}" width="{_c(x(r) - left)}" height="{_c(bar_h)}"/>'
            f'<rect class="curbar" x="{_c(left)}" y="{_c(row + bar_h)}" width="{_c(x(c) - left)}" height="{_c(bar_h)}"/>'
            f'<text class="{cls}" x="{_c(left - 6)}" y="{_c(row + bar_h + 3.5)}">{escape(shown)}</text>'
            f'<text class="val" x="{_c(x(r) + 3)}" y="{_c(row + bar_h - 2)}">{fmt_pct(r)}</text>'
            f'<text class="val" x="{_c(x(c) + 3)}" y="{_c(row + 2 * bar_h - 2)}">{fmt_pct(c)}</text></g>'
        )
    parts.append("</g>")
    parts.append(f'<path class="axis" d="M{_c(left)} {_c(top)}V{_c(base)}"/>')
    parts.append('<g class="ax xax">')
    parts += [
        f'<text x="{_c(x(t))}" y="{_c(base + 14)}">{_pct_tick(t, xdec)}</text>' for t in xticks
    ]
    parts.append(
        f'<text class="axt" x="{_c(left + pw / 2)}" y="{_c(height - 4)}">share of rows</text></g></svg>'
    )
    return Markup("".join(parts))
