"""The drift report as one self-contained HTML page.

:func:`render_drift_html` takes the JSON-first dict of
:meth:`hindsight.drift.DriftReport.to_dict` (schema ``hindsight.drift_report/1``) and
returns a page that works offline and reads in a browser with JavaScript off or on
paper: inline CSS, plots as inline SVG built here, a few lines of vanilla script for
sorting and filtering. It embeds only the aggregates of the dict, never data rows.
Every user string (column names, category labels, sources) is escaped: the template
autoescapes, and the SVG built here escapes its text itself.
"""

from __future__ import annotations

import datetime as dt
import itertools
import math
from collections.abc import Mapping, Sequence
from functools import lru_cache
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined
from markupsafe import Markup, escape

__all__ = ["render_drift_html"]

_TEMPLATE = "drift.html.j2"

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


@lru_cache(maxsize=1)
def _environment() -> Environment:
    env = Environment(
        loader=PackageLoader("hindsight.reports", "templates"),
        autoescape=True,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["p"] = _fmt_p
    env.filters["num"] = _fmt_num
    env.filters["pct"] = _fmt_pct
    env.filters["words"] = _words
    return env


def render_drift_html(report: Mapping[str, Any]) -> str:
    """The report dict of ``DriftReport.to_dict()`` as one self-contained HTML page."""
    columns = [_column_view(c, i) for i, c in enumerate(report.get("columns") or [])]
    columns.sort(key=_summary_order)
    settings = dict(report.get("settings") or {})
    context = {
        "schema": str(report.get("schema", "")),
        "drift_detected": bool(report.get("drift_detected")),
        "rule": str(report.get("rule", "")),
        "n_tested": int(report.get("n_columns_tested", len(columns))),
        "n_drifted": sum(1 for c in columns if c["drifted"]),
        "share_drifted": float(report.get("share_drifted") or 0.0),
        "reference": _side(report.get("reference")),
        "current": _side(report.get("current")),
        "settings": _settings_view(settings),
        "overrides": sorted((str(k), str(v)) for k, v in (settings.get("tests") or {}).items()),
        "schema_changes": [_schema_change_view(s) for s in report.get("schema_changes") or []],
        "skipped": sorted(
            (str(k), str(v)) for k, v in (report.get("skipped_columns") or {}).items()
        ),
        "columns": columns,
        "multivariate": [_multivariate_view(m) for m in report.get("multivariate") or []],
        "seconds": report.get("seconds"),
        "ref_swatch": Markup('<span class="sw sw-ref" aria-hidden="true"></span>'),
        "cur_swatch": Markup('<span class="sw sw-cur" aria-hidden="true"></span>'),
    }
    return _environment().get_template(_TEMPLATE).render(context)


# -- views --------------------------------------------------------------------------------
def _side(side: Any) -> dict[str, Any]:
    side = side if isinstance(side, Mapping) else {}
    source = str(side.get("source", ""))
    rows = side.get("rows")
    # Sources like "data (20,000 rows)" already say how many rows.
    rows_text = None if rows is None or _fmt_int(rows) in source else f"{_fmt_int(rows)} rows"
    return {"source": source, "rows": rows_text}


def _settings_view(settings: Mapping[str, Any]) -> list[tuple[str, str]]:
    labels = {
        "alpha": "Significance level (alpha, after Benjamini-Hochberg)",
        "large_sample": "Effect threshold applies from (rows per side)",
        "min_effect": "Practical minimum effect",
        "drift_share": "Share of drifted columns for dataset drift",
        "discrete_max": "Numeric columns compared as counts up to (distinct values)",
        "calibration_draws": "Resamples for count-test null levels",
        "seed": "Seed",
    }
    out: list[tuple[str, str]] = []
    for key, label in labels.items():
        if key not in settings:
            continue
        value = settings[key]
        if key == "min_effect" and isinstance(value, Mapping):
            text = ", ".join(f"{_words(k)} {_fmt_num(v)}" for k, v in value.items()) or "none"
        elif key == "drift_share":
            text = "any drifted column" if not value else _fmt_pct(value)
        elif key == "large_sample" and isinstance(value, int):
            text = _fmt_int(value)
        else:
            text = _fmt_value(value)
        out.append((label, text))
    known = {*labels, "tests"}
    out += [(_words(k), _fmt_value(v)) for k, v in settings.items() if k not in known]
    return out


def _schema_change_view(change: Any) -> dict[str, str]:
    change = change if isinstance(change, Mapping) else {}
    return {
        "column": str(change.get("column", "")),
        "change": str(change.get("change", "")),
        "reference_kind": str(change.get("reference_kind") or "—"),
        "current_kind": str(change.get("current_kind") or "—"),
    }


def _column_view(col: Mapping[str, Any], index: int) -> dict[str, Any]:
    details = dict(col.get("details") or {})
    name = str(col.get("column", ""))
    kind = str(col.get("kind", ""))
    effect = _float(col.get("effect_size"))
    threshold = _float(col.get("effect_threshold"))
    drifted = bool(col.get("drifted"))
    effect_name = _words(str(col.get("effect_name", "effect")))
    unseen = [str(x) for x in details.pop("unseen_categories", None) or []]
    if effect is None:
        comparison = "—"
    elif threshold is None:
        comparison = f"{_fmt_num(effect)} (no threshold)"
    else:
        comparison = (
            f"{_fmt_num(effect)} {'≥' if effect >= threshold else '<'} {_fmt_num(threshold)}"
        )
    facts: list[tuple[str, str]] = [("Test", _test_text(col, details))]
    stat_bounds = details.pop("statistic_bounds", None)
    facts.append(("Statistic", _fmt_num(col.get("statistic"))))
    if _is_pair(stat_bounds):
        facts.append(
            ("Statistic bounds", f"{_fmt_num(stat_bounds[0])} to {_fmt_num(stat_bounds[1])}")
        )
    p_bounds = details.pop("p_value_bounds", None)
    facts.append(("p-value", _fmt_p(col.get("p_value"))))
    if _is_pair(p_bounds):
        facts.append(("p-value bounds", f"{_fmt_p(p_bounds[0])} to {_fmt_p(p_bounds[1])}"))
    facts.append(("Adjusted p-value", _fmt_p(col.get("p_adjusted"))))
    facts.append((f"Effect ({effect_name})", comparison))
    null_level = details.pop("null_level", None)
    if null_level is not None:
        facts.append(("Null level of the effect", _fmt_num(null_level)))
    facts.append(("Decided by", _words(str(col.get("decided_by", "")))))
    shift = details.pop("mean_shift_in_sd", None)
    if shift is not None and _float(shift) is not None:
        facts.append(("Mean shift", f"{float(shift):+.3g} sd of the reference"))
    facts.append(
        (
            "Rows (reference / current)",
            f"{_fmt_int(col.get('n_reference'))} / {_fmt_int(col.get('n_current'))}",
        )
    )
    facts.append(
        (
            "Null rate (reference / current)",
            f"{_fmt_pct(col.get('reference_null_rate'))} / {_fmt_pct(col.get('current_null_rate'))}",
        )
    )
    if "categories" in details:
        facts.append(("Categories compared", _fmt_value(details.pop("categories"))))
    unseen_share = details.pop("unseen_share", None)
    if unseen:
        many = "+" if len(unseen) >= 20 else ""
        noun = "category" if len(unseen) == 1 else "categories"
        facts.append(
            (
                "Unseen in the reference",
                f"{len(unseen)}{many} {noun}, {_fmt_pct(unseen_share)} of current rows",
            )
        )
    if details.pop("discrete_numeric", False):
        facts.append(("Compared as", "counts per value (few distinct values)"))
    details.pop("method", None)
    facts += [(_label(k), _fmt_value(v)) for k, v in details.items()]

    raw_plot = col.get("plot")
    plot: Mapping[str, Any] = raw_plot if isinstance(raw_plot, Mapping) else {}
    svg: Markup | None = None
    plot_type = plot.get("type")
    outer_note = False
    if plot_type == "histogram":
        svg = _histogram_svg(plot, kind, name)
        outer_note = svg is not None and len(plot.get("reference") or []) > 2
    elif plot_type == "bars":
        svg = _bars_svg(plot, name, set(unseen))
    q = _float(col.get("p_adjusted"))
    return {
        "anchor": f"col-{index}",
        "name": name,
        "kind": kind,
        "test": _SHORT_TEST_NAMES.get(str(col.get("test", "")), _words(col.get("test", ""))),
        "statistic": _float(col.get("statistic")),
        "sort": {
            key: _sort_value(col.get(key))
            for key in ("statistic", "p_value", "p_adjusted", "effect_size")
        },
        "p_value": _float(col.get("p_value")),
        "p_adjusted": q,
        "effect_name": effect_name,
        "effect": effect,
        "threshold": threshold,
        "comparison": comparison,
        "meter": _meter(effect, threshold),
        "drifted": drifted,
        "facts": facts,
        "unseen": unseen,
        "svg": svg,
        "plot_type": plot_type,
        "outer_note": outer_note,
    }


def _summary_order(c: Mapping[str, Any]) -> tuple[bool, float, float, str]:
    q = c["p_adjusted"]
    effect = c["effect"]
    return (not c["drifted"], 2.0 if q is None else q, -(effect or 0.0), c["name"])


_SHORT_TEST_NAMES = {"ks": "KS", "chi_square": "chi-square"}


def _sort_value(x: Any) -> str:
    """A cell's sort key for the page script: a short number, or empty (sorted last)."""
    v = _float(x)
    return "" if v is None else f"{v:.6g}"


def _test_text(col: Mapping[str, Any], details: Mapping[str, Any]) -> str:
    names = {
        "ks": "Kolmogorov-Smirnov",
        "chi_square": "chi-square test of homogeneity",
    }
    test = str(col.get("test", ""))
    text = names.get(test, _words(test))
    method = details.get("method")
    return f"{text} ({method})" if method else text


def _meter(effect: float | None, threshold: float | None) -> dict[str, float] | None:
    """Positions (percent of the track) of the effect bar's end and the threshold mark."""
    if effect is None or threshold is None or threshold <= 0:
        return None
    top = max(effect, threshold) * 1.25
    return {"effect": round(100 * effect / top, 1), "threshold": round(100 * threshold / top, 1)}


def _multivariate_view(m: Any) -> dict[str, Any]:
    m = m if isinstance(m, Mapping) else {}
    rows = m.get("rows")
    return {
        "test": _words(str(m.get("test", ""))),
        "columns": [str(c) for c in m.get("columns") or []],
        "rows": (
            f"{_fmt_int(rows[0])} / {_fmt_int(rows[1])}"
            if isinstance(rows, Sequence) and len(rows) == 2
            else _fmt_value(rows)
        ),
        "statistic": _fmt_num(m.get("statistic")),
        "p_value": _fmt_p(m.get("p_value")),
        "effect": _fmt_num(m.get("effect_size")),
        "threshold": f"{_words(str(m.get('threshold_on', '')))} {_fmt_num(m.get('threshold'))}",
        "drifted": bool(m.get("drifted")),
        "details": [
            (_label(k), _fmt_value(v)) for k, v in (m.get("details") or {}).items() if k != "effect"
        ],
    }


# -- formatting ---------------------------------------------------------------------------
def _float(x: Any) -> float | None:
    if isinstance(x, bool) or not isinstance(x, int | float):
        return None
    v = float(x)
    return v if math.isfinite(v) else None


def _is_pair(x: Any) -> bool:
    return isinstance(x, Sequence) and not isinstance(x, str) and len(x) == 2


def _words(s: Any) -> str:
    return str(s).replace("_", " ")


def _label(key: Any) -> str:
    """A details key as a label: ``n_permutations`` -> ``N permutations``."""
    text = _words(key)
    return text[:1].upper() + text[1:]


def _fmt_num(x: Any, digits: int = 3) -> str:
    v = _float(x)
    if v is None:
        return "—"
    if v == 0:
        return "0"
    if 1e-3 <= abs(v) < 1:
        return f"{v:.{digits}g}"
    if 1 <= abs(v) < 1e6:
        return f"{v:,.{digits + 1}g}" if abs(v) < 10 ** (digits + 1) else f"{v:,.0f}"
    return _sci(v, digits)


def _sci(v: float, digits: int) -> str:
    """Scientific notation without padding: ``4.46e-4``, ``1e+12``."""
    mantissa, _, exponent = f"{v:.{digits - 1}e}".partition("e")
    if "." in mantissa:
        mantissa = mantissa.rstrip("0").rstrip(".")
    sign = exponent[0] if exponent[0] == "-" else ""
    return f"{mantissa}e{sign}{exponent[1:].lstrip('0') or '0'}"


def _fmt_p(x: Any) -> str:
    v = _float(x)
    if v is None:
        return "—"
    if v <= 0:
        return "< 1e-300"
    if v < 1e-3:
        return _sci(v, 2)
    return f"{v:.3f}"


def _fmt_pct(x: Any) -> str:
    v = _float(x)
    if v is None:
        return "—"
    if v == 0:
        return "0%"
    pct = 100 * v
    if abs(pct) < 0.1:
        return f"{pct:.2g}%"
    return f"{pct:.1f}%" if abs(pct) < 10 else f"{pct:.0f}%"


def _fmt_int(x: Any) -> str:
    return f"{x:,}" if isinstance(x, int) and not isinstance(x, bool) else _fmt_value(x)


def _fmt_value(v: Any) -> str:
    if v is None:
        return "—"
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, int):
        return f"{v:,}"
    if isinstance(v, float):
        return _fmt_num(v, 4)
    if isinstance(v, Mapping):
        text = ", ".join(f"{_words(k)}: {_fmt_value(x)}" for k, x in v.items())
    elif isinstance(v, Sequence) and not isinstance(v, str):
        text = ", ".join(_fmt_value(x) for x in v)
    else:
        text = str(v)
    return text if len(text) <= 300 else text[:299] + "…"


# -- SVG ------------------------------------------------------------------------------------
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


def _histogram_svg(plot: Mapping[str, Any], kind: str, column: str) -> Markup | None:
    """Reference as a filled step area, current as a step line, on shared bins.

    Exact shares per bin travel as compact data attributes (``data-x`` bin boundaries in
    SVG units, ``data-l`` edge labels, ``data-r``/``data-c`` percentages) for the page's
    hover readout; the drawing itself needs no script.
    """
    ref = [_float(x) or 0.0 for x in plot.get("reference") or []]
    cur = [_float(x) or 0.0 for x in plot.get("current") or []]
    edges = [_float(x) for x in plot.get("edges") or []]
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


def _bars_svg(plot: Mapping[str, Any], column: str, unseen: set[str]) -> Markup | None:
    """Horizontal paired bars per category (reference above current), shares written out."""
    labels = [str(x) for x in plot.get("labels") or []]
    ref = [_float(x) or 0.0 for x in plot.get("reference") or []]
    cur = [_float(x) or 0.0 for x in plot.get("current") or []]
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
            title = f"<title>{escape(name)}{suffix}: reference {_fmt_pct(r)}, current {_fmt_pct(c)}</title>"
        cls = "lab new" if new else "lab"
        parts.append(
            f"<g>{title}"
            f'<rect class="ref" x="{_c(left)}" y="{_c(row)}" width="{_c(x(r) - left)}" height="{_c(bar_h)}"/>'
            f'<rect class="curbar" x="{_c(left)}" y="{_c(row + bar_h)}" width="{_c(x(c) - left)}" height="{_c(bar_h)}"/>'
            f'<text class="{cls}" x="{_c(left - 6)}" y="{_c(row + bar_h + 3.5)}">{escape(shown)}</text>'
            f'<text class="val" x="{_c(x(r) + 3)}" y="{_c(row + bar_h - 2)}">{_fmt_pct(r)}</text>'
            f'<text class="val" x="{_c(x(c) + 3)}" y="{_c(row + 2 * bar_h - 2)}">{_fmt_pct(c)}</text></g>'
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
