"""``hindsight demo``: replay a recommendation team's journey into the ledger."""

from __future__ import annotations

from typing import Annotated

import typer

from hindsight.cli.common import console, get_cli_ledger, print_json
from hindsight.demo.journey import run_demo
from hindsight.errors import ConfigError
from hindsight.ledger import Ledger


def demo(
    project: Annotated[str, typer.Option("--project", "-p", help="Project name to record under.")]
    = "recsys-demo",
    seed: Annotated[int, typer.Option(help="Seed for the data and the models.")] = 7,
    as_json: Annotated[bool, typer.Option("--json", help="Print what was recorded as JSON.")] = False,
    serve: Annotated[
        bool, typer.Option("--serve", help="Then start the team server on the demo ledger.")
    ] = False,
    host: Annotated[str, typer.Option(help="With --serve: interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="With --serve: port (a free one if taken).")] = 8080,
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
    if serve:
        _serve_demo(ledger, host, port)


def _serve_demo(ledger: Ledger, host: str, port: int) -> None:
    """Start the team server on the demo ledger, with a ``demo`` editor to log in as."""
    import secrets
    import socket

    try:
        import uvicorn

        from hindsight.web.app import create_app
        from hindsight.web.auth import create_user, set_password
    except ImportError as exc:
        raise ConfigError(
            f"--serve needs the serve extra ({exc.name} is missing): pip install 'hindsight[serve]'."
        ) from exc
    password = secrets.token_urlsafe(12)
    if ledger.store.user_by_name("demo") is None:
        create_user(ledger.store, "demo", role="editor", password=password)
    else:
        set_password(ledger.store, "demo", password)
    with socket.socket() as probe:
        try:
            probe.bind((host, port))
        except OSError:
            probe.bind((host, 0))
            port = int(probe.getsockname()[1])
    console.print(
        f"\nThe team server on the demo ledger: [bold]http://{host}:{port}[/]\n"
        f"  log in as [bold]demo[/] with password [bold]{password}[/] (new each run); Ctrl-C stops it"
    )
    uvicorn.run(create_app(ledger), host=host, port=port, log_level="warning")
