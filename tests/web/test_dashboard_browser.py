"""The dashboard in Debian's headless Chromium, over a real uvicorn on loopback.

Screenshots of the pages are written to ``build/screenshots/`` (the README shows copies
from ``docs/screenshots/``).
"""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from chromium_browser import chromium
from hindsight.ledger import Ledger, add_lesson, experiment
from hindsight.serving import AbstentionPolicy, MockBackend, RulesBackend
from hindsight.serving.service import Service
from hindsight.web import auth, create_app
from live_server import live_server

SHOTS = Path(__file__).resolve().parents[2] / "build" / "screenshots"
PASSWORD = "correct horse battery"


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with chromium() as b:
        yield b


def _abstained_case(ledger: Ledger) -> None:
    """A served model that abstains, so one case waits in the review queue."""
    rules = RulesBackend([], "approve")
    svc = Service("loans", [MockBackend("approve", name="model", confidence=0.2), rules],
                  abstention=AbstentionPolicy(min_confidence=0.5), store=ledger.store)
    try:
        assert svc.predict_sync({"amount": 3}).abstained
    finally:
        svc.close()


def _failed_canary(ledger: Ledger) -> None:
    """A real canary whose candidate is slower: it rolls back at its first interval."""
    import asyncio

    clock = [1_000_000.0]
    svc = Service("recs", [MockBackend("a", name="model", version="1"), RulesBackend([], "b")],
                  store=ledger.store, ledger=ledger, deadline_ms=2000.0)
    canary = svc.start_canary(
        MockBackend("a", name="model-v2", version="2", latency_ms=4.0), steps=[20, 50, 100],
        interval_s=60, min_requests=30, tick_s=None, clock=lambda: clock[0],
    )

    async def drive(start: int) -> None:
        for i in range(start, start + 300):
            await svc.predict({"i": i}, key=f"user-{i}")

    try:
        for interval in range(4):
            if not canary.active:
                break
            asyncio.run(drive(interval * 300))
            clock[0] += 61
            canary.tick()
        assert canary.status_name == "rolled_back"
    finally:
        svc.close()


def _crash(ledger: Ledger, dim: int) -> str:
    exp = experiment("ranker-v2", ledger=ledger, quiet=True, project="recsys",
                     config={"embedding_dim": dim}, tags=["deep"],
                     hypothesis="A wider embedding improves CTR.")
    with pytest.raises(ValueError), exp:
        raise ValueError(f"matmul: size {2 * dim} is different from {dim + 32}")
    return exp.id


def test_the_main_journeys_through_the_dashboard(
    ledger: Ledger, browser: Any
) -> None:
    first = _crash(ledger, 48)
    add_lesson(ledger, "embedding_dim must equal the side-feature width.", sources=[first])
    with experiment("baseline", ledger=ledger, quiet=True, project="recsys",
                    criteria={"ctr": ">= 0.6"}, hypothesis="CF reaches CTR 0.6") as exp:
        exp.log_metric("ctr", 0.7)
    second = _crash(ledger, 64)
    auth.create_user(ledger.store, "ed", role="editor", password=PASSWORD)
    # Playwright's sync API runs an event loop in this thread: serve from another one.
    with ThreadPoolExecutor(1) as pool:
        pool.submit(_abstained_case, ledger).result()
        pool.submit(_failed_canary, ledger).result()
    SHOTS.mkdir(parents=True, exist_ok=True)
    with live_server(create_app(ledger)) as url:
        page = browser.new_context(viewport={"width": 1280, "height": 900}).new_page()
        page.goto(f"{url}/experiments")
        assert page.url.startswith(f"{url}/login")  # nothing shown without a login
        page.fill("input[name=name]", "ed")
        page.fill("input[name=password]", "wrong password")
        page.click("button[type=submit]")
        assert page.get_by_role("alert").inner_text() == "Wrong name or password."
        page.fill("input[name=name]", "ed")
        page.fill("input[name=password]", PASSWORD)
        page.click("button[type=submit]")
        assert page.url == f"{url}/experiments"
        page.screenshot(path=str(SHOTS / "experiments.png"), full_page=True)

        # Find the failures: the filter form is a plain GET form.
        page.select_option("select[name=outcome]", "failure")
        page.click("text=Filter")
        assert "outcome=failure" in page.url
        names = page.locator("tbody tr td:first-child a").all_inner_texts()
        assert names == ["canary recs: 2", "ranker-v2", "ranker-v2"]  # the rolled-back canary too
        page.click(f"a[href='/experiments/{second}']")
        assert page.locator("h1").inner_text().startswith("ranker-v2")
        similar = page.locator("#similar + .box")
        assert "same fingerprint" in similar.inner_text()
        assert "embedding_dim must equal the side-feature width." in similar.inner_text()
        page.screenshot(path=str(SHOTS / "experiment.png"), full_page=True)

        # Open the similar failure's experiment, then add a lesson to this one.
        similar.locator(f"a[href='/experiments/{first}']").click()
        assert page.url == f"{url}/experiments/{first}"
        page.go_back()
        page.fill("textarea[name=text]", "Derive layer widths from the data, not the config.")
        page.fill("input[name=tags]", "shapes")
        page.click("text=Add lesson")
        assert page.url == f"{url}/experiments/{second}#lessons"
        assert "Derive layer widths from the data" in page.locator("#lessons ~ .box").first.inner_text()
        assert [les.text for les in ledger.lessons_for([second])] == [
            "Derive layer widths from the data, not the config."
        ]

        # Draft the blameless post-mortem from the failure, give it an owned action item.
        page.click("text=Open post-mortem")
        assert page.url.endswith("/edit") and "/postmortems/" in page.url
        page.fill("textarea[name=root_cause]", "Layer widths were hard-coded from the config.")
        page.fill("input[aria-label='new action item'] >> nth=0", "Infer widths at build time")
        page.fill("input[aria-label='owner of the new action item'] >> nth=0", "ed")
        page.click("text=Save")
        assert "/edit" not in page.url
        assert "Layer widths were hard-coded from the config." in page.inner_text("main")
        assert "Infer widths at build time" in page.inner_text("main")
        page.screenshot(path=str(SHOTS / "postmortem.png"), full_page=True)
        (pm,) = ledger.store.list_postmortems()
        assert pm["failure_id"] == ledger.experiment_record(second).failure_id
        page.goto(f"{url}/lessons")
        assert "Derive layer widths from the data" in page.inner_text("main")
        page.screenshot(path=str(SHOTS / "lessons.png"), full_page=True)

        # Decide a review item: the model abstained, a person overrides it.
        page.goto(f"{url}/review")
        page.locator("main tbody a[href^='/review/']").first.click()
        page.click("text=Claim for review")
        page.fill("input[name=answer]", "decline")
        page.get_by_role("button", name="Decide", exact=True).click()
        assert "overrode the model" in page.inner_text("main")
        (item,) = ledger.store.list_review_items(service="loans", status="decided")
        assert item["decision"] is not None and item["reviewer"] == "ed"

        # See the canary's verdict on its service's page.
        page.goto(f"{url}/services/recs")
        text = page.inner_text("main")
        assert "rolled_back" in text and "Failed experiment" in text
        page.screenshot(path=str(SHOTS / "service.png"), full_page=True)
        page.click("text=Log out")
        page.goto(f"{url}/experiments/{second}")
        assert page.url.startswith(f"{url}/login")
