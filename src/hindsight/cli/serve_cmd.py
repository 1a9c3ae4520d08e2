"""``hindsight serve service.yaml``: a guarded model service over HTTP (FastAPI + uvicorn).

Exit codes: 0 stopped cleanly (or ``--check`` found the file good); 2 bad file or usage.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from hindsight.cli.common import console, print_json, store_override, table
from hindsight.errors import ConfigError

__all__ = ["register"]


def serve_cmd(
    service_file: Annotated[Path, typer.Argument(help="The service.yaml describing the service.")],
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
    token: Annotated[
        str | None,
        typer.Option(
            envvar="HINDSIGHT_SERVE_TOKEN",
            help="Bearer token for write and admin endpoints (default: a random one, printed).",
        ),
    ] = None,
    check: Annotated[
        bool, typer.Option("--check", help="Build the service, print its tiers and exit.")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="With --check: print JSON.")] = False,
    log_level: Annotated[str, typer.Option(help="uvicorn log level.")] = "info",
) -> None:
    """Serve a model with a fallback chain, abstention, review queue and rollouts.

    The prediction log goes to `hindsight --store URL` / HINDSIGHT_STORE when set, else
    to the file's 'store', else SQLite under ./.hindsight. Stop with Ctrl-C or SIGTERM: the
    log is flushed before the process exits.
    """
    from hindsight.serving.config import load_service

    # `hindsight --store URL serve ...` (or HINDSIGHT_STORE) overrides the file's store.
    override = store_override()
    service = load_service(service_file, store=override if override is not None else "default")
    if check:
        try:
            status = service.status()
        finally:
            service.close()
        if as_json:
            print_json(status)
            return
        t = table(f"service {status['service']} (deadline {status['deadline_ms']:g} ms)")
        for col in ("tier", "kind", "version", "breaker"):
            t.add_column(col)
        for tier in status["tiers"]:
            t.add_row(tier["tier"], tier["kind"], str(tier["version"]), tier["breaker"]["state"])
        console.print(t)
        for name, cand in status["candidates"].items():
            console.print(f"candidate [bold]{name}[/]: {cand['kind']} {cand['version']}")
        return
    try:
        from hindsight.serving.app import serve
    except ImportError as exc:  # pragma: no cover - depends on the install
        service.close()
        raise ConfigError(
            f"hindsight serve needs the serve extra ({exc}): pip install 'hindsight[serve]'."
        ) from exc
    if token is not None and not token.strip():
        service.close()
        raise ConfigError("--token (or HINDSIGHT_SERVE_TOKEN) must not be empty.")
    serve(service, host=host, port=port, token=token, log_level=log_level)


def register(app: typer.Typer) -> None:
    app.command("serve")(serve_cmd)
