"""Drift benchmark: hindsight's drift report against Evidently, NannyML, alibi-detect, whylogs
and a plain SciPy baseline, on seeded data with a known 7 drifted columns of 25.

Data (``data.py``): a reference and a current table of 100,000 and of 1,000,000 rows, 20
numeric and 5 categorical columns, 7 of them drifted (``data.DRIFTED``), the other 18
drawn from exactly the same distribution in both tables.

Every contender runs in a subprocess, each peer in its own virtualenv under
``benchmarks/drift/.venvs/<peer>`` (made on first use, pinned versions, skipped when its
stamp file matches), hindsight in the interpreter running this script. A runner
(``peers/<peer>_runner.py``) imports its library and loads the Parquet files before the
clock starts, then times only the drift computation and measures its peak RSS (see
``peers/_harness.py``). hindsight runs twice per size: raw reference vs raw current, and a
stored reference profile (built and saved beforehand, untimed) vs raw current.

Printed per size: seconds, peak memory over the post-import baseline (which holds the
loaded data) and its ratio to the loaded data's Arrow size, flagged / missed / false
columns against ``DRIFTED``, and each peer's time over hindsight's. Targets (at the
largest size run, 1,000,000 rows unless ``--quick``): hindsight finds all 7 and no false
alarm; Evidently / hindsight >= 30x; SciPy / hindsight >= 3x (raw reference); SciPy /
hindsight with a stored profile >= 10x; hindsight's peak memory <= 1.5x the data size.

Run: .venv/bin/python benchmarks/drift/run.py [--json] [--quick] [--repeat N]
         [--peers evidently,nannyml,alibi-detect,whylogs,scipy] [--timeout 900]
         [--sizes 100000,1000000]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))

import data  # noqa: E402
from _common import Target, report  # noqa: E402

VENVS = HERE / ".venvs"
PEERS_DIR = HERE / "peers"
MARKER = "DRIFT_RESULT "
START_MARKER = "DRIFT_TIMING_START "
STAMP = ".hindsight-bench-stamp"

TARGET_EVIDENTLY = 30.0
TARGET_SCIPY_RAW = 3.0
TARGET_SCIPY_PROFILE = 10.0
TARGET_MEMORY = 1.5
HINDSIGHT_REPEAT = 3


@dataclass(frozen=True)
class Peer:
    name: str
    label: str
    packages: tuple[str, ...]
    check: str  # a module whose import proves the install works


# Versions found to install and run together on CPython 3.11 (see README.md).
PEERS: dict[str, Peer] = {
    "scipy": Peer("scipy", "SciPy ks_2samp / chi2", (
        "scipy==1.17.1", "numpy==2.4.6", "pandas==2.3.3", "pyarrow==26.0.1",
    ), "scipy.stats"),
    "evidently": Peer("evidently", "Evidently DataDriftPreset", (
        "evidently==0.7.23", "pandas==2.3.3", "numpy==2.4.6", "scipy==1.17.1",
        "pyarrow==26.0.1",
    ), "evidently.presets"),
    "nannyml": Peer("nannyml", "NannyML UnivariateDrift", (
        "nannyml==0.13.1", "pandas==2.3.3", "numpy==2.4.6", "scipy==1.17.1",
        "statsmodels==0.15.0", "pyarrow==26.0.1",
    ), "nannyml"),
    "alibi-detect": Peer("alibi-detect", "alibi-detect TabularDrift", (
        "alibi-detect==0.13.0", "numpy==1.26.4", "pandas==2.3.3", "scipy==1.17.1",
        "pyarrow==19.0.1",
    ), "alibi_detect.cd"),
    "whylogs": Peer("whylogs", "whylogs drift scores", (
        "whylogs[viz]==1.6.4", "pandas==2.3.3", "numpy==2.4.6", "scipy==1.17.1",
        "pyarrow==26.0.1",
    ), "whylogs.viz.drift.column_drift_algorithms"),
}
HINDSIGHT = "hindsight"
HINDSIGHT_PROFILE = "hindsight-profile"
LABELS = {HINDSIGHT: "hindsight", HINDSIGHT_PROFILE: "hindsight, stored profile",
          **{p.name: p.label for p in PEERS.values()}}

# No telemetry calls from the peers (there is no network here besides package indexes).
QUIET_ENV = {
    "DO_NOT_TRACK": "1",
    "EVIDENTLY_DISABLE_TELEMETRY": "1",
    "NML_DISABLE_USAGE_LOGGING": "1",
    "WHYLOGS_NO_ANALYTICS": "True",
    "TF_CPP_MIN_LOG_LEVEL": "3",
    "PYTHONWARNINGS": "ignore",
}


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


# ----------------------------------------------------------------------------- venvs
def _interpreters() -> dict[str, str]:
    """One interpreter per Python version: this one first, then 3.12 and 3.10 if found."""
    candidates = [sys.executable]
    for name in ("python3.12", "python3.10"):
        path = shutil.which(name)
        if path:
            candidates.append(path)
    pyenv = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv")) / "versions"
    for minor in ("3.12", "3.10"):
        candidates.extend(str(p) for p in sorted(pyenv.glob(f"{minor}*/bin/python3")))
    found: dict[str, str] = {}
    for interp in candidates:
        try:
            res = subprocess.run([interp, "-c", "import sys, venv; print(*sys.version_info[:2])"],
                                 capture_output=True, text=True, timeout=60)
        except (OSError, subprocess.SubprocessError):
            continue
        if res.returncode == 0 and res.stdout.strip():
            found.setdefault("python" + res.stdout.strip().replace(" ", "."), interp)
    return found


def _tail(text: str, n: int = 300) -> str:
    lines = [ln.strip() for ln in text.strip().splitlines() if ln.strip()]
    errors = [ln for ln in lines if ln.startswith(("ERROR", "error"))]
    return (errors[-1] if errors else " | ".join(lines[-2:]))[-n:]


def ensure_venv(peer: Peer, timeout: float = 1800) -> tuple[Path | None, str | None]:
    """(python of the peer's venv, None), or (None, "not installable: <reason>")."""
    venv = VENVS / peer.name
    python = venv / "bin" / "python"
    stamp = venv / STAMP
    want = json.dumps(list(peer.packages))
    if python.exists() and stamp.exists() and stamp.read_text() == want:
        return python, None
    errors = []
    for i, (pyver, interp) in enumerate(_interpreters().items()):
        if i > 0 and venv.exists():
            shutil.rmtree(venv)
        log(f"  installing {peer.name} ({', '.join(peer.packages)}) with {interp} ...")
        try:
            if not python.exists():
                subprocess.run([interp, "-m", "venv", str(venv)], check=True,
                               capture_output=True, text=True, timeout=300)
            res = subprocess.run(
                [str(python), "-m", "pip", "install", "--disable-pip-version-check", "-q",
                 *peer.packages], capture_output=True, text=True, timeout=timeout)
            if res.returncode != 0:
                errors.append(f"{pyver}: pip: {_tail(res.stderr or res.stdout)}")
                continue
            chk = subprocess.run([str(python), "-c", f"import {peer.check}"],
                                 capture_output=True, text=True, timeout=300,
                                 env={**os.environ, **QUIET_ENV})
            if chk.returncode != 0:
                errors.append(f"{pyver}: import {peer.check}: {_tail(chk.stderr)}")
                continue
        except (subprocess.SubprocessError, OSError) as exc:
            errors.append(f"{pyver}: {type(exc).__name__}: {exc}")
            continue
        stamp.write_text(want)
        return python, None
    return None, "not installable: " + "; ".join(errors)


def _version_of(python: Path | str) -> str:
    res = subprocess.run([str(python), "-c", "import sys; print(sys.version.split()[0])"],
                         capture_output=True, text=True)
    return res.stdout.strip()


# ---------------------------------------------------------------------------- runs
def run_runner(python: Path | str, runner: str, args: Sequence[str],
               timeout: float) -> dict[str, Any]:
    """One runner subprocess: its JSON result, or {"error": ...}."""
    cmd = [str(python), str(PEERS_DIR / runner), *args]
    env = {**os.environ, **QUIET_ENV}
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            cwd=HERE, env=env, start_new_session=True)
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        killed_at = time.time()
        os.killpg(proc.pid, signal.SIGKILL)
        out, _ = proc.communicate()
        starts = [ln for ln in out.splitlines() if ln.startswith(START_MARKER)]
        res: dict[str, Any] = {"timeout": True, "process_seconds": time.perf_counter() - t0}
        if starts:
            # The computation had run this long when it was stopped: a lower bound.
            res["seconds_at_timeout"] = killed_at - float(starts[-1][len(START_MARKER):])
            res["error"] = (f"timeout: process killed after {timeout:.0f} s, "
                            f"{res['seconds_at_timeout']:.0f} s into the computation")
        else:
            res["error"] = f"timeout: process killed after {timeout:.0f} s, before the computation"
        return res
    lines = [ln for ln in out.splitlines() if ln.startswith(MARKER)]
    if not lines:
        return {"error": f"exit code {proc.returncode}, no result: {_tail(err or out)}",
                "process_seconds": time.perf_counter() - t0}
    result = json.loads(lines[-1][len(MARKER):])
    result["process_seconds"] = time.perf_counter() - t0
    return result


def run_repeated(python: Path | str, runner: str, args: Sequence[str], timeout: float,
                 repeat: int) -> dict[str, Any]:
    """Median seconds and largest peak over ``repeat`` fresh processes."""
    runs = []
    for _ in range(max(1, repeat)):
        res = run_runner(python, runner, args, timeout)
        if "error" in res:
            return res
        runs.append(res)
    best = dict(runs[-1])
    best["seconds"] = statistics.median(r["seconds"] for r in runs)
    best["seconds_all"] = [round(r["seconds"], 4) for r in runs]
    for key in ("peak_rss_bytes", "peak_over_baseline_bytes"):
        best[key] = max(r[key] for r in runs)
    return best


def score(flagged: Sequence[str]) -> dict[str, list[str]]:
    got = set(flagged)
    return {
        "found": [c for c in data.DRIFTED if c in got],
        "missed": [c for c in data.DRIFTED if c not in got],
        "false": sorted(got - set(data.DRIFTED)),
    }


def run_size(n: int, peers: Sequence[str], pythons: dict[str, Path | None],
             install_errors: dict[str, str], timeout: float,
             repeat: int | None, workdir: Path) -> dict[str, dict[str, Any]]:
    ref_path, cur_path = data.ensure(n)
    io = ["--ref", str(ref_path), "--cur", str(cur_path)]
    results: dict[str, dict[str, Any]] = {}
    h_repeat = repeat if repeat is not None else HINDSIGHT_REPEAT
    p_repeat = repeat if repeat is not None else 1

    log(f"[{n:,} rows] hindsight (raw reference) x{h_repeat} ...")
    results[HINDSIGHT] = run_repeated(sys.executable, "hindsight_runner.py",
                                      [*io, "--mode", "raw"], timeout, h_repeat)
    profile_path = workdir / f"ref_{n}.profile"
    log(f"[{n:,} rows] hindsight: building the stored reference profile (untimed) ...")
    made = run_runner(sys.executable, "hindsight_runner.py",
                      [*io, "--mode", "make-profile", "--profile", str(profile_path)], timeout)
    if "error" in made:
        results[HINDSIGHT_PROFILE] = made
    else:
        log(f"[{n:,} rows] hindsight (stored profile) x{h_repeat} ...")
        res = run_repeated(sys.executable, "hindsight_runner.py",
                           [*io, "--mode", "profile", "--profile", str(profile_path)],
                           timeout, h_repeat)
        res["profile_build_seconds"] = made.get("seconds")
        results[HINDSIGHT_PROFILE] = res

    for name in peers:
        if install_errors.get(name):
            results[name] = {"error": install_errors[name]}
            continue
        log(f"[{n:,} rows] {name} ...")
        runner = f"{name.replace('-', '_')}_runner.py"
        python = pythons[name]
        assert python is not None
        results[name] = run_repeated(python, runner, io, timeout, p_repeat)
        if "error" in results[name]:
            log(f"   {name}: {results[name]['error']}")
        else:
            log(f"   {name}: {results[name]['seconds']:.2f} s")
    for res in results.values():
        if "error" not in res:
            res.update(score(res.get("flagged", [])))
    return results


# ------------------------------------------------------------------------ output
def _mib(b: float | None) -> str:
    return "-" if b is None else f"{b / 2**20:,.0f}"


def rows_of(results: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    base = results.get(HINDSIGHT, {}).get("seconds")
    rows = []
    for key, res in results.items():
        row: dict[str, Any] = {"peer": key, "label": LABELS.get(key, key)}
        if "error" in res:
            row["error"] = res["error"]
            if res.get("timeout"):
                row["timeout"] = True
            rows.append(row)
            continue
        over, size = res.get("peak_over_baseline_bytes"), res.get("data_bytes")
        row.update(
            version=res.get("version"), seconds=round(res["seconds"], 4),
            peak_rss_mib=round(res["peak_rss_bytes"] / 2**20, 1),
            peak_over_baseline_mib=round(over / 2**20, 1),
            data_mib=round(size / 2**20, 1),
            memory_x_data=round(over / size, 2) if size else None,
            vs_hindsight=round(res["seconds"] / base, 2) if base else None,
            found=len(res["found"]), missed=res["missed"], false=res["false"],
        )
        for extra in ("seconds_all", "flagged_bonferroni", "possible_drift", "profile_build_seconds",
                      "profile_bytes", "alerting_chunks"):
            if extra in res:
                row[extra] = res[extra]
        rows.append(row)
    return rows


def print_table(n: int, rows: list[dict[str, Any]]) -> None:
    k = len(data.DRIFTED)
    print(f"\n== {n:,} rows (reference and current, {len(data.COLUMNS)} columns, "
          f"{k} drifted)")
    head = (f"{'contender':<28}{'seconds':>9}{'x hindsight':>12}{'peak MiB':>10}"
            f"{'data MiB':>10}{'x data':>8}{'found':>7}{'false':>7}  missed / false columns")
    print(head)
    print("-" * len(head))
    for r in rows:
        if "error" in r:
            print(f"{r['label']:<28}  {r['error'][:200]}")
            continue
        ratio = "-" if r["vs_hindsight"] is None else f"{r['vs_hindsight']:,.1f}x"
        cols = []
        if r["missed"]:
            cols.append("missed " + ",".join(r["missed"]))
        if r["false"]:
            cols.append("false " + ",".join(r["false"]))
        print(f"{r['label']:<28}{r['seconds']:>9,.3f}{ratio:>12}"
              f"{r['peak_over_baseline_mib']:>10,.0f}{r['data_mib']:>10,.0f}"
              f"{r['memory_x_data']:>8.2f}{r['found']:>5}/{k}{len(r['false']):>7}  "
              + "; ".join(cols))
    print("   seconds: drift computation only (imports and loading excluded); peak MiB: peak "
          "RSS during it minus the RSS after imports (includes the loaded data); data MiB: "
          "Arrow size of the tables that contender loaded (current only for the stored "
          "profile); x hindsight: seconds / hindsight's raw-reference seconds.")
    sys.stdout.flush()


def _speed_target(name: str, peer_res: dict[str, Any] | None, h_res: dict[str, Any],
                  goal: float) -> Target:
    h_sec = h_res.get("seconds")
    extra: dict[str, Any] = {}
    if h_sec is None:
        extra["hindsight_error"] = h_res.get("error")
    if peer_res is None or "error" in peer_res:
        extra["peer_error"] = None if peer_res is None else peer_res.get("error")
    p_sec = None if peer_res is None else peer_res.get("seconds")
    ratio = p_sec / h_sec if p_sec and h_sec else None
    met = ratio is not None and ratio >= goal
    if peer_res is not None and peer_res.get("seconds_at_timeout") and h_sec:
        # A peer stopped at the time limit took at least that long: a lower bound.
        bound = peer_res["seconds_at_timeout"] / h_sec
        extra["ratio_lower_bound"] = round(bound, 1)
        met = bound >= goal
    return Target(name=name, value=float("nan") if h_sec is None else h_sec, unit="s",
                  goal=f">= {goal:g}x faster", met=met, peer=p_sec, ratio=ratio, extra=extra)


def targets_for(n: int, results: dict[str, dict[str, Any]]) -> list[Target]:
    k = len(data.DRIFTED)
    out = []
    for key, what in ((HINDSIGHT, "drift_report"), (HINDSIGHT_PROFILE, "drift_report, stored profile")):
        res = results.get(key, {})
        if "error" in res:
            out.append(Target(name=f"hindsight {what}: drifted columns found, {n:,} rows",
                              value=float("nan"), unit=f"of {k}", goal=f"{k} of {k}, 0 false",
                              met=False, extra={"error": res["error"]}))
            continue
        out.append(Target(
            name=f"hindsight {what}: drifted columns found, {n:,} rows",
            value=float(len(res["found"])), unit=f"of {k}", goal=f"{k} of {k}, 0 false",
            met=not res["missed"] and not res["false"],
            extra={"missed": res["missed"], "false": res["false"]},
        ))
    h = results.get(HINDSIGHT, {})
    hp = results.get(HINDSIGHT_PROFILE, {})
    if "evidently" in results:
        out.append(_speed_target(f"drift_report vs Evidently DataDriftPreset, {n:,} rows",
                                 results["evidently"], h, TARGET_EVIDENTLY))
    if "scipy" in results:
        out.append(_speed_target(f"drift_report vs SciPy ks_2samp/chi2, {n:,} rows",
                                 results["scipy"], h, TARGET_SCIPY_RAW))
        out.append(_speed_target(
            f"drift_report (stored profile) vs SciPy ks_2samp/chi2, {n:,} rows",
            results["scipy"], hp, TARGET_SCIPY_PROFILE))
    if "error" in h:
        out.append(Target(name=f"drift_report peak memory / data size, {n:,} rows",
                          value=float("nan"), unit="x", goal=f"<= {TARGET_MEMORY:g}x",
                          met=False, extra={"error": h["error"]}))
    else:
        ratio = h["peak_over_baseline_bytes"] / h["data_bytes"]
        out.append(Target(
            name=f"drift_report peak memory / data size, {n:,} rows", value=ratio, unit="x",
            goal=f"<= {TARGET_MEMORY:g}x", met=ratio <= TARGET_MEMORY,
            extra={"peak_over_baseline_bytes": h["peak_over_baseline_bytes"],
                   "data_bytes": h["data_bytes"]},
        ))
    return out


# --------------------------------------------------------------------------- main
def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--quick", action="store_true", help="100,000 rows only")
    parser.add_argument("--repeat", type=int, default=None,
                        help=f"runs per contender, median reported (default: hindsight "
                             f"{HINDSIGHT_REPEAT}, peers 1)")
    parser.add_argument("--peers", default=",".join(PEERS),
                        help=f"comma-separated, from {','.join(PEERS)} (default: all); "
                             "'none' for hindsight alone")
    parser.add_argument("--timeout", type=float, default=900.0,
                        help="seconds allowed per runner process (default 900)")
    parser.add_argument("--sizes", default=None,
                        help="comma-separated row counts (default 100000,1000000)")
    args = parser.parse_args(argv)

    peers = [] if args.peers.strip() == "none" else [
        p.strip() for p in args.peers.split(",") if p.strip()]
    unknown = [p for p in peers if p not in PEERS]
    if unknown:
        parser.error(f"unknown peer(s) {unknown}; choose from {list(PEERS)}")
    if args.sizes:
        sizes = [int(s.replace("_", "")) for s in args.sizes.split(",")]
    else:
        sizes = [data.SIZES[0]] if args.quick else list(data.SIZES)

    t_start = time.perf_counter()
    log("drift benchmark: making data (cached) ...")
    for n in sizes:
        data.ensure(n)
    pythons: dict[str, Path | None] = {}
    install_errors: dict[str, str] = {}
    versions: dict[str, str] = {}
    for name in peers:
        python, error = ensure_venv(PEERS[name])
        pythons[name] = python
        if error:
            install_errors[name] = error
            log(f"  {name}: {error}")
        else:
            versions[name] = f"python {_version_of(python)}"

    all_results: dict[int, dict[str, dict[str, Any]]] = {}
    with tempfile.TemporaryDirectory(prefix="hindsight-drift-") as tmp:
        for n in sizes:
            all_results[n] = run_size(n, peers, pythons, install_errors, args.timeout,
                                      args.repeat, Path(tmp))

    lib_versions: dict[str, str] = {}
    for n in sizes:
        for key, res in all_results[n].items():
            if "version" in res and key not in lib_versions:
                where = versions.get(key, f"project venv, python {_version_of(sys.executable)}")
                lib_versions[key] = f"{res['version']} ({where})"
    for name in peers:  # a peer that never returned a result: its pinned package
        if name not in lib_versions and name in versions:
            lib_versions[name] = f"{PEERS[name].packages[0]} ({versions[name]})"
    versions = lib_versions
    largest = max(sizes)
    targets = targets_for(largest, all_results[largest])
    rows = {n: rows_of(all_results[n]) for n in sizes}
    info: dict[str, Any] = {
        "sizes": sizes,
        "drifted": data.DRIFTED,
        "versions": versions,
        "not_installable": install_errors,
        "results": {str(n): rows[n] for n in sizes},
        "benchmark_seconds": round(time.perf_counter() - t_start, 1),
    }
    title = "drift report vs Evidently / NannyML / alibi-detect / whylogs / SciPy"
    if args.json:
        report(title, targets, info, as_json=True)
        return 0
    for n in sizes:
        print_table(n, rows[n])
    print()
    for name, ver in versions.items():
        print(f"   {LABELS.get(name, name)}: {ver}")
    for name, error in install_errors.items():
        print(f"   {LABELS.get(name, name)}: {error}")
    report(title, targets, {"sizes": ", ".join(f"{n:,}" for n in sizes),
                            "benchmark_seconds": info["benchmark_seconds"]}, as_json=False)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
