"""What logging through the team server costs a training run, against writing the store.

One experiment logs 100,000 metric points (4 keys, one ``log_metric`` call each) and
ends, three ways:

- **direct**: to a local SQLite store (the embedded default);
- **server**: through ``hindsight server`` (a separate process on loopback, its own
  SQLite store) with ``HINDSIGHT_SERVER_URL``: spooled, sent in batches, and waited for
  at the end of the block until the server has every record;
- **outage**: the same with nothing listening at the address and
  ``server_timeout_s=0``: the run must not wait for the server at all.

Reported per way: the seconds of the ``with`` block (the run's own time) and the
ratio to direct; for "server", also the points the server's store holds afterwards
(all of them, or the benchmark fails).

No peer: MLflow's client has no spool (a tracking server outage fails ``log_batch``),
so there is no like-for-like run; ``bench_metric_logging.py`` compares the direct path
with MLflow.

Run: .venv/bin/python benchmarks/web/log_through_server.py [--json] [--quick] [--repeat N]
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from _common import Target, median, parse_args, report

KEYS = ("train_loss", "val_loss", "accuracy", "learning_rate")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _run(ledger: object, n: int) -> tuple[float, str]:
    from hindsight.ledger import experiment

    t0 = time.perf_counter()
    with experiment("bench-log", ledger=ledger, mlflow=False, quiet=True) as exp:  # type: ignore[arg-type]
        log = exp.log_metric
        for i in range(n):
            log(KEYS[i % 4], i * 1e-3, i // 4)
    return time.perf_counter() - t0, exp.id


def main() -> int:
    args = parse_args(__doc__.splitlines()[0])
    n = 10_000 if args.quick else 100_000
    repeat = args.repeat or (1 if args.quick else 3)

    from hindsight.config import Settings
    from hindsight.errors import HindsightWarning
    from hindsight.ledger import Ledger
    from hindsight.web import auth

    times: dict[str, list[float]] = {"direct": [], "server": [], "outage": []}
    complete = True
    with tempfile.TemporaryDirectory(prefix="hs-bench-log-") as tmp:
        work = Path(tmp)
        server_url = f"sqlite:///{work / 'server.db'}"
        server_ledger = Ledger.at(server_url, home=work / "server")
        auth.create_user(server_ledger.store, "bench", role="editor", password=None)
        token = auth.create_token(server_ledger.store, "bench", "bench")
        port = _free_port()
        proc = subprocess.Popen(
            [sys.executable, "-c", "from hindsight.cli.main import main; main()",
             "--store", server_url, "server", "--port", str(port), "--log-level", "warning"],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
            env={**os.environ, "HINDSIGHT_HOME": str(work / "server")},
        )
        try:
            deadline = time.monotonic() + 60
            while True:
                try:
                    socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                    break
                except OSError:
                    if time.monotonic() > deadline or proc.poll() is not None:
                        raise RuntimeError("hindsight server did not start") from None
                    time.sleep(0.1)
            for rep in range(repeat):
                direct = Ledger.at(f"sqlite:///{work / f'direct-{rep}.db'}", home=work / "d")
                direct.store  # noqa: B018  (opened and migrated before the clock starts)
                times["direct"].append(_run(direct, n)[0])
                direct.close()

                remote = Ledger(Settings.load(
                    home=work / f"client-{rep}", server_url=f"http://127.0.0.1:{port}",
                    server_token=token, server_timeout_s=120))
                elapsed, exp_id = _run(remote, n)
                times["server"].append(elapsed)
                series = server_ledger.store.metric_series(exp_id)
                complete &= sum(len(s[0]) for s in series.values()) == n

                down = Ledger(Settings.load(
                    home=work / f"outage-{rep}", server_url=f"http://127.0.0.1:{_free_port()}",
                    server_token=token, server_timeout_s=0))
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", HindsightWarning)
                    times["outage"].append(_run(down, n)[0])
                    for ledger in (remote, down):
                        ledger.writer.client.close(0)  # type: ignore[attr-defined]
        finally:
            proc.terminate()
            proc.wait(timeout=20)
    base = median(times["direct"])
    targets = [
        Target(name=f"{n:,} points, direct to SQLite", value=base, unit="s",
               goal="the baseline", met=True, info=True),
        Target(name=f"{n:,} points through hindsight server (delivered)",
               value=median(times["server"]), unit="s", peer=base,
               ratio=median(times["server"]) / base,
               goal="every point on the server", met=complete),
        Target(name=f"{n:,} points while the server is down (spooled)",
               value=median(times["outage"]), unit="s", peer=base,
               ratio=median(times["outage"]) / base,
               goal="the run does not wait for the server", met=True, info=True),
    ]
    info = {"points": n, "repeats": repeat,
            "seconds": {k: [round(x, 4) for x in v] for k, v in times.items()},
            "server_has_every_point": complete}
    report("logging through the team server", targets, info, args.json)
    return 0 if complete else 1


if __name__ == "__main__":
    raise SystemExit(main())
