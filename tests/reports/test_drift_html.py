"""The self-contained HTML drift report, rendered from real, seeded drift reports.

The static checks parse the page; the browser checks load it from a file:// URL in
Debian's headless Chromium through Playwright (skipped where either is missing,
failed in CI).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pytest

from chromium_browser import chromium
from hindsight.drift import DriftReport, drift_report
from hindsight.reports.drift_html import render_drift_html

EVIL = "<script>alert(1)</script>"
EVIL_LABELS = ["<b>x</b>", 'a"b', "c&d", "<img src=x onerror=alert(2)>"]
N = 3000


def _side(rng: np.random.Generator, shifted: bool) -> pa.Table:
    """25 tested columns of every kind, plus a missing/extra/retyped and a skipped one."""
    cols: dict[str, Any] = {}
    for i in range(18):
        shift = 1.0 if shifted and i % 3 == 0 else 0.0
        cols[f"feature_{i:02d}"] = rng.normal(shift, 1.0, N)
    cols["income"] = rng.lognormal(10, 1, N)
    cols[EVIL] = rng.choice(EVIL_LABELS, N)
    cols["plan"] = rng.choice(["a", "b", "c", "d"] if shifted else ["a", "b", "c"], N)
    cols["signup"] = np.datetime64("2024-01-01") + rng.integers(0, 86400 * 30, N).astype(
        "timedelta64[s]"
    )
    cols["active"] = rng.random(N) < (0.5 if shifted else 0.3)
    cols["rating"] = rng.integers(1, 7 if shifted else 6, N)
    nulls = rng.random(N) < (0.2 if shifted else 0.05)
    cols["with_nulls"] = pa.array(np.where(nulls, np.nan, rng.normal(0, 1, N)), from_pandas=True)
    cols["dropped" if not shifted else "added"] = rng.normal(0, 1, N)
    cols["retyped"] = rng.normal(0, 1, N) if shifted else rng.choice(["x", "y"], N)
    cols["tags"] = pa.array([[1, 2]] * N)  # a list column: skipped
    return pa.table({k: v if isinstance(v, pa.Array) else pa.array(v) for k, v in cols.items()})


@pytest.fixture(scope="module")
def report() -> DriftReport:
    rng = np.random.default_rng(7)
    return drift_report(_side(rng, False), _side(rng, True), multivariate=["mmd"])


@pytest.fixture(scope="module")
def html(report: DriftReport) -> str:
    return report.to_html()


@pytest.fixture(scope="module")
def quiet_html() -> str:
    """A report without drift: the same distribution on both sides."""
    rng = np.random.default_rng(3)
    ref = {"age": rng.normal(40, 10, 2000), "plan": rng.choice(["a", "b"], 2000)}
    cur = {"age": rng.normal(40, 10, 2000), "plan": rng.choice(["a", "b"], 2000)}
    result = drift_report(ref, cur)
    assert not result.drift_detected
    return result.to_html()


class _Page(HTMLParser):
    """Tags with their attributes, and the text of every <script>."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.scripts: list[str] = []
        self._in_script = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))
        if tag == "script":
            self._in_script = True
            self.scripts.append("")

    def handle_endtag(self, tag: str) -> None:
        if tag == "script":
            self._in_script = False

    def handle_data(self, data: str) -> None:
        if self._in_script:
            self.scripts[-1] += data


def _parse(html: str) -> _Page:
    page = _Page()
    page.feed(html)
    page.close()
    return page


# -- static checks ---------------------------------------------------------------------
def test_report_has_the_columns_this_test_expects(report: DriftReport) -> None:
    assert len(report.columns) == 25
    assert {c.change for c in report.schema_changes} == {"missing", "extra", "retyped"}
    assert "tags" in report.skipped
    assert report.drift_detected and report.drifted_columns


def test_page_loads_nothing_from_outside(html: str) -> None:
    assert "http://" not in html and "https://" not in html
    assert "url(" not in html and "@import" not in html
    page = _parse(html)
    for tag, attrs in page.tags:
        assert "src" not in attrs, f"<{tag} src=...> loads a resource"
        href = attrs.get("href")
        if href is not None:
            assert href.startswith("#"), f"<{tag} href={href!r}> leaves the page"
    assert not any(tag in ("link", "img", "iframe", "object", "embed") for tag, _ in page.tags)
    csp = [
        a for t, a in page.tags if t == "meta" and a.get("http-equiv") == "Content-Security-Policy"
    ]
    assert csp and "default-src 'none'" in (csp[0]["content"] or "")


def test_user_strings_are_escaped(html: str) -> None:
    page = _parse(html)
    assert len(page.scripts) == 1 and "alert" not in page.scripts[0]
    assert EVIL not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    for label in EVIL_LABELS:
        assert label not in html
    assert "&lt;b&gt;x&lt;/b&gt;" in html
    assert "&lt;img src=x onerror=alert(2)&gt;" in html
    assert not any(tag in ("b", "img") for tag, _ in page.tags)
    assert not any(name.startswith("on") for _, attrs in page.tags for name in attrs)


def test_every_column_has_a_row_and_a_card_drifted_first(report: DriftReport, html: str) -> None:
    page = _parse(html)
    rows = [a for t, a in page.tags if t == "tr" and "data-col" in a]
    cards = [a for t, a in page.tags if t == "article"]
    names = [c.column for c in report.columns]
    assert sorted(str(a["data-col"]) for a in rows) == sorted(names)
    assert sorted(str(a["data-col"]) for a in cards) == sorted(names)
    flags = [a["data-drifted"] == "1" for a in rows]
    assert flags == sorted(flags, reverse=True)  # every drifted row before every stable one
    assert sum(flags) == len(report.drifted_columns)
    drifted_cards = {str(a["data-col"]) for a in cards if a["data-drifted"] == "1"}
    assert drifted_cards == set(report.drifted_columns)
    svgs = [a for t, a in page.tags if t == "svg"]
    assert len(svgs) == len(names)  # one plot per column


def test_header_schema_and_multivariate_sections(report: DriftReport, html: str) -> None:
    assert "Drift detected" in html and 'class="verdict bad"' in html
    assert report.rule.split(".")[0] in html
    for change in report.schema_changes:
        assert change.column in html
    assert "missing from current" in html and "new in current" in html
    assert "type changed" in html
    assert "list&lt;item: int64&gt;" in html  # the skipped column's type, escaped
    assert 'id="multivariate"' in html and "mmd" in html
    assert "Categories not in the reference" in html  # plan gains "d"
    assert "sd of the reference" in html


def test_verdict_without_drift(quiet_html: str) -> None:
    assert "No drift detected" in quiet_html and 'class="verdict ok"' in quiet_html
    assert "Drift detected" not in quiet_html


def test_size_stays_small(html: str) -> None:
    size = len(html.encode("utf-8"))
    assert size < 150_000, f"{size:,} bytes for 25 columns"


def test_svg_coordinates_have_one_decimal_at_most(html: str) -> None:
    numbers = []
    for svg in re.findall(r"<svg.*?</svg>", html, flags=re.S):
        for attr in re.findall(r' (?:d|x|y|width|height|data-x)="([^"]*)"', svg):
            numbers += re.findall(r"-?\d+(?:\.\d+)?", attr)
    assert numbers
    assert all(len(n.partition(".")[2]) <= 1 for n in numbers)


def test_renders_from_the_json_schema(report: DriftReport, html: str) -> None:
    """A stored report (its JSON) renders to the same page as the live object."""
    assert render_drift_html(json.loads(report.to_json())) == html


def test_writes_the_file(report: DriftReport, tmp_path: Path) -> None:
    path = tmp_path / "drift.html"
    text = report.to_html(path)
    assert path.read_text(encoding="utf-8") == text
    assert text.startswith("<!DOCTYPE html>")


def test_constant_columns_render() -> None:
    """A constant column gives a one-bin histogram (or a single bar): no division by zero."""
    ref = {"const": np.full(500, 2.5), "one": np.full(500, 3.0), "x": np.arange(500.0)}
    cur = {"const": np.full(400, 2.5), "one": np.full(400, 3.0), "x": np.arange(400.0)}
    page = drift_report(ref, cur).to_html()
    assert page.count("<svg") == 3
    assert re.search(r'="[^"]*\b(nan|inf)\b', page, flags=re.I) is None


# -- in a real browser -------------------------------------------------------------------
@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with chromium() as b:
        yield b


@pytest.fixture
def report_file(html: str, tmp_path: Path) -> str:
    path = tmp_path / "drift report.html"
    path.write_text(html, encoding="utf-8")
    return path.as_uri()


def _open(browser: Any, url: str, **options: Any) -> tuple[Any, Any, list[str]]:
    context = browser.new_context(viewport={"width": 1280, "height": 900}, **options)
    page = context.new_page()
    problems: list[str] = []
    page.on(
        "console",
        lambda m: (
            problems.append(f"console {m.type}: {m.text}")
            if m.type in ("error", "warning")
            else None
        ),
    )
    page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
    page.on("dialog", lambda d: (problems.append(f"dialog: {d.message}"), d.dismiss()))
    page.on("request", lambda r: problems.append(f"request: {r.url}") if r.url != url else None)
    page.goto(url)
    return context, page, problems


def test_browser_renders_without_errors(
    browser: Any, report_file: str, report: DriftReport
) -> None:
    context, page, problems = _open(browser, report_file)
    try:
        plots = page.locator("svg.plot")
        assert plots.count() == len(report.columns)
        for i in range(plots.count()):
            box = plots.nth(i).bounding_box()
            assert box is not None and box["width"] > 100 and box["height"] > 50
        # The drawn shapes themselves have extent, not just the <svg> box.
        areas = page.eval_on_selector_all(
            "svg.plot path.ref, svg.plot rect.ref",
            "els => els.map(e => e.getBBox().width * e.getBBox().height)",
        )
        assert len(areas) >= len(report.columns) and all(a >= 0 for a in areas)
        assert sum(1 for a in areas if a > 0) >= len(report.columns)
        assert page.locator(".verdict").inner_text().startswith("!")
        assert "Drift detected" in page.locator(".verdict").inner_text()
        assert page.locator("#controls").is_visible()
        assert problems == []
    finally:
        context.close()


def test_browser_filters_sorts_and_shows_bin_values(
    browser: Any, report_file: str, report: DriftReport
) -> None:
    context, page, problems = _open(browser, report_file)
    try:
        rows = page.locator("#summary-table tbody tr")
        cards = page.locator("article.card")
        n, drifted = len(report.columns), len(report.drifted_columns)
        assert rows.locator("visible=true").count() == n

        page.check("#only-drifted")
        assert rows.locator("visible=true").count() == drifted
        assert cards.locator("visible=true").count() == drifted
        visible = rows.locator("visible=true")
        assert all(visible.nth(i).get_attribute("data-drifted") == "1" for i in range(drifted))
        page.uncheck("#only-drifted")
        assert cards.locator("visible=true").count() == n

        page.fill("#filter", "script")
        assert rows.locator("visible=true").count() == 1
        assert rows.locator("visible=true").get_attribute("data-col") == EVIL
        page.fill("#filter", "")

        page.click("#summary-table thead th:first-child button")
        names = [str(rows.nth(i).get_attribute("data-col")) for i in range(n)]
        collated = page.evaluate("xs => xs.slice().sort((a, b) => a.localeCompare(b))", names)
        assert names == collated and names != [c.column for c in report.columns]
        page.click("#summary-table thead th:first-child button")  # again: descending
        assert [rows.nth(i).get_attribute("data-col") for i in range(n)] == names[::-1]
        page.click("#summary-table thead th:nth-child(6) button")  # adjusted p, ascending
        qs = [rows.nth(i).locator("td").nth(5).get_attribute("data-v") for i in range(n)]
        values = [float(q) for q in qs if q]
        assert values == sorted(values)

        plot = page.locator('article[data-col="feature_00"] svg.plot')
        plot.scroll_into_view_if_needed()
        box = plot.bounding_box()
        assert box is not None
        page.mouse.move(box["x"] + box["width"] * 0.5, box["y"] + box["height"] * 0.4)
        tip = page.locator(".tip")
        assert tip.is_visible()
        assert re.search(r"reference [\d.]+%, current [\d.]+%", tip.inner_text())
        page.mouse.move(0, 0)
        assert not tip.is_visible()
        assert problems == []
    finally:
        context.close()


def test_browser_reads_without_javascript(
    browser: Any, report_file: str, report: DriftReport
) -> None:
    context, page, problems = _open(browser, report_file, java_script_enabled=False)
    try:
        assert not page.locator("#controls").is_visible()
        assert page.locator("#summary-table tbody tr").locator("visible=true").count() == len(
            report.columns
        )
        assert page.locator("article.card").locator("visible=true").count() == len(report.columns)
        box = page.locator("svg.plot").first.bounding_box()
        assert box is not None and box["width"] > 100
        assert problems == []
    finally:
        context.close()
