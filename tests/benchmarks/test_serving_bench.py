"""Smoke test of the serving benchmark (benchmarks/serving/run.py): every variant runs end
to end for a moment, on real uvicorn servers, and the counts it reports agree with each
other. No assertion on speed: this machine may be busy."""

from __future__ import annotations

import importlib.util
import json
import shutil
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

pytest.importorskip("fastapi")
pytest.importorskip("uvicorn")
pytest.importorskip("httpx")
pytest.importorskip("sklearn")

RUN = Path(__file__).resolve().parents[2] / "benchmarks" / "serving" / "run.py"
CONNECTIONS = 4


@pytest.fixture(scope="module")
def bench() -> ModuleType:
    # A name of its own: other benchmark tests import a module called "run".
    spec = importlib.util.spec_from_file_location("serving_bench_run", RUN)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def _run(bench: ModuleType, tmp_path: Path, loadgen: str, variants: tuple[str, ...],
         capsys: pytest.CaptureFixture[str]) -> tuple[dict[str, Any], str]:
    out = tmp_path / f"serving-{loadgen}.json"
    code = bench.main([
        "--quick", "--duration", "1", "--latency-duration", "0.5", "--warmup", "0.3",
        "--connections", str(CONNECTIONS), "--loadgen", loadgen, "--json", str(out),
        "--variants", ",".join(variants), "--pairs", "1",
    ])
    assert code == 0
    return json.loads(out.read_text()), capsys.readouterr().out


def _check(bench: ModuleType, data: dict[str, Any], printed: str,
           variants: tuple[str, ...]) -> None:
    results = data["info"]["results"]
    assert list(results) == list(variants)
    for variant, r in results.items():
        assert "error" not in r, (variant, r.get("error"))
        assert bench.LABELS[variant] in printed
        load = r["load"]
        assert load["requests"] > 0, variant
        assert load["ok"] + load["non2xx"] == load["requests"], variant
        assert load["connections"] == CONNECTIONS
        assert load["p50_ms"] <= load["p90_ms"] <= load["p99_ms"], variant
        assert load["p99_ms"] <= load["max_ms"] * 1.01 + 0.01, variant  # wrk rounds up
        if variant in bench.LATENCY_PHASE:
            assert r["unloaded"]["requests"] > 0 and r["unloaded"]["connections"] == 1
        if variant == "bare":
            assert "served_by_tier" not in r
            continue
        # Every answer the client got was counted by the service, once, by one tier
        # (wrk does not count the requests still in flight when it stops).
        served = r["served_total"]
        assert served == sum(r["served_by_tier"].values())
        assert set(r["served_by_tier"]) <= {"model", "rules"}
        assert load["ok"] <= served <= load["requests"] + load["socket_errors"] + CONNECTIONS
        assert abs(sum(r["share_by_tier"].values()) - 1.0) < 1e-9
        assert r["breaker"]["state"] in {"closed", "open", "half_open"}
        if variant == "guarded-log":
            assert r["log"]["dropped"] == 0
        if variant in bench.TIMEOUT_VARIANTS:
            # Every other call of the primary sleeps past the deadline.
            assert abs(2 * r["primary_slept"] - r["primary_calls"]) <= 1
        if variant in ("timeouts-no-breaker", "timeouts-every-wait"):
            assert r["breaker"]["times_opened"] == 0  # the disabled breaker never opened
    names = [t["name"] for t in data["targets"]]
    for v in ("guarded", "guarded-log"):
        if v in variants:
            assert any(n.startswith(f"added p50 latency, {v} - bare") for n in names)
            assert any(n.startswith(f"throughput {v} / bare") for n in names)
    for v in set(bench.TIMEOUT_VARIANTS) & set(variants):
        assert f"{v}: client p99 latency" in names
        assert f"{v}: non-2xx answers and errors" in names
    assert all(t["verdict"] in {"PASS", "MISS", "INFO"} for t in data["targets"])
    assert all(t["verdict"] == "INFO" for t in data["targets"] if t["info"])
    assert "== guarded serving vs a bare FastAPI endpoint" in printed


@pytest.mark.slow
def test_every_variant_runs_with_the_python_load_generator(
    bench: ModuleType, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data, printed = _run(bench, tmp_path, "python", bench.VARIANTS, capsys)
    assert data["info"]["loadgen"] == "python"
    _check(bench, data, printed, bench.VARIANTS)
    paired = data["info"]["paired"]
    assert paired["rounds"] == 1 and len(paired["ratios"]) == 1
    assert paired["ratios"][0] == pytest.approx(paired["guarded_rps"][0] / paired["bare_rps"][0])
    assert any("median of 1 alternating rounds" in t["name"] for t in data["targets"])


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("wrk") is None, reason="wrk is not installed")
def test_every_variant_runs_with_wrk(
    bench: ModuleType, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    variants = ("bare", "guarded-log", "timeouts-every-wait")  # wrk's parsing, fewer servers
    data, printed = _run(bench, tmp_path, "wrk", variants, capsys)
    assert data["info"]["loadgen"] == "wrk"
    _check(bench, data, printed, variants)


def test_json_alone_prints_one_object(bench: ModuleType) -> None:
    """``--json`` without a path keeps run_all.py's contract: JSON on stdout."""
    args = bench.build_parser().parse_args(["--json"])
    assert args.json == "-"
    args = bench.build_parser().parse_args(["--json", "x.json", "--quick"])
    assert args.json == "x.json" and args.quick
