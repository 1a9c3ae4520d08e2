"""``hindsight demo``: replay a recommendation team's journey into the ledger."""

from __future__ import annotations

from typing import Annotated

import typer

from hindsight.cli.common import console, get_cli_ledger, print_json
from hindsight.demo.journey import run_demo


def demo(
    project: Annotated[str, typer.Option("--project", "-p", help="Project name to record under.")]
    = "recsys-demo",
    seed: Annotated[int, typer.Option(help="Seed for the data and the models.")] = 7,
    as_json: Annotated[bool, typer.Option("--json", help="Print what was recorded as JSON.")] = False,
) -> None:
    """Replay a recommendation team's experiments (real, small, seeded training)."""
    ledger = get_cli_ledger()
    say = (lambda _m: None) if as_json else (lambda m: console.out(m, highlight=False))
    result = run_demo(
        ledger, project=project, seed=seed, out_dir=ledger.settings.home / "postmortems",
        reports_dir=ledger.settings.home / "reports", say=say,
    )
    if as_json:
        print_json(result.to_dict())
        return
    console.print(
        f"\nRecorded in {ledger.store!r}. Explore it:\n"
        f"  hindsight ls -p {project}\n"
        f"  hindsight show {result.experiments['repeat']}\n"
        f"  hindsight similar {result.failures['repeat']}\n"
        f"  hindsight lessons list -p {project}\n"
        f"  hindsight metrics -p {project}\n"
        f"  hindsight postmortem show {result.postmortem_id}\n"
        f"  evaluation report (offline HTML): {result.evaluation['models']['cf-baseline'].get('report', '')}"
    )
