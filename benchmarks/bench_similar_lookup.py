"""Similar-failure lookup latency on a store holding 100,000 failures.

The store is filled in bulk (SQLAlchemy Core inserts straight into the store's tables)
with realistic, varied failures: ~40 message templates with random numbers, paths,
shapes and column/key names, fingerprinted with ``hindsight.diagnose.fingerprint`` (so
there are thousands of distinct fingerprints, some repeated hundreds of times), raised
at varied call sites, half of them by experiments (with later successful runs of the
same name, ``builds_on`` links and lessons, so the fix and lesson look-ups have work).

Then ``hindsight.ledger.similar_failures(ledger, failure, k=5)`` is timed for 200
random query failures: p50/p95/p99 with the index built, and the one-time cold build.
Target: p95 < 50 ms. The naive peer: load every failure's tokens from the store and
rank them by Jaccard similarity in Python, per query.

Run: .venv/bin/python benchmarks/bench_similar_lookup.py [--json] [--quick]
"""

from __future__ import annotations

import random
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from _common import Target, median, parse_args, percentile, report

TARGET_P95_MS = 50.0
PROJECTS = ("recsys", "search", "ads", "vision", "nlp")
COLUMNS = [
    "user_id", "item_id", "session_id", "label", "price", "country", "device", "ts",
    "query", "doc_id", "clicks", "impressions", "category", "brand", "age", "gender",
    "embedding", "score", "rank", "position", "campaign_id", "creative", "bid", "ctr",
    "image", "caption", "token_ids", "attention_mask", "labels", "pixel_values",
]
MODULES = ["torchvision", "lightgbm", "xgboost", "transformers", "pyarrow", "polars",
           "faiss", "sentencepiece", "timm", "datasets", "wandb", "onnxruntime"]
USER_FILES = ["train.py", "model.py", "data/loader.py", "data/features.py", "eval.py",
              "serve/app.py", "pipelines/etl.py", "utils/io.py", "callbacks.py", "infer.py"]
USER_FUNCS = ["main", "fit", "train_epoch", "training_step", "forward", "collate",
              "load_batch", "build_features", "evaluate", "predict", "save_checkpoint",
              "read_parquet", "encode", "compute_loss", "validation_step", "run"]
LIB_FRAMES = [
    ("/usr/lib/python3.11/site-packages/torch/nn/modules/module.py", "_call_impl"),
    ("/usr/lib/python3.11/site-packages/torch/nn/functional.py", "linear"),
    ("/usr/lib/python3.11/site-packages/pandas/core/frame.py", "__getitem__"),
    ("/usr/lib/python3.11/site-packages/numpy/core/fromnumeric.py", "reshape"),
    ("/usr/lib/python3.11/site-packages/torch/serialization.py", "save"),
]


def _n(r: random.Random, lo: int, hi: int) -> int:
    return r.randint(lo, hi)


def _path(r: random.Random) -> str:
    root = r.choice(["/data", "/mnt/shared", "/home/ml", "/scratch", "s3cache"])
    return f"{root}/{r.choice(['ds', 'runs', 'ckpt', 'feat'])}{_n(r, 1, 999)}/part-{_n(r, 0, 9999):05d}.parquet"


def _shape(r: random.Random, dims: int = 2) -> str:
    return "[" + ", ".join(str(r.choice([1, 3, 16, 32, 64, 128, 256, 512, 768, 1024]))
                           for _ in range(dims)) + "]"


def _col(r: random.Random) -> str:
    return r.choice(COLUMNS)


# (exception type, message maker, category, source weight)
Template = tuple[str, Callable[[random.Random], str], str]
TEMPLATES: list[Template] = [
    ("torch.OutOfMemoryError", lambda r: f"CUDA out of memory. Tried to allocate {_n(r, 2, 900)}.{_n(r, 0, 99):02d} MiB (GPU {_n(r, 0, 7)}; {r.choice([15.78, 23.65, 39.39, 79.15])} GiB total capacity; {_n(r, 1, 70)}.{_n(r, 0, 99)} GiB already allocated)", "dl.gpu_oom"),
    ("RuntimeError", lambda r: f"CUDA error: out of memory on device {_n(r, 0, 7)}", "dl.gpu_oom"),
    ("MemoryError", lambda r: f"Unable to allocate {_n(r, 1, 64)}.{_n(r, 0, 9)} GiB for an array with shape ({_n(r, 1000, 10**7)}, {_n(r, 2, 4096)}) and data type float64", "dl.cpu_oom"),
    ("RuntimeError", lambda r: f"mat1 and mat2 shapes cannot be multiplied ({_n(r, 1, 512)}x{_n(r, 8, 4096)} and {_n(r, 8, 4096)}x{_n(r, 1, 1024)})", "dl.shape_mismatch"),
    ("RuntimeError", lambda r: f"The size of tensor a ({_n(r, 2, 1024)}) must match the size of tensor b ({_n(r, 2, 1024)}) at non-singleton dimension {_n(r, 0, 3)}", "dl.shape_mismatch"),
    ("ValueError", lambda r: f"Expected input batch_size ({_n(r, 1, 512)}) to match target batch_size ({_n(r, 1, 512)}).", "dl.shape_mismatch"),
    ("ValueError", lambda r: f"cannot reshape array of size {_n(r, 100, 10**6)} into shape ({_n(r, 1, 512)},{_n(r, 1, 512)})", "dl.shape_mismatch"),
    ("RuntimeError", lambda r: f"Given groups=1, weight of size {_shape(r, 4)}, expected input{_shape(r, 4)} to have {r.choice([1, 3, 4])} channels, but got {r.choice([1, 3, 4, 64])} channels instead", "dl.shape_mismatch"),
    ("KeyError", lambda r: f"'{_col(r)}'", "data.error"),
    ("KeyError", lambda r: f"\"None of [Index(['{_col(r)}', '{_col(r)}'], dtype='object')] are in the [columns]\"", "data.error"),
    ("ValueError", lambda r: f"Input contains NaN, infinity or a value too large for dtype('float{r.choice([32, 64])}').", "data.error"),
    ("ValueError", lambda r: f"could not convert string to float: '{r.choice(['n/a', 'NULL', '?', 'unknown', '-'])}'", "data.error"),
    ("pyarrow.lib.ArrowInvalid", lambda r: f"Column '{_col(r)}' had {_n(r, 1, 10**6)} nulls in non-nullable field", "data.error"),
    ("ValueError", lambda r: f"y contains previously unseen labels: [{_n(r, 0, 9999)}]", "data.error"),
    ("IndexError", lambda r: f"index {_n(r, 100, 10**6)} is out of bounds for dimension 0 with size {_n(r, 10, 10**5)}", "code.error"),
    ("RuntimeError", lambda r: f"Expected all tensors to be on the same device, but found at least two devices, cuda:{_n(r, 0, 7)} and cpu!", "dl.api_misuse"),
    ("RuntimeError", lambda r: "element 0 of tensors does not require grad and does not have a grad_fn", "dl.api_misuse"),
    ("RuntimeError", lambda r: f"Trying to backward through the graph a second time (step {_n(r, 1, 99999)})", "dl.api_misuse"),
    ("ValueError", lambda r: f"Loss is NaN at step {_n(r, 1, 200000)} (lr={r.choice(['1e-2', '3e-3', '1e-1', '0.5'])})", "dl.nan_divergence"),
    ("FloatingPointError", lambda r: f"gradient norm is inf at step {_n(r, 1, 200000)}", "dl.nan_divergence"),
    ("ModuleNotFoundError", lambda r: f"No module named '{r.choice(MODULES)}'", "env.dependency"),
    ("ImportError", lambda r: f"cannot import name '{r.choice(['AdamW', 'get_scheduler', 'Trainer', 'DataCollator'])}' from '{r.choice(MODULES)}' ({_path(r)})", "env.dependency"),
    ("FileNotFoundError", lambda r: f"[Errno 2] No such file or directory: '{_path(r)}'", "env.path"),
    ("PermissionError", lambda r: f"[Errno 13] Permission denied: '{_path(r)}'", "env.path"),
    ("OSError", lambda r: f"[Errno 28] No space left on device: '{_path(r)}'", "infra.disk_full"),
    ("ConnectionError", lambda r: f"HTTPSConnectionPool(host='{r.choice(['huggingface.co', 'pypi.org', 's3.amazonaws.com'])}', port=443): Max retries exceeded with url: /{_n(r, 1, 10**6)}", "infra.network"),
    ("TimeoutError", lambda r: f"timed out after {_n(r, 5, 600)} s waiting for 10.0.{_n(r, 0, 255)}.{_n(r, 0, 255)}:{_n(r, 1024, 65535)}", "infra.network"),
    ("RuntimeError", lambda r: f"NCCL error in: ProcessGroupNCCL.cpp:{_n(r, 100, 2000)}, unhandled system error, NCCL version 2.{_n(r, 10, 21)}.{_n(r, 1, 9)}", "infra.distributed"),
    ("torch.distributed.DistBackendError", lambda r: f"[Rank {_n(r, 0, 63)}] Watchdog caught collective operation timeout: WorkNCCL(SeqNum={_n(r, 1, 10**6)}, OpType=ALLREDUCE) ran for {_n(r, 600000, 1800000)} milliseconds before timing out.", "infra.distributed"),
    ("RuntimeError", lambda r: f"CUDA error: an illegal memory access was encountered (device {_n(r, 0, 7)})", "infra.gpu_driver"),
    ("RuntimeError", lambda r: f"CUDA driver version is insufficient for CUDA runtime version ({_n(r, 11, 12)}.{_n(r, 0, 8)})", "infra.gpu_driver"),
    ("", lambda r: f"Killed: worker-{_n(r, 1, 500)} received SIGTERM (preempted spot instance i-{_n(r, 10**9, 10**10):x})", "infra.preemption"),
    ("", lambda r: f"Process exited with code 137 after {_n(r, 1, 3600)} s; memory cgroup usage {_n(r, 10, 500)} GiB", "dl.cpu_oom"),
    ("ValueError", lambda r: f"Invalid value for learning_rate: {r.choice(['-1', '0', 'abc'])} (expected a positive float)", "env.config"),
    ("TypeError", lambda r: f"__init__() got an unexpected keyword argument '{r.choice(['hidden_dim', 'num_heads', 'dropout_p', 'warmup'])}'", "code.error"),
    ("AttributeError", lambda r: f"'NoneType' object has no attribute '{r.choice(['shape', 'to', 'item', 'predict', 'cuda'])}'", "code.error"),
    ("ZeroDivisionError", lambda r: "division by zero", "code.error"),
    ("AssertionError", lambda r: f"expected {_n(r, 1, 100)} classes, got {_n(r, 1, 100)}", "code.error"),
    ("json.decoder.JSONDecodeError", lambda r: f"Expecting value: line {_n(r, 1, 500)} column {_n(r, 1, 80)} (char {_n(r, 0, 10**5)})", "data.error"),
    ("sqlalchemy.exc.OperationalError", lambda r: f"(psycopg.OperationalError) connection to server at \"10.1.{_n(r, 0, 255)}.{_n(r, 0, 255)}\", port 5432 failed: timeout expired", "infra.network"),
]


def make_failures(n: int, seed: int = 7) -> tuple[list[dict[str, Any]], list[dict[str, Any]], list[dict[str, Any]], list[dict[str, Any]], list[dict[str, Any]]]:
    """(failures, experiments, parent links, lessons, lesson links) rows for the store."""
    from hindsight.diagnose import Evidence, fingerprint
    from hindsight.diagnose.frames import make_frame

    r = random.Random(seed)
    now = time.time()
    t0 = now - 365 * 86400
    # Each template fails at a few call sites, some far more often than others.
    sites = {
        i: [
            tuple(
                (r.choice(USER_FILES), r.choice(USER_FUNCS)) for _ in range(r.randint(1, 3))
            )
            for _ in range(r.randint(2, 12))
        ]
        for i in range(len(TEMPLATES))
    }
    weights = [r.paretovariate(1.2) for _ in TEMPLATES]
    names = {p: [f"{p}-{w}" for w in ("baseline", "mf", "two-tower", "bert", "gbdt", "ranker",
                                          "ctr", "cvr", "retrieval", "distill")] for p in PROJECTS}
    failures, experiments, parents, lessons, links = [], [], [], [], []
    times = sorted(r.uniform(t0, now - 3600) for _ in range(n))
    for i, created in enumerate(times):
        ti = r.choices(range(len(TEMPLATES)), weights)[0]
        exc_type, make_msg, category = TEMPLATES[ti]
        message = make_msg(r)
        site = r.choice(sites[ti])
        frames = tuple(make_frame(f"/home/ml/project/{f}", r.randint(1, 900), fn, "x = f(y)")
                       for f, fn in site)
        if r.random() < 0.3:
            lf, lfn = r.choice(LIB_FRAMES)
            frames = (*frames, make_frame(lf, r.randint(1, 3000), lfn, "return impl(x)"))
        ev = Evidence(exc_type=exc_type, message=message, frames=frames)
        fp = fingerprint(ev, category)
        project = r.choice(PROJECTS)
        exp_id = None
        if r.random() < 0.5:
            exp_id = f"exp_{i:011x}{r.getrandbits(32):08x}"
            name = r.choice(names[project])
            experiments.append(_experiment(exp_id, project, name, created - r.uniform(60, 7200),
                                           created, "crashed", "failure", r))
            if r.random() < 0.3:  # a later run of the same line of work that worked
                ok_id = f"exp_{i:011x}{r.getrandbits(32):08x}"
                later = created + r.uniform(600, 5 * 86400)
                experiments.append(_experiment(ok_id, project, name if r.random() < 0.5 else
                                               f"{name}-retry", later, later + 3600, "finished",
                                               "success", r))
                if r.random() < 0.5:
                    parents.append({"experiment_id": ok_id, "parent_id": exp_id})
        fid = f"fail_{i:011x}{r.getrandbits(32):08x}"
        failures.append({
            "id": fid, "experiment_id": exp_id, "project": project,
            "source": "experiment" if exp_id else r.choice(["training", "serving", "data", "monitor"]),
            "created_at": created, "exc_type": exc_type, "message": message,
            "frames": [f.to_dict() for f in frames], "log_tail": None,
            "exit_code": 1, "fingerprint": fp.hash, "masked_message": fp.masked_message,
            "tokens": " ".join(fp.tokens), "category": category,
            "diagnosis": {"category": category, "title": exc_type or "process died",
                          "likely_cause": "synthetic", "recommendations": []},
            "evidence": {"config": {"lr": r.choice([1e-3, 3e-4, 1e-2]), "batch_size": r.choice([32, 64, 256])}},
            "schema_version": 1,
        })
        if r.random() < 0.02:
            lid = f"les_{i:011x}{r.getrandbits(32):08x}"
            lessons.append({"id": lid, "project": project,
                            "text": f"{exc_type or 'crash'}: check {category} early",
                            "tags": [category], "created_at": created + 60, "schema_version": 1})
            links.append({"lesson_id": lid, "target_id": fid, "relation": "source",
                          "created_at": created + 60})
            if exp_id:
                links.append({"lesson_id": lid, "target_id": exp_id, "relation": "source",
                              "created_at": created + 60})
    return failures, experiments, parents, lessons, links


def _experiment(eid: str, project: str, name: str, started: float, ended: float,
                status: str, outcome: str, r: random.Random) -> dict[str, Any]:
    return {
        "id": eid, "project": project, "name": name, "hypothesis": "", "approach": "",
        "tags": [], "config": {"lr": r.choice([1e-3, 3e-4, 1e-2]), "batch_size": r.choice([32, 64, 256])},
        "criteria": {}, "status": status, "outcome": outcome, "outcome_source": "criteria",
        "outcome_reason": "", "verdicts": [], "summary": {}, "started_at": started,
        "ended_at": ended, "heartbeat_at": ended, "duration_s": ended - started,
        "git_commit": None, "git_dirty": None, "environment": {}, "host": "bench", "pid": 1,
        "command": "python train.py", "mlflow_run_id": None, "failure_id": None,
        "schema_version": 1,
    }


def fill_store(store: Any, rows: tuple[list[dict[str, Any]], ...]) -> None:
    from sqlalchemy import insert

    from hindsight.store import schema as t

    failures, experiments, parents, lessons, links = rows
    tables = [(t.experiments, experiments), (t.failures, failures), (t.experiment_parents, parents),
              (t.lessons, lessons), (t.lesson_links, links)]
    with store.write() as conn:
        for table, table_rows in tables:
            for i in range(0, len(table_rows), 5000):
                conn.execute(insert(table), table_rows[i : i + 5000])


def naive_lookup(store: Any, tokens: str, k: int = 5) -> list[str]:
    """The naive peer: read every failure's tokens, rank by Jaccard in Python."""
    q = set(tokens.split())
    scored = []
    for fid, _fp, _cat, tok, _created in store.failure_signatures(None):
        s = set(tok.split())
        scored.append((len(q & s) / max(len(q | s), 1), fid))
    scored.sort(reverse=True)
    return [fid for _, fid in scored[:k]]


def main() -> int:
    args = parse_args(__doc__.splitlines()[0])
    n = 10_000 if args.quick else 100_000
    n_queries = 50 if args.quick else 200
    n_naive = 2 if args.quick else 5
    from hindsight.ledger import FailureRecord, Ledger, similar_failures

    t_gen = time.perf_counter()
    rows = make_failures(n)
    t_gen = time.perf_counter() - t_gen
    failures = rows[0]
    with tempfile.TemporaryDirectory(prefix="hs-bench-similar-") as tmp:
        url = f"sqlite:///{Path(tmp) / 'hindsight.db'}"
        ledger = Ledger.at(url)
        t_fill = time.perf_counter()
        fill_store(ledger.store, rows)
        t_fill = time.perf_counter() - t_fill
        r = random.Random(11)
        picks = r.sample(range(len(failures)), n_queries + 1)
        queries = [FailureRecord.from_row(dict(failures[i])) for i in picks]

        t0 = time.perf_counter()
        similar_failures(ledger, queries[0], k=5)
        cold = time.perf_counter() - t0
        lat, found = [], []
        for q in queries[1:]:
            t0 = time.perf_counter()
            res = similar_failures(ledger, q, k=5)
            lat.append(time.perf_counter() - t0)
            found.append(len(res))
        naive = []
        for q in queries[1 : 1 + n_naive]:
            t0 = time.perf_counter()
            naive_lookup(ledger.store, q.tokens)
            naive.append(time.perf_counter() - t0)
        distinct = len({f["fingerprint"] for f in failures})
        ledger.close()
    p50, p95, p99 = (percentile(lat, q) * 1e3 for q in (50, 95, 99))
    naive_ms = median(naive) * 1e3
    targets = [
        Target(
            name=f"similar_failures(k=5) p95 over {n_queries} queries, {n:,} failures",
            value=p95, unit="ms", goal=f"< {TARGET_P95_MS:g} ms", met=p95 < TARGET_P95_MS,
            peer=naive_ms, ratio=naive_ms / p95,
        )
    ]
    info = {
        "failures": n,
        "distinct_fingerprints": distinct,
        "experiments": len(rows[1]),
        "lessons": len(rows[3]),
        "generate_s": round(t_gen, 2),
        "bulk_insert_s": round(t_fill, 2),
        "cold_first_query_incl_index_build_ms": round(cold * 1e3, 1),
        "warm_p50_ms": round(p50, 2),
        "warm_p95_ms": round(p95, 2),
        "warm_p99_ms": round(p99, 2),
        "warm_max_ms": round(max(lat) * 1e3, 2),
        "mean_results": round(sum(found) / len(found), 2),
        f"naive_jaccard_scan_ms (median of {n_naive}, the peer)": round(naive_ms, 1),
    }
    report("similar-failure lookup", targets, info, args.json)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
