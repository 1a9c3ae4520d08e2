"""Serving benchmark: the guarded HTTP service against a bare FastAPI endpoint serving the
same scikit-learn model, on loopback, measured by a load generator in its own process.

Model: a ``LogisticRegression`` fitted at server start-up on seeded synthetic data
(8 numeric features, 5,000 rows; no download), scored one row per request.

Variants, each served by its own uvicorn process (one worker, 127.0.0.1, access log off)
and measured one after the other:

* ``bare``: a minimal FastAPI app written the way a user typically writes one: a
  pydantic request body and an ``async def`` endpoint that calls ``predict_proba``
  directly (no thread hop, since the model takes ~0.1 ms) and returns
  ``{"output": ..., "confidence": ...}``.
* ``guarded``: ``create_app(Service("bench", [model, rules], deadline_ms=50), token=...)``:
  the same model as the primary tier (``SklearnBackend``) and a ``RulesBackend`` fail-safe,
  no store.
* ``guarded-log``: the same with ``store=open_store("sqlite:///<tmp>/b.db")``, so every
  request is also written to the prediction log.
* ``timeouts``: the primary sleeps 200 ms on every other call (far past the 50 ms
  deadline); default circuit breaker. The breaker opens under 50 % timeouts, as designed.
* ``timeouts-no-breaker``: the same with a breaker that never opens (``error_rate=1.0``,
  ``min_calls`` = ``window`` = 10**6). The chain still skips the primary once its recent
  p99 exceeds the time left ("too_slow"), so few requests wait.
* ``timeouts-every-wait``: breaker disabled *and* the p99 skip disabled (a ``Tier`` whose
  ``p99_ms`` is always unknown), so every call really waits for its timeout: the test
  that the deadline itself holds.

Each variant: 1 s warm-up at 16 connections, then (``bare``, ``guarded``, ``guarded-log``)
an unloaded phase at 1 connection for per-request latency, then the load phase at 16
connections for throughput and latency under load. Request counts per tier, the
breaker's state and the prediction log's counters are read from ``GET /status`` before
and after the load phase.

Load generator: ``wrk`` (with a Lua script for the POST body) when it is on the PATH
(``apt-get install -y wrk``), else a Python generator (httpx, asyncio, keep-alive,
one coroutine per connection), which is much slower than wrk: on a small machine it can
become the bottleneck and compress the throughput ratios towards 1.

Targets (issue: guarded serving): added p50 latency (guarded - bare, 1 connection) under
1 ms; throughput (16 connections) at least 80 % of bare; with half the primary's calls
timing out (``timeouts``, ``timeouts-no-breaker``), client-side p99 within the deadline
+ 5 ms and no non-2xx answer. Shown as INFO, not judged: ``guarded-log`` against bare
(the bare endpoint logs nothing, so the difference is the log's cost) and the p99 of
``timeouts-every-wait`` (both of the service's protections switched off). Every server,
bare included, freezes its start-up objects out of the garbage collector, as
``hindsight serve`` does (``--no-gc-freeze`` to see the difference).

Run: .venv/bin/python benchmarks/serving/run.py [--quick] [--json [PATH]] [--duration S]
         [--latency-duration S] [--warmup S] [--connections N] [--loadgen auto|wrk|python]
         [--variants bare,guarded,...] [--profile DIR]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel

HERE = Path(__file__).resolve().parent
if str(HERE.parent) not in sys.path:
    sys.path.insert(0, str(HERE.parent))

from _common import Target, report  # noqa: E402

TOKEN = "x"
DEADLINE_MS = 50.0
SLOW_SLEEP_S = 0.200
N_FEATURES = 8
FEATURES = [f"f{i}" for i in range(N_FEATURES)]
SEED = 20240611

TARGET_ADDED_P50_MS = 1.0
TARGET_THROUGHPUT_RATIO = 0.80
TARGET_DEADLINE_SLACK_MS = 5.0
# Not a target of the issue: a sanity check that "guarded" measured the model's path.
TARGET_PRIMARY_SHARE = 0.99

LABELS = {
    "bare": "bare FastAPI (async def, model called inline)",
    "guarded": "guarded: create_app(Service), no store",
    "guarded-log": "guarded + SQLite prediction log",
    "timeouts": "guarded, 1/2 primary calls time out",
    "timeouts-no-breaker": "  same, breaker disabled",
    "timeouts-every-wait": "  same, breaker and p99 skip disabled",
}
VARIANTS = tuple(LABELS)
GUARDED = ("guarded", "guarded-log", *(v for v in VARIANTS if v.startswith("timeouts")))
LATENCY_PHASE = ("bare", "guarded", "guarded-log")  # also measured at 1 connection
TIMEOUT_VARIANTS = tuple(v for v in VARIANTS if v.startswith("timeouts"))

# One fixed request: the same bytes go to every variant.
REQUEST_INPUTS = {f: round(0.37 * (i - 3.5), 3) for i, f in enumerate(FEATURES)}
REQUEST_BODY = json.dumps({"inputs": REQUEST_INPUTS, "request_id": None, "key": None})


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


# =============================================================================== servers
def train_model() -> Any:
    """A LogisticRegression on seeded synthetic data: 5,000 rows, 8 features, 2 classes."""
    import numpy as np
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(SEED)
    X = rng.normal(size=(5_000, N_FEATURES))
    w = rng.normal(size=N_FEATURES)
    y = (X @ w + 0.5 * rng.normal(size=len(X)) > 0).astype(int)
    return LogisticRegression(max_iter=500).fit(X, y)


class BareRequest(BaseModel):
    """The bare app's request body (module level: FastAPI resolves the annotation by name)."""

    inputs: dict[str, float]
    request_id: str | None = None
    key: str | None = None


def make_bare_app() -> Any:
    """What a user typically writes: pydantic body, ``async def``, the model called inline."""
    import numpy as np
    from fastapi import FastAPI

    model = train_model()
    app = FastAPI()

    @app.post("/predict")
    async def predict(body: BareRequest) -> dict[str, Any]:
        row = np.asarray([[body.inputs[f] for f in FEATURES]], dtype=np.float64)
        proba = model.predict_proba(row)[0]
        best = int(np.argmax(proba))
        return {"output": int(model.classes_[best]), "confidence": float(proba[best])}

    @app.get("/health")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    return app


def _half_slow_backend(inner: Any) -> Any:
    """``inner`` with every other call sleeping ``SLOW_SLEEP_S`` first (calls 2, 4, 6, ...)."""
    from hindsight.serving import ModelBackend

    class HalfSlow(ModelBackend):
        def __init__(self) -> None:
            self.name = inner.name
            self.version = inner.version
            self._lock = threading.Lock()
            self.calls = 0
            self.slept = 0

        def predict(self, inputs: Mapping[str, Any]) -> Any:
            with self._lock:
                self.calls += 1
                slow = self.calls % 2 == 0
                self.slept += slow
            if slow:
                time.sleep(SLOW_SLEEP_S)
            return inner.predict(inputs)

        def describe(self) -> dict[str, Any]:
            with self._lock:
                return {**inner.describe(), "calls": self.calls, "slept": self.slept}

    return HalfSlow()


def make_service(variant: str, db_path: str | None = None) -> Any:
    from hindsight.serving import CircuitBreaker, ModelOutput, RulesBackend, SklearnBackend, Tier
    from hindsight.serving.service import Service

    primary: Any = SklearnBackend(train_model(), features=FEATURES, name="model", version="1")
    rules = RulesBackend([(lambda x: x["f0"] > 0.5, 1, 0.6)], ModelOutput(0, 0.5))
    tier: Any = primary
    if variant in TIMEOUT_VARIANTS:
        primary = _half_slow_backend(primary)
        tier = primary
    if variant in ("timeouts-no-breaker", "timeouts-every-wait"):
        never = CircuitBreaker(window=10**6, min_calls=10**6, error_rate=1.0)
        if variant == "timeouts-every-wait":

            class AlwaysTry(Tier):
                """A tier whose recent p99 is never known, so the chain never skips it."""

                @property
                def p99_ms(self) -> float | None:
                    return None

            tier = AlwaysTry(primary, breaker=never)
        else:
            tier = Tier(primary, breaker=never)
    store = None
    if variant == "guarded-log":
        from hindsight.store import open_store

        assert db_path is not None
        store = open_store(f"sqlite:///{db_path}")
    return Service("bench", [tier, rules], deadline_ms=DEADLINE_MS, store=store)


def serve(variant: str, port: int, db_path: str | None, profile: str | None,
          gc_freeze: bool = False) -> None:
    """Run one variant's server until SIGTERM (the ``--serve`` entry point)."""
    import gc
    import signal

    import uvicorn

    # uvicorn re-raises the signal that stopped it once it has shut down; with this
    # handler that returns, the finally block below still runs (profile, log flush).
    signal.signal(signal.SIGTERM, lambda *_: None)

    service = None
    if variant == "bare":
        app = make_bare_app()
    else:
        from hindsight.serving.app import create_app

        service = make_service(variant, db_path)
        app = create_app(service, token=TOKEN)
    if gc_freeze:
        # Objects made at start-up (imports, model, app) leave the collector's view, so a
        # full collection under load no longer walks them (see README: tail latency).
        gc.collect()
        gc.freeze()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, workers=1,
                            log_level="warning", access_log=False)
    server = uvicorn.Server(config)
    profiler = None
    if profile:
        import cProfile

        profiler = cProfile.Profile()
        profiler.enable()
    try:
        server.run()
    finally:
        if profiler is not None and profile:
            profiler.disable()
            profiler.dump_stats(profile)
        if service is not None:
            service.close()


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _http(url: str, token: str | None = None, timeout: float = 5.0) -> tuple[int, Any]:
    req = urllib.request.Request(url)
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return resp.status, json.loads(resp.read() or b"null")
    except urllib.error.HTTPError as exc:
        return exc.code, None


class Server:
    """One variant's uvicorn process on a free loopback port."""

    def __init__(self, variant: str, workdir: Path, profile_dir: Path | None = None,
                 gc_freeze: bool = False) -> None:
        self.variant = variant
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = workdir / f"server-{variant}.log"
        self.profile = None if profile_dir is None else profile_dir / f"{variant}.pstats"
        cmd = [sys.executable, str(Path(__file__).resolve()), "--serve", variant,
               "--port", str(self.port), "--db", str(workdir / f"{variant}.db")]
        if self.profile is not None:
            cmd += ["--profile-out", str(self.profile)]
        cmd.append("--gc-freeze" if gc_freeze else "--no-gc-freeze")
        self._log = open(self.log_path, "wb")  # noqa: SIM115 (closed in stop())
        self.proc = subprocess.Popen(cmd, stdout=self._log, stderr=subprocess.STDOUT,
                                     cwd=HERE.parent.parent, start_new_session=True)

    def wait_ready(self, timeout: float = 120.0) -> None:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.variant} server exited with code "
                                   f"{self.proc.returncode}: {self.tail()}")
            try:
                status, _ = _http(self.url + "/health", timeout=1.0)
                if status == 200:
                    return
            except (OSError, ValueError):
                pass
            time.sleep(0.1)
        raise RuntimeError(f"{self.variant} server not ready after {timeout:.0f} s: {self.tail()}")

    def status(self) -> dict[str, Any] | None:
        if self.variant == "bare":
            return None
        code, body = _http(self.url + "/status", token=TOKEN)
        if code != 200:
            raise RuntimeError(f"GET /status answered {code}")
        return body  # type: ignore[no-any-return]

    def cpu_seconds(self) -> float | None:
        """User + system CPU seconds of the server process so far (Linux; else None)."""
        try:
            fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            return None
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def handler_buckets(self) -> dict[float, float] | None:
        """Cumulative counts of the app's own /predict latency histogram, by upper bound (s)."""
        if self.variant == "bare":
            return None
        with urllib.request.urlopen(self.url + "/metrics", timeout=5.0) as resp:
            text = resp.read().decode()
        out: dict[float, float] = {}
        for line in text.splitlines():
            if line.startswith("hindsight_request_latency_seconds_bucket{"):
                labels, value = line.rsplit(" ", 1)
                le = labels.split('le="', 1)[1].split('"', 1)[0]
                bound = math.inf if le == "+Inf" else float(le)
                out[bound] = out.get(bound, 0.0) + float(value)
        return out

    def tail(self, n: int = 1500) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-n:].strip()
        except OSError:
            return ""

    def stop(self) -> str:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()
        return self.tail()


# ========================================================================= load generators
WRK_MARKER = "WRK_RESULT "
WRK_LUA = """
wrk.method = "POST"
wrk.body = [==[%(body)s]==]
wrk.headers["Content-Type"] = "application/json"

done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    "%(marker)s{\\"requests\\":%%d,\\"duration_s\\":%%.6f,\\"non2xx\\":%%d," ..
    "\\"socket_errors\\":%%d,\\"timeouts\\":%%d,\\"p50_ms\\":%%.4f,\\"p90_ms\\":%%.4f," ..
    "\\"p99_ms\\":%%.4f,\\"max_ms\\":%%.4f,\\"mean_ms\\":%%.4f}\\n",
    summary.requests, summary.duration / 1e6, e.status, e.connect + e.read + e.write,
    e.timeout, latency:percentile(50) / 1e3, latency:percentile(90) / 1e3,
    latency:percentile(99) / 1e3, latency.max / 1e3, latency.mean / 1e3))
end
"""


def run_wrk(url: str, connections: int, duration: float, workdir: Path) -> dict[str, Any]:
    script = workdir / "post.lua"
    if not script.exists():
        script.write_text(WRK_LUA % {"body": REQUEST_BODY, "marker": WRK_MARKER})
    seconds = max(1, math.ceil(duration))  # wrk takes whole seconds
    cmd = ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--timeout", "5s",
           "-s", str(script), url + "/predict"]
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + 60)
    lines = [ln for ln in res.stdout.splitlines() if ln.startswith(WRK_MARKER)]
    if res.returncode != 0 or not lines:
        raise RuntimeError(f"wrk failed ({res.returncode}): {(res.stderr or res.stdout)[-500:]}")
    out: dict[str, Any] = json.loads(lines[-1][len(WRK_MARKER):])
    out["ok"] = out["requests"] - out["non2xx"]
    out["throughput_rps"] = out["requests"] / out["duration_s"] if out["duration_s"] else 0.0
    out["connections"] = connections
    out["loadgen"] = "wrk"
    return out


async def _python_load(url: str, connections: int, duration: float) -> dict[str, Any]:
    import httpx

    body = REQUEST_BODY.encode()
    headers = {"Content-Type": "application/json"}
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    errors = 0
    limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=5.0) as client:
        start = time.perf_counter()
        end = start + duration

        async def worker() -> None:
            nonlocal errors
            while time.perf_counter() < end:
                t0 = time.perf_counter()
                try:
                    resp = await client.post("/predict", content=body, headers=headers)
                    await resp.aread()
                except httpx.HTTPError:
                    errors += 1
                    continue
                latencies.append(time.perf_counter() - t0)
                statuses[resp.status_code] = statuses.get(resp.status_code, 0) + 1

        await asyncio.gather(*(worker() for _ in range(connections)))
        elapsed = time.perf_counter() - start
    lat = sorted(x * 1000.0 for x in latencies)

    def pct(q: float) -> float:
        if not lat:
            return float("nan")
        return lat[min(len(lat) - 1, max(0, math.ceil(q / 100.0 * len(lat)) - 1))]

    non2xx = sum(n for code, n in statuses.items() if not 200 <= code < 300)
    return {
        "requests": len(lat), "duration_s": elapsed, "non2xx": non2xx,
        "socket_errors": errors, "timeouts": 0, "p50_ms": pct(50), "p90_ms": pct(90),
        "p99_ms": pct(99), "max_ms": lat[-1] if lat else float("nan"),
        "mean_ms": sum(lat) / len(lat) if lat else float("nan"),
        "statuses": {str(k): v for k, v in sorted(statuses.items())},
    }


def run_python_loadgen(url: str, connections: int, duration: float) -> dict[str, Any]:
    """The Python generator in its own process (``--loadgen-worker``)."""
    cmd = [sys.executable, str(Path(__file__).resolve()), "--loadgen-worker", url,
           "--connections", str(connections), "--duration", repr(float(duration))]
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=duration + 120)
    lines = [ln for ln in res.stdout.splitlines() if ln.startswith(WRK_MARKER)]
    if res.returncode != 0 or not lines:
        raise RuntimeError(f"load generator failed ({res.returncode}): "
                           f"{(res.stderr or res.stdout)[-800:]}")
    out: dict[str, Any] = json.loads(lines[-1][len(WRK_MARKER):])
    out["ok"] = out["requests"] - out["non2xx"]
    out["throughput_rps"] = out["requests"] / out["duration_s"] if out["duration_s"] else 0.0
    out["connections"] = connections
    out["loadgen"] = "python-httpx"
    return out


@dataclass
class LoadGen:
    kind: str  # "wrk" or "python"
    workdir: Path

    def __call__(self, url: str, connections: int, duration: float) -> dict[str, Any]:
        if self.kind == "wrk":
            return run_wrk(url, connections, duration, self.workdir)
        return run_python_loadgen(url, connections, duration)


# ============================================================================== measuring
def _tier_counts(status: Mapping[str, Any] | None) -> dict[str, int]:
    if not status:
        return {}
    counts: dict[str, int] = {}
    for row in status["counters"]["requests"]:
        counts[row["tier"]] = counts.get(row["tier"], 0) + int(row["count"])
    return counts


def measure(variant: str, loadgen: LoadGen, args: argparse.Namespace, workdir: Path,
            profile_dir: Path | None) -> dict[str, Any]:
    server = Server(variant, workdir, profile_dir, args.gc_freeze)
    result: dict[str, Any] = {"variant": variant, "label": LABELS[variant]}
    try:
        server.wait_ready()
        if args.warmup > 0:
            # One connection: threads, sklearn and the tiers' latency windows warm up on
            # calls that are not queued behind each other (see README: cold bursts).
            loadgen(server.url, 1, args.warmup)
        if variant in LATENCY_PHASE and args.latency_duration > 0:
            result["unloaded"] = loadgen(server.url, 1, args.latency_duration)
        before, h0 = server.status(), server.handler_buckets()
        cpu0 = server.cpu_seconds()
        result["load"] = loadgen(server.url, args.connections, args.duration)
        cpu1 = server.cpu_seconds()
        after, h1 = server.status(), server.handler_buckets()
        if h0 is not None and h1 is not None and h1.get(math.inf, 0) > h0.get(math.inf, 0):
            # The app's own view: the time its /predict handler took (Service.predict),
            # without the HTTP layer and the wait for the event loop before it.
            n = h1[math.inf] - h0.get(math.inf, 0)
            result["handler_over_ms"] = {
                f"{b * 1000:g}": (n - (h1[b] - h0.get(b, 0))) / n
                for b in sorted(h1) if b in (0.05, 0.06) and b in h1}
        if cpu0 is not None and cpu1 is not None and result["load"]["requests"]:
            result["server_cpu_us_per_request"] = (
                (cpu1 - cpu0) * 1e6 / result["load"]["requests"])
        if after is not None:
            c0, c1 = _tier_counts(before), _tier_counts(after)
            by_tier = {t: c1.get(t, 0) - c0.get(t, 0) for t in c1}
            served = sum(by_tier.values())
            result["served_by_tier"] = by_tier
            result["served_total"] = served
            result["share_by_tier"] = {t: (n / served if served else 0.0)
                                       for t, n in by_tier.items()}
            result["exhausted"] = (after["counters"]["exhausted"]
                                   - (before or after)["counters"]["exhausted"])
            primary = after["tiers"][0]
            result["primary_p99_ms_seen_by_chain"] = primary["p99_ms"]
            result["last_tier_p99_ms_seen_by_chain"] = after["tiers"][-1]["p99_ms"]
            result["breaker"] = {k: primary["breaker"][k] for k in
                                 ("state", "reason", "times_opened")}
            result["breaker"]["opened_before_load"] = (
                (before or after)["tiers"][0]["breaker"]["times_opened"])
            if "calls" in primary:
                b0 = (before or after)["tiers"][0]
                result["primary_calls"] = primary["calls"] - b0.get("calls", 0)
                result["primary_slept"] = primary["slept"] - b0.get("slept", 0)
            if after.get("log") is not None:
                result["log"] = after["log"]
    finally:
        tail = server.stop()
    if "error" in tail.lower() or "traceback" in tail.lower():
        result["server_log_tail"] = tail[-1500:]
    if server.profile is not None and server.profile.exists():
        result["profile"] = str(server.profile)
    return result


def paired_throughput(loadgen: LoadGen, args: argparse.Namespace, workdir: Path,
                      rounds: int) -> dict[str, Any]:
    """Bare and guarded running side by side, loaded in turn (ABBA order), ``rounds`` times.

    On a shared machine the background load drifts over a run; measuring the two
    variants one after the other, alternately, and taking the median of the per-round
    ratios cancels most of that drift, which sequential variants cannot.
    """
    (workdir / "paired").mkdir(exist_ok=True)
    servers = {v: Server(v, workdir / "paired", None, args.gc_freeze) for v in ("bare", "guarded")}
    out: dict[str, Any] = {"rounds": rounds, "bare_rps": [], "guarded_rps": [], "ratios": []}
    try:
        for srv in servers.values():
            srv.wait_ready()
            loadgen(srv.url, 1, max(args.warmup, 0.5))
        phase = max(args.duration / 4, 1.0)
        for i in range(rounds):
            order = ("bare", "guarded") if i % 2 == 0 else ("guarded", "bare")
            rps = {v: loadgen(servers[v].url, args.connections, phase)["throughput_rps"]
                   for v in order}
            out["bare_rps"].append(rps["bare"])
            out["guarded_rps"].append(rps["guarded"])
            out["ratios"].append(rps["guarded"] / rps["bare"])
    finally:
        for srv in servers.values():
            srv.stop()
    out["median_ratio"] = float(statistics.median(out["ratios"]))
    return out


# ================================================================================ output
def _f(x: Any, spec: str = ",.2f") -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "-"
    return format(x, spec)


def print_table(results: dict[str, dict[str, Any]], args: argparse.Namespace,
                kind: str) -> None:
    bare = results.get("bare", {})
    bare_rps = bare.get("load", {}).get("throughput_rps")
    bare_p50_1 = bare.get("unloaded", {}).get("p50_ms")
    bare_p50_n = bare.get("load", {}).get("p50_ms")
    c = args.connections
    print(f"\n== serving on loopback: {args.duration:g} s at {c} connections"
          f" (+ {args.latency_duration:g} s at 1 connection), load generator {kind}, "
          f"deadline {DEADLINE_MS:g} ms")
    bare_cpu = bare.get("server_cpu_us_per_request")
    head = (f"{'variant':<44}{'req/s':>9}{'x bare':>8}{'p50':>8}{'p90':>8}{'p99':>8}"
            f"{'max':>8}{'non2xx':>8}{'p50@1':>8}{'+p50@1':>8}{'+p50@' + str(c):>8}"
            f"{'cpu us':>8}{'+cpu':>7}  tiers")
    print(head)
    print("-" * len(head))
    for v, r in results.items():
        if "error" in r:
            print(f"{LABELS[v]:<44}  ERROR {r['error'][:200]}")
            continue
        ld = r["load"]
        un = r.get("unloaded", {})
        ratio = ld["throughput_rps"] / bare_rps if bare_rps and v != "bare" else None
        add1 = (un["p50_ms"] - bare_p50_1) if un and bare_p50_1 is not None and v != "bare" else None
        addn = (ld["p50_ms"] - bare_p50_n) if bare_p50_n is not None and v != "bare" else None
        cpu = r.get("server_cpu_us_per_request")
        addc = cpu - bare_cpu if cpu is not None and bare_cpu is not None and v != "bare" else None
        tiers = ", ".join(f"{t} {s:.0%}" for t, s in r.get("share_by_tier", {}).items())
        if "breaker" in r and v in TIMEOUT_VARIANTS:
            b = r["breaker"]
            tiers += f"; breaker {b['state']}, opened {b['times_opened']}x"
        if "log" in r:
            tiers += f"; log written {r['log']['written']}, dropped {r['log']['dropped']}"
        print(f"{LABELS[v]:<44}{_f(ld['throughput_rps'], ',.0f'):>9}{_f(ratio, '.2f'):>8}"
              f"{_f(ld['p50_ms']):>8}{_f(ld['p90_ms']):>8}{_f(ld['p99_ms']):>8}"
              f"{_f(ld['max_ms']):>8}{ld['non2xx'] + ld['socket_errors']:>8}"
              f"{_f(un.get('p50_ms')):>8}{_f(add1, '+.2f'):>8}{_f(addn, '+.2f'):>8}"
              f"{_f(cpu, ',.0f'):>8}{_f(addc, '+,.0f'):>7}  {tiers}")
    print("   latencies in ms as the client sees them; p50..max at "
          f"{c} connections; p50@1: unloaded p50 (1 connection); +p50: minus bare's; "
          "non2xx counts non-2xx answers and socket errors; cpu us: the server process's "
          "CPU time per request in the load phase (+cpu: minus bare's; less sensitive to "
          "other load on the machine than latency); tiers: who answered the load phase "
          "(from GET /status).")
    for v in TIMEOUT_VARIANTS:
        r = results.get(v)
        if r and "primary_calls" in r:
            over = r.get("handler_over_ms") or {}
            over_s = ", ".join(f"> {b} ms {share:.2%}" for b, share in over.items())
            print(f"   {v}: primary called {r['primary_calls']} times, slept "
                  f"{r['primary_slept']} ({SLOW_SLEEP_S * 1000:g} ms each); 503 "
                  f"fallback_exhausted: {r.get('exhausted', 0)}; the app's own handler "
                  f"time (its histogram): {over_s or '-'}")
    for v in GUARDED:
        r = results.get(v)
        if r and r.get("primary_p99_ms_seen_by_chain") is not None:
            print(f"   {v}: the chain's view of the p99 of model / rules: "
                  f"{r['primary_p99_ms_seen_by_chain']:.1f} / "
                  f"{_f(r.get('last_tier_p99_ms_seen_by_chain'), '.1f')} ms")
    sys.stdout.flush()


def targets_for(results: dict[str, dict[str, Any]],
                paired: dict[str, Any] | None = None) -> list[Target]:
    out: list[Target] = []
    bare = results.get("bare")
    ok_bare = bare is not None and "error" not in bare
    for v in ("guarded", "guarded-log"):
        r = results.get(v)
        if r is None or not ok_bare or "error" in r:
            continue
        assert bare is not None
        if "unloaded" in r and "unloaded" in bare:
            added = r["unloaded"]["p50_ms"] - bare["unloaded"]["p50_ms"]
            out.append(Target(
                info=v == "guarded-log",
                name=f"added p50 latency, {v} - bare (1 connection)", value=added, unit="ms",
                goal=f"< {TARGET_ADDED_P50_MS:g} ms", met=added < TARGET_ADDED_P50_MS,
                peer=bare["unloaded"]["p50_ms"],
                extra={"p50_ms": r["unloaded"]["p50_ms"],
                       "added_p50_ms_loaded": r["load"]["p50_ms"] - bare["load"]["p50_ms"]}))
        ratio = r["load"]["throughput_rps"] / bare["load"]["throughput_rps"]
        value, peer = r["load"]["throughput_rps"], bare["load"]["throughput_rps"]
        how = ""
        if v == "guarded" and paired:
            # The median of alternating rounds, side by side: robust to the machine's drift.
            ratio = paired["median_ratio"]
            value = float(statistics.median(paired["guarded_rps"]))
            peer = float(statistics.median(paired["bare_rps"]))
            how = f", median of {paired['rounds']} alternating rounds"
        out.append(Target(
            name=f"throughput {v} / bare ({r['load']['connections']} connections{how})",
            value=value, unit="req/s",
            goal=f">= {TARGET_THROUGHPUT_RATIO:.2f}x bare", met=ratio >= TARGET_THROUGHPUT_RATIO,
            peer=peer, ratio=ratio,
            # The bare endpoint writes no log: the log's cost is shown, not judged.
            info=v == "guarded-log"))
    for v in ("guarded", "guarded-log"):
        r = results.get(v)
        if r is None or "error" in r or "share_by_tier" not in r:
            continue
        share = r["share_by_tier"].get("model", 0.0)
        out.append(Target(
            name=f"{v}: share answered by the model tier (no fault injected)",
            value=share * 100, unit="%", goal=f">= {TARGET_PRIMARY_SHARE:.0%}",
            met=share >= TARGET_PRIMARY_SHARE,
            extra={"served_by_tier": r["served_by_tier"],
                   "primary_p99_ms_seen_by_chain": r.get("primary_p99_ms_seen_by_chain")}))
    limit = DEADLINE_MS + TARGET_DEADLINE_SLACK_MS
    for v in TIMEOUT_VARIANTS:
        r = results.get(v)
        if r is None:
            continue
        if "error" in r:
            out.append(Target(name=f"{v}: p99 latency", value=float("nan"), unit="ms",
                              goal=f"<= {limit:g} ms", met=False, extra={"error": r["error"]}))
            continue
        ld = r["load"]
        out.append(Target(
            name=f"{v}: client p99 latency", value=ld["p99_ms"], unit="ms",
            goal=f"<= {limit:g} ms (deadline + {TARGET_DEADLINE_SLACK_MS:g})",
            met=ld["p99_ms"] <= limit,
            # Both protections off: every other request waits out its budget. A stress
            # case beyond the issue's (which keeps the service's breaker and p99 skip).
            info=v == "timeouts-every-wait",
            extra={"p50_ms": ld["p50_ms"], "max_ms": ld["max_ms"],
                   "share_by_tier": r.get("share_by_tier"), "breaker": r.get("breaker")}))
        bad = ld["non2xx"] + ld["socket_errors"]
        out.append(Target(name=f"{v}: non-2xx answers and errors", value=float(bad),
                          unit="", goal="0", met=bad == 0,
                          extra={"requests": ld["requests"]}))
    return out


# ================================================================================== main
def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", nargs="?", const="-", default=None, metavar="PATH",
                        help="write the results as JSON to PATH; alone, print one JSON object "
                             "instead of the table")
    parser.add_argument("--quick", action="store_true",
                        help="3 s per load phase, 2 s at 1 connection")
    parser.add_argument("--duration", type=float, default=None,
                        help="seconds of the load phase per variant (default 10, --quick 3)")
    parser.add_argument("--latency-duration", type=float, default=None,
                        help="seconds at 1 connection for bare/guarded (default 5, --quick 2)")
    parser.add_argument("--warmup", type=float, default=1.0, help="warm-up seconds (default 1)")
    parser.add_argument("--connections", type=int, default=16,
                        help="connections of the load phase (default 16)")
    parser.add_argument("--loadgen", choices=("auto", "wrk", "python"), default="auto",
                        help="auto: wrk when on the PATH, else the Python generator")
    parser.add_argument("--variants", default=",".join(VARIANTS),
                        help=f"comma-separated, from {','.join(VARIANTS)} (default: all)")
    parser.add_argument("--pairs", type=int, default=None,
                        help="alternating bare/guarded rounds for the throughput ratio "
                             "(default 8, --quick 2; 0: use the sequential runs)")
    parser.add_argument("--profile", default=None, metavar="DIR",
                        help="run each server under cProfile and write DIR/<variant>.pstats")
    parser.add_argument("--gc-freeze", action=argparse.BooleanOptionalAction, default=True,
                        help="every server (bare too) calls gc.collect(); gc.freeze() after "
                             "start-up, as `hindsight serve` does (default on; --no-gc-freeze "
                             "shows how much of the tail full garbage collections are)")
    # internal entry points: a server, a Python load generator
    parser.add_argument("--serve", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--db", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--profile-out", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--loadgen-worker", default=None, help=argparse.SUPPRESS)
    return parser


def _loadavg() -> list[float] | None:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return None


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Measure every selected variant; the result the JSON output holds."""
    variants = [v.strip() for v in args.variants.split(",") if v.strip()]
    unknown = [v for v in variants if v not in VARIANTS]
    if unknown:
        raise SystemExit(f"unknown variant(s) {unknown}; choose from {list(VARIANTS)}")
    kind = args.loadgen
    if kind == "auto":
        kind = "wrk" if shutil.which("wrk") else "python"
        if kind == "python":
            log("wrk not found: using the Python load generator (slower; to use wrk: "
                "apt-get install -y wrk)")
    elif kind == "wrk" and not shutil.which("wrk"):
        raise SystemExit("--loadgen wrk: wrk is not on the PATH (apt-get install -y wrk)")
    t0 = time.perf_counter()
    load_start = _loadavg()
    results: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory(prefix="hindsight-serving-") as tmp:
        workdir = Path(tmp)
        profile_dir = None
        if args.profile:
            profile_dir = Path(args.profile).resolve()
            profile_dir.mkdir(parents=True, exist_ok=True)
        loadgen = LoadGen(kind, workdir)
        for v in variants:
            log(f"[{v}] {LABELS[v].strip()} ...")
            try:
                results[v] = measure(v, loadgen, args, workdir, profile_dir)
            except (RuntimeError, OSError, subprocess.SubprocessError) as exc:
                results[v] = {"variant": v, "label": LABELS[v], "error": str(exc)}
                log(f"   error: {exc}")
                continue
            ld = results[v]["load"]
            log(f"   {ld['throughput_rps']:,.0f} req/s, p50 {ld['p50_ms']:.2f} ms, "
                f"p99 {ld['p99_ms']:.2f} ms, non-2xx {ld['non2xx']}")
        paired = None
        pairs = args.pairs if args.pairs is not None else (2 if args.quick else 8)
        if pairs > 0 and {"bare", "guarded"} <= set(variants):
            log(f"[paired] bare and guarded side by side, {pairs} alternating rounds ...")
            paired = paired_throughput(loadgen, args, workdir, pairs)
            log("   guarded / bare per round: "
                + ", ".join(f"{r:.2f}" for r in paired["ratios"])
                + f"; median {paired['median_ratio']:.2f}")
    return {
        "loadgen": kind,
        "connections": args.connections,
        "duration_s": args.duration,
        "latency_duration_s": args.latency_duration,
        "warmup_s": args.warmup,
        "deadline_ms": DEADLINE_MS,
        "gc_freeze": args.gc_freeze,
        "cpus": os.cpu_count(),
        "loadavg_at_start": load_start,
        "loadavg_at_end": _loadavg(),
        "python": sys.version.split()[0],
        "results": results,
        "paired": paired,
        "benchmark_seconds": round(time.perf_counter() - t0, 1),
    }


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.serve:
        serve(args.serve, args.port, args.db, args.profile_out, args.gc_freeze)
        return 0
    if args.loadgen_worker:
        out = asyncio.run(_python_load(args.loadgen_worker, args.connections,
                                       float(args.duration)))
        print(WRK_MARKER + json.dumps(out), flush=True)
        return 0
    if args.duration is None:
        args.duration = 3.0 if args.quick else 10.0
    if args.latency_duration is None:
        args.latency_duration = 2.0 if args.quick else 5.0
    info = run(args)
    targets = targets_for(info["results"], info.get("paired"))
    title = "guarded serving vs a bare FastAPI endpoint"
    if args.json == "-":
        report(title, targets, info, as_json=True)
        return 0
    if args.json:
        from dataclasses import asdict

        Path(args.json).write_text(json.dumps(
            {"benchmark": title, "info": info,
             "targets": [{**asdict(t), "verdict": t.verdict} for t in targets]}, indent=2))
    print_table(info["results"], args, info["loadgen"])
    report(title, targets, {"load generator": info["loadgen"], "cpus": info["cpus"],
                            "load average at start / end": f"{info['loadavg_at_start']} / "
                                                           f"{info['loadavg_at_end']}",
                            "benchmark_seconds": info["benchmark_seconds"]}, as_json=False)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
