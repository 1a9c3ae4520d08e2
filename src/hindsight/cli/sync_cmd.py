"""``hindsight sync``: send the records spooled for the team server, and show what is left.

Exit codes: 0 everything was sent and nothing was refused; 1 the server refused some
records (listed; ``--retry`` sends them again once the cause is fixed); 3 records are
still waiting (the server did not answer within ``--timeout``); 2 bad input or usage.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

from hindsight.cli.common import console, print_json, table
from hindsight.config import Settings
from hindsight.errors import ConfigError

if TYPE_CHECKING:
    from hindsight.client import ServerClient

__all__ = ["register", "sync"]


def sync(
    retry: Annotated[
        bool, typer.Option("--retry", help="Queue the refused records again and send them.")
    ] = False,
    timeout: Annotated[
        float, typer.Option(help="Seconds to keep trying before giving up.", min=0)
    ] = 60.0,
    json_out: Annotated[bool, typer.Option("--json", help="Print the outcome as JSON.")] = False,
) -> None:
    """Send records waiting for the team server (HINDSIGHT_SERVER_URL) and list refused ones."""
    from hindsight.ledger.remote import client_for

    settings = Settings.load()
    if not settings.server_url:
        raise ConfigError(
            "hindsight sync sends what runs spooled for the team server, and no server is "
            "set. Set HINDSIGHT_SERVER_URL (and HINDSIGHT_SERVER_TOKEN)."
        )
    if not settings.spool_path.exists():
        summary: dict[str, Any] = {"path": str(settings.spool_path), "waiting": 0,
                                   "by_op": {}, "oldest_at": None, "rejected": 0}
        _report(summary, [], 0, settings, json_out)
        return
    client = client_for(settings)
    try:
        _send(client, settings, retry=retry, timeout=timeout, json_out=json_out)
    finally:
        client.close(0)  # what is still waiting stays in the spool for the next try


def _send(
    client: ServerClient, settings: Settings, *, retry: bool, timeout: float, json_out: bool
) -> None:
    requeued = client.spool.retry_rejected() if retry else 0
    waiting = client.spool.pending()
    sent_before = client.sent
    if waiting:
        client.wake()
        deadline = time.monotonic() + timeout
        with Progress(
            TextColumn(f"sending to {settings.server_url}"),
            BarColumn(),
            MofNCompleteColumn(),
            console=console,
            transient=True,
            disable=json_out,
        ) as bar:
            task = bar.add_task("send", total=waiting)
            while time.monotonic() < deadline:
                left = client.spool.pending()
                bar.update(task, completed=max(0, waiting - left))
                if left == 0:
                    break
                client.wait_for_send(min(0.25, max(0.0, deadline - time.monotonic())))
    summary = client.spool.summary()
    _report(summary, client.spool.rejected(), client.sent - sent_before, settings, json_out,
            requeued=requeued)
    if summary["waiting"]:
        raise typer.Exit(3)
    if summary["rejected"]:
        raise typer.Exit(1)


def _report(
    summary: dict[str, Any],
    rejected: list[dict[str, Any]],
    sent: int,
    settings: Settings,
    json_out: bool,
    *,
    requeued: int = 0,
) -> None:
    if json_out:
        print_json({**summary, "server_url": settings.server_url, "sent": sent,
                    "requeued": requeued, "rejected_records": rejected})
        return
    colour = "green" if not summary["waiting"] else "yellow"
    console.print(
        f"[{colour}]{sent} record(s) sent[/] to {settings.server_url}; "
        f"{summary['waiting']} waiting, {summary['rejected']} refused "
        f"(spool {summary['path']})."
    )
    if summary["waiting"]:
        t = table("Still waiting")
        t.add_column("record")
        t.add_column("count", justify="right")
        for op, n in summary["by_op"].items():
            t.add_row(op, str(n))
        console.print(t)
        console.print("The server did not take them in time; run `hindsight sync` again later.")
    if rejected:
        t = table("Refused by the server")
        t.add_column("record")
        t.add_column("experiment")
        t.add_column("reason", overflow="fold")
        for r in rejected:
            t.add_row(r["op"], r["experiment_id"] or "", r["error"])
        console.print(t)
        console.print("Fix the cause, then `hindsight sync --retry` sends them again.")


def register(app: typer.Typer) -> None:
    app.command("sync")(sync)
