"""Page times of the team server's list pages with 100,000 experiments in the store.

The store (SQLite in a temporary directory, or ``--store URL``, e.g. the PostgreSQL
server) is filled in bulk with SQLAlchemy Core inserts into the experiments table:
5 projects, 400 names, a mix of outcomes and statuses, tags, hypotheses and small
configs, started over a year. ``hindsight server``'s app runs under a real uvicorn on
loopback, and each list view is fetched 40 times over HTTP by one logged-in client
(page 1, a deep page, each filter, a text search, and the JSON API). Reported: p50 and
p95 per view, and p95 over all of them.

No peer: the nearest one, MLflow's run search, would need its 100,000 runs logged one
by one (hours on this machine), so this reports hindsight's times only.

Run: .venv/bin/python benchmarks/web/list_pages.py [--json] [--quick] [--store URL]
"""

from __future__ import annotations

import argparse
import random
import socket
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from _common import Target, percentile, report

PROJECTS = ("recsys", "search", "ads", "vision", "nlp")
OUTCOMES = ("success", "failure", "partial", None)
WORDS = ("cold start", "embedding", "learning rate", "dropout", "side features", "ranker",
         "latency", "calibration", "augmentation", "warmup", "distillation", "pruning")


def _rows(n: int, seed: int = 7) -> Iterator[dict[str, Any]]:
    rng = random.Random(seed)
    now = time.time()
    for i in range(n):
        outcome = rng.choices(OUTCOMES, weights=(40, 35, 15, 10))[0]
        status = "crashed" if outcome == "failure" and rng.random() < 0.4 else "finished"
        start = now - rng.random() * 365 * 86400
        words = rng.sample(WORDS, 2)
        yield {
            "id": f"exp_bench{i:010d}", "project": rng.choice(PROJECTS),
            "name": f"model-{rng.randrange(400):03d}",
            "hypothesis": f"{words[0].capitalize()} with {words[1]} lifts the metric.",
            "approach": f"try {words[1]}", "tags": rng.sample(WORDS, 2),
            "config": {"lr": 10 ** rng.uniform(-5, -1), "batch": rng.choice((32, 64, 128))},
            "criteria": {"auc": ">= 0.8"}, "status": status, "outcome": outcome,
            "outcome_reason": None, "verdicts": [], "summary": {"auc": rng.random()},
            "started_at": start, "ended_at": start + 600, "duration_s": 600.0,
            "environment": {}, "schema_version": 1,
        }


def _fill(store: Any, n: int) -> float:
    from sqlalchemy import insert

    from hindsight.store import schema as t

    started = time.perf_counter()
    batch: list[dict[str, Any]] = []
    for row in _rows(n):
        batch.append(row)
        if len(batch) == 5000:
            with store.write() as conn:
                conn.execute(insert(t.experiments), batch)
            batch = []
    if batch:
        with store.write() as conn:
            conn.execute(insert(t.experiments), batch)
    return time.perf_counter() - started


@contextmanager
def _serve(app: Any) -> Iterator[str]:
    import uvicorn

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port,
                                           log_level="warning", access_log=False))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=20)


VIEWS = {
    "page 1": "/experiments",
    "page 1000": "/experiments?page=1000",
    "outcome=failure": "/experiments?outcome=failure",
    "project=ads, page 50": "/experiments?project=ads&page=50",
    "status=crashed": "/experiments?status=crashed",
    "tag=dropout": "/experiments?tag=dropout",
    "text 'cold start'": "/experiments?q=cold+start",
    "project + outcome + tag": "/experiments?project=nlp&outcome=partial&tag=warmup",
    "API page 1": "/api/v1/experiments",
    "API text + page 20": "/api/v1/experiments?q=ranker&page=20",
}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--quick", action="store_true", help="10,000 experiments, 10 requests")
    parser.add_argument("--store", help="a store URL (default: SQLite in a temp directory)")
    args = parser.parse_args(argv)
    n, repeat = (10_000, 10) if args.quick else (100_000, 40)

    import httpx

    from hindsight.config import Settings
    from hindsight.ledger import Ledger
    from hindsight.web import auth, create_app

    with tempfile.TemporaryDirectory() as tmp:
        url = args.store or f"sqlite:///{Path(tmp) / 'bench.db'}"
        ledger = Ledger(Settings(home=Path(tmp), store=url))
        store = ledger.store
        fill_s = _fill(store, n)
        auth.create_user(store, "bench", role="viewer", password="benchmark pw")
        times: dict[str, list[float]] = {k: [] for k in VIEWS}
        with _serve(create_app(ledger)) as base, httpx.Client(base_url=base, timeout=60) as c:
            r = c.post("/login", data={"name": "bench", "password": "benchmark pw"})
            assert r.status_code == 303, r.text
            for path in VIEWS.values():
                assert c.get(path).status_code == 200, path  # warm-up
            for _ in range(repeat):
                for name, path in VIEWS.items():
                    t0 = time.perf_counter()
                    r = c.get(path)
                    times[name].append((time.perf_counter() - t0) * 1000)
                    assert r.status_code == 200, (path, r.status_code)
        backend = store.backend
        ledger.close()
    every = [x for xs in times.values() for x in xs]
    p95 = percentile(every, 95)
    targets = [Target(name=f"p95 page time over every list view ({n:,} experiments)",
                      value=round(p95, 1), unit="ms", goal="report", met=True, info=True)]
    targets += [
        Target(name=f"{name}: p95", value=round(percentile(xs, 95), 1), unit="ms",
               goal="report", met=True, info=True,
               extra={"p50_ms": round(percentile(xs, 50), 1)})
        for name, xs in times.items()
    ]
    report("web: list pages", targets,
           {"experiments": n, "store": backend, "requests per view": repeat,
            "bulk fill s": round(fill_s, 1)}, args.json)


if __name__ == "__main__":
    main()
