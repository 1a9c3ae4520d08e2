"""Training-fault benchmark: does the training guard stop faulty runs, and only those?

Trains every seeded faulty set-up in ``fault_cases.CASES`` (small PyTorch MLPs on
scikit-learn data, CPU, one thread) and its healthy twin (the same config with only the
fix applied) under a ``TrainingGuard`` fed by ``watch(model, guard, activations=True,
optimizer=opt)``, and reports, for the guard with ``strict_detectors()`` (the defaults,
plus saturated activations stopping the run: what to use on models trained from
scratch; see ``fault_harness.STRICT_STOP_KINDS``):

- detection rate: faulty runs in which the guard stopped the run (target >= 95%);
- false-positive rate: healthy twins in which it stopped the run (target <= 5%);
- symptom-type accuracy: detected faulty runs whose FIRST stop-severity symptom is one
  of the case's accepted kinds (target >= 80%); also given over all faulty runs;
- median detection delay: stop step minus the step the fault became present (0 for a
  faulty set-up, the injection step for faults injected mid-run), in optimiser steps;
- steps saved: 1 - (steps run / planned steps), summed over faulty runs, where a run
  stopped at step s ran s + 1 steps and an undetected run all of its planned steps.

Each run trains to its planned end with the guard on ``on_failure="warn"``; the stop
step of a policy is the first reported symptom whose kind it stops on. That equals the
step at which ``on_failure="stop"`` would have stopped it (the guard's reports up to a
step never depend on later steps); the smoke test checks it on real runs. The same runs
are also scored under ``default_detectors()``, where saturated activations only warn.

Exit status: 0 when every target is met, 1 when one is missed (a CI gate), 2 on error.
With ``--json`` it prints one JSON object and exits 0 on a missed target, like the other
benchmark scripts read by ``benchmarks/run_all.py`` (the ``met`` fields carry the gate).

Run: .venv/bin/python benchmarks/training_faults/run.py [--json] [--quick] [--only NAME]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))

import torch  # noqa: E402
from fault_cases import CASES, Case  # noqa: E402
from fault_harness import (  # noqa: E402
    DEFAULT_STOP_KINDS,
    STRICT_STOP_KINDS,
    RunResult,
    first_stop,
    run_config,
)

from _common import Target, report  # noqa: E402

DETECTION_TARGET = 0.95
FP_TARGET = 0.05
TYPE_TARGET = 0.80


@dataclass
class CaseOutcome:
    case: Case
    faulty: RunResult
    healthy: RunResult


def run_case(case: Case) -> CaseOutcome:
    return CaseOutcome(case, run_config(case.faulty), run_config(case.healthy))


def score(outcomes: Sequence[CaseOutcome], stop_kinds: Collection[str]) -> dict[str, Any]:
    """The benchmark's numbers for one stop policy, and one row per case."""
    rows: list[dict[str, Any]] = []
    detected = typed = false_pos = 0
    delays: list[int] = []
    run_steps = planned = 0
    for o in outcomes:
        c = o.case
        s = first_stop(o.faulty, stop_kinds)
        h = first_stop(o.healthy, stop_kinds)
        steps = o.faulty.planned_steps if s is None else min(s.step + 1, o.faulty.planned_steps)
        run_steps += steps
        planned += o.faulty.planned_steps
        if s is not None:
            detected += 1
            typed += s.kind in c.expected
            delays.append(s.step - c.inject_step)
        false_pos += h is not None
        rows.append({
            "case": c.name,
            "family": c.family,
            "fault": c.fault,
            "fix": c.fix_text,
            "expected": list(c.expected),
            "inject_step": c.inject_step,
            "stopped": s is not None,
            "stop_kind": None if s is None else s.kind,
            "stop_step": None if s is None else s.step,
            "typed_right": s is not None and s.kind in c.expected,
            "delay": None if s is None else s.step - c.inject_step,
            "steps_run": steps,
            "planned_steps": o.faulty.planned_steps,
            "healthy_stop_kind": None if h is None else h.kind,
            "healthy_stop_step": None if h is None else h.step,
            "healthy_final_loss": round(o.healthy.final_loss, 5),
            "healthy_final_val_loss": round(o.healthy.final_val_loss, 5),
        })
    n = len(outcomes)
    return {
        "cases": n,
        "detection_rate": detected / n if n else 0.0,
        "false_positive_rate": false_pos / n if n else 0.0,
        "type_accuracy": typed / detected if detected else 0.0,
        "type_accuracy_over_all_faulty": typed / n if n else 0.0,
        "median_delay_steps": statistics.median(delays) if delays else None,
        "steps_saved": 1.0 - run_steps / planned if planned else 0.0,
        "detected": detected,
        "typed_right": typed,
        "false_positives": false_pos,
        "rows": rows,
    }


def print_table(rows: Sequence[dict[str, Any]]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title="training faults: first stop-severity symptom (strict policy)")
    for col in ("case", "fault", "accepted kinds", "faulty run", "delay", "healthy twin"):
        table.add_column(col, overflow="fold")
    for r in rows:
        if r["stopped"]:
            mark = "[green]ok[/green]" if r["typed_right"] else "[yellow]type?[/yellow]"
            faulty = f"{mark} {r['stop_kind']} @ {r['stop_step']}"
        else:
            faulty = "[red]missed[/red]"
        healthy = (
            "[green]ran to end[/green]" if r["healthy_stop_kind"] is None
            else f"[red]FP {r['healthy_stop_kind']} @ {r['healthy_stop_step']}[/red]"
        )
        table.add_row(
            r["case"], r["fault"], ", ".join(r["expected"]), faulty,
            "-" if r["delay"] is None else str(r["delay"]), healthy,
        )
    Console(width=170).print(table)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--quick", action="store_true", help="every 4th case, for a smoke run")
    parser.add_argument("--repeat", type=int, default=None, help="ignored (runs are seeded)")
    parser.add_argument("--only", default=None, help="only cases whose name contains this")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    cases = [c for c in CASES if args.only is None or args.only in c.name]
    if args.quick:
        cases = cases[::4]
    if not cases:
        print(f"no case matches {args.only!r}", file=sys.stderr)
        return 2
    t0 = time.perf_counter()
    outcomes = [run_case(c) for c in cases]
    seconds = time.perf_counter() - t0
    strict = score(outcomes, STRICT_STOP_KINDS)
    default = score(outcomes, DEFAULT_STOP_KINDS)
    kinds = sorted({k for c in cases for k in c.expected})
    n = strict["cases"]
    targets = [
        Target(
            name=f"training guard detection rate on {n} faulty runs", unit="%",
            value=strict["detection_rate"] * 100, goal=f">= {DETECTION_TARGET:.0%}",
            met=strict["detection_rate"] >= DETECTION_TARGET,
        ),
        Target(
            name=f"training guard false-positive rate on {n} healthy twins", unit="%",
            value=strict["false_positive_rate"] * 100, goal=f"<= {FP_TARGET:.0%}",
            met=strict["false_positive_rate"] <= FP_TARGET,
        ),
        Target(
            name="training guard symptom-type accuracy (first stop symptom)", unit="%",
            value=strict["type_accuracy"] * 100, goal=f">= {TYPE_TARGET:.0%}",
            met=strict["type_accuracy"] >= TYPE_TARGET,
        ),
    ]
    info: dict[str, Any] = {
        "cases": n,
        "families": len({c.family for c in cases}),
        "accepted_symptom_kinds": len(kinds),
        "median_detection_delay_steps": strict["median_delay_steps"],
        "steps_saved_on_faulty_runs_%": round(strict["steps_saved"] * 100, 1),
        "type_accuracy_over_all_faulty_%": round(strict["type_accuracy_over_all_faulty"] * 100, 1),
        "default_severities": {
            "detection_%": round(default["detection_rate"] * 100, 1),
            "false_positive_%": round(default["false_positive_rate"] * 100, 1),
            "type_accuracy_%": round(default["type_accuracy"] * 100, 1),
            "median_delay_steps": default["median_delay_steps"],
            "steps_saved_%": round(default["steps_saved"] * 100, 1),
        },
        "seconds": round(seconds, 1),
        "torch_threads": torch.get_num_threads(),
    }
    if args.json:
        info["rows"] = strict["rows"]
        report("training faults: guard detection, false positives, typing", targets, info,
               True)
        return 0
    print_table(strict["rows"])
    report("training faults: guard detection, false positives, typing", targets, info, False)
    missed = [t.name for t in targets if not t.met]
    if missed:
        print(f"MISSED {len(missed)} target(s): " + "; ".join(missed))
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
