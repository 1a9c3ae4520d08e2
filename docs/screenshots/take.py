"""Take the README's screenshots of the dashboard from a fresh demo ledger.

Runs ``hindsight demo`` into a temporary home, serves its ledger, logs in as an admin in
Debian's headless Chromium (Playwright, ``/usr/bin/chromium``) and writes PNGs next to
this file. Needs ``make .venv/.test-installed`` and ``make browser``.

Run: .venv/bin/python docs/screenshots/take.py
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path.insert(0, str(ROOT / "tests"))

PASSWORD = "screenshot password"


def main() -> int:
    from playwright.sync_api import sync_playwright

    from hindsight.ledger import Ledger
    from hindsight.web import auth, create_app
    from live_server import live_server

    with tempfile.TemporaryDirectory(prefix="hs-shots-") as tmp:
        home = Path(tmp)
        env = {**os.environ, "HINDSIGHT_HOME": str(home)}
        env.pop("HINDSIGHT_STORE", None)
        subprocess.run(
            [sys.executable, "-c", "from hindsight.cli.main import main; main()", "demo"],
            check=True, env=env, cwd=tmp, stdout=subprocess.DEVNULL,
        )
        ledger = Ledger.at(f"sqlite:///{home / 'hindsight.db'}", home=home)
        auth.create_user(ledger.store, "ada", role="admin", password=PASSWORD)
        auth.create_user(ledger.store, "ci-bot", role="editor")
        auth.create_token(ledger.store, "ci-bot", "nightly")
        (drift,) = ledger.store.list_drift_reports()[0]
        with live_server(create_app(ledger)) as url, sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path="/usr/bin/chromium")
            page = browser.new_context(viewport={"width": 1280, "height": 900}).new_page()
            page.goto(f"{url}/login")
            page.fill("input[name=name]", "ada")
            page.fill("input[name=password]", PASSWORD)
            page.click("button[type=submit]")
            for path, name in (
                ("/experiments", "experiments"),
                (f"/data/drift/{drift['id']}", "drift_report"),
                ("/services", "services"),
                ("/services/recommend", "service"),
                ("/admin/users", "admin_users"),
            ):
                page.goto(url + path)
                page.screenshot(path=str(HERE / f"{name}.png"), full_page=True)
                print(f"{name}.png  <- {path}")
            browser.close()
        ledger.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
