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

from collections.abc import Mapping, Sequence
from functools import lru_cache
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined
from markupsafe import Markup

from hindsight.reports._format import (
    as_float,
    fmt_int,
    fmt_num,
    fmt_p,
    fmt_pct,
    fmt_value,
    is_pair,
    label_of,
    words,
)
from hindsight.reports.svg import bars_svg, histogram_svg

__all__ = ["render_drift_html"]

_TEMPLATE = "drift.html.j2"



@lru_cache(maxsize=1)
def _environment() -> Environment:
    env = Environment(
        loader=PackageLoader("hindsight.reports", "templates"),
        autoescape=True,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["p"] = fmt_p
    env.filters["num"] = fmt_num
    env.filters["pct"] = fmt_pct
    env.filters["words"] = words
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
    rows_text = None if rows is None or fmt_int(rows) in source else f"{fmt_int(rows)} rows"
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
            text = ", ".join(f"{words(k)} {fmt_num(v)}" for k, v in value.items()) or "none"
        elif key == "drift_share":
            text = "any drifted column" if not value else fmt_pct(value)
        elif key == "large_sample" and isinstance(value, int):
            text = fmt_int(value)
        else:
            text = fmt_value(value)
        out.append((label, text))
    known = {*labels, "tests"}
    out += [(words(k), fmt_value(v)) for k, v in settings.items() if k not in known]
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
    effect = as_float(col.get("effect_size"))
    threshold = as_float(col.get("effect_threshold"))
    drifted = bool(col.get("drifted"))
    effect_name = words(str(col.get("effect_name", "effect")))
    unseen = [str(x) for x in details.pop("unseen_categories", None) or []]
    if effect is None:
        comparison = "—"
    elif threshold is None:
        comparison = f"{fmt_num(effect)} (no threshold)"
    else:
        comparison = (
            f"{fmt_num(effect)} {'≥' if effect >= threshold else '<'} {fmt_num(threshold)}"
        )
    facts: list[tuple[str, str]] = [("Test", _test_text(col, details))]
    stat_bounds = details.pop("statistic_bounds", None)
    facts.append(("Statistic", fmt_num(col.get("statistic"))))
    if is_pair(stat_bounds):
        facts.append(
            ("Statistic bounds", f"{fmt_num(stat_bounds[0])} to {fmt_num(stat_bounds[1])}")
        )
    p_bounds = details.pop("p_value_bounds", None)
    facts.append(("p-value", fmt_p(col.get("p_value"))))
    if is_pair(p_bounds):
        facts.append(("p-value bounds", f"{fmt_p(p_bounds[0])} to {fmt_p(p_bounds[1])}"))
    facts.append(("Adjusted p-value", fmt_p(col.get("p_adjusted"))))
    facts.append((f"Effect ({effect_name})", comparison))
    null_level = details.pop("null_level", None)
    if null_level is not None:
        facts.append(("Null level of the effect", fmt_num(null_level)))
    facts.append(("Decided by", words(str(col.get("decided_by", "")))))
    shift = details.pop("mean_shift_in_sd", None)
    if shift is not None and as_float(shift) is not None:
        facts.append(("Mean shift", f"{float(shift):+.3g} sd of the reference"))
    facts.append(
        (
            "Rows (reference / current)",
            f"{fmt_int(col.get('n_reference'))} / {fmt_int(col.get('n_current'))}",
        )
    )
    facts.append(
        (
            "Null rate (reference / current)",
            f"{fmt_pct(col.get('reference_null_rate'))} / {fmt_pct(col.get('current_null_rate'))}",
        )
    )
    if "categories" in details:
        facts.append(("Categories compared", fmt_value(details.pop("categories"))))
    unseen_share = details.pop("unseen_share", None)
    if unseen:
        many = "+" if len(unseen) >= 20 else ""
        noun = "category" if len(unseen) == 1 else "categories"
        facts.append(
            (
                "Unseen in the reference",
                f"{len(unseen)}{many} {noun}, {fmt_pct(unseen_share)} of current rows",
            )
        )
    if details.pop("discrete_numeric", False):
        facts.append(("Compared as", "counts per value (few distinct values)"))
    details.pop("method", None)
    facts += [(label_of(k), fmt_value(v)) for k, v in details.items()]

    raw_plot = col.get("plot")
    plot: Mapping[str, Any] = raw_plot if isinstance(raw_plot, Mapping) else {}
    svg: Markup | None = None
    plot_type = plot.get("type")
    outer_note = False
    if plot_type == "histogram":
        svg = histogram_svg(plot, kind, name)
        outer_note = svg is not None and len(plot.get("reference") or []) > 2
    elif plot_type == "bars":
        svg = bars_svg(plot, name, set(unseen))
    q = as_float(col.get("p_adjusted"))
    return {
        "anchor": f"col-{index}",
        "name": name,
        "kind": kind,
        "test": _SHORT_TEST_NAMES.get(str(col.get("test", "")), words(col.get("test", ""))),
        "statistic": as_float(col.get("statistic")),
        "sort": {
            key: _sort_value(col.get(key))
            for key in ("statistic", "p_value", "p_adjusted", "effect_size")
        },
        "p_value": as_float(col.get("p_value")),
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
    v = as_float(x)
    return "" if v is None else f"{v:.6g}"


def _test_text(col: Mapping[str, Any], details: Mapping[str, Any]) -> str:
    names = {
        "ks": "Kolmogorov-Smirnov",
        "chi_square": "chi-square test of homogeneity",
    }
    test = str(col.get("test", ""))
    text = names.get(test, words(test))
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
        "test": words(str(m.get("test", ""))),
        "columns": [str(c) for c in m.get("columns") or []],
        "rows": (
            f"{fmt_int(rows[0])} / {fmt_int(rows[1])}"
            if isinstance(rows, Sequence) and len(rows) == 2
            else fmt_value(rows)
        ),
        "statistic": fmt_num(m.get("statistic")),
        "p_value": fmt_p(m.get("p_value")),
        "effect": fmt_num(m.get("effect_size")),
        "threshold": f"{words(str(m.get('threshold_on', '')))} {fmt_num(m.get('threshold'))}",
        "drifted": bool(m.get("drifted")),
        "details": [
            (label_of(k), fmt_value(v)) for k, v in (m.get("details") or {}).items() if k != "effect"
        ],
    }


# -- formatting ---------------------------------------------------------------------------
