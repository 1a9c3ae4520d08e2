"""``hindsight server`` (the team server and dashboard) and ``hindsight users`` (accounts).

Exit codes: 0 done (or the server stopped cleanly); 2 bad input or usage.
"""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from hindsight.cli.common import console, get_cli_ledger, print_json, table
from hindsight.errors import ConfigError

__all__ = ["register", "users_app"]

users_app = typer.Typer(help="People and API tokens of the team server.", no_args_is_help=True)


def server(
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8080,
    secure_cookies: Annotated[
        bool,
        typer.Option("--secure-cookies", help="Mark the session cookie Secure (behind HTTPS)."),
    ] = False,
    log_level: Annotated[str, typer.Option(help="uvicorn log level.")] = "info",
) -> None:
    """Serve the dashboard and the JSON API over the store (HINDSIGHT_STORE or --store)."""
    try:
        import uvicorn

        from hindsight.web.app import create_app
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise ConfigError(
            f"hindsight server needs the serve extra ({exc.name} is missing): "
            "pip install 'hindsight[serve]'."
        ) from exc
    ledger = get_cli_ledger()
    if ledger.store.count_users() == 0:
        console.print(
            "[yellow]No user yet:[/] add one with `hindsight users add NAME --role admin` "
            "to log in."
        )
    console.print(f"hindsight server on http://{host}:{port}  (store {ledger.store!r})")
    uvicorn.run(
        create_app(ledger, secure_cookies=secure_cookies), host=host, port=port,
        log_level=log_level,
    )


def _read_password(password_stdin: bool) -> str:
    if password_stdin:
        return sys.stdin.readline().rstrip("\n")
    return str(typer.prompt("Password", hide_input=True, confirmation_prompt=True))


@users_app.command("add")
def add(
    name: Annotated[str, typer.Argument(help="The user's login name.")],
    role: Annotated[str, typer.Option(help="viewer, editor or admin.")] = "viewer",
    password_stdin: Annotated[
        bool, typer.Option("--password-stdin", help="Read the password from stdin (for scripts).")
    ] = False,
    no_password: Annotated[
        bool, typer.Option("--no-password", help="No login; the user works through API tokens.")
    ] = False,
) -> None:
    """Add a user (asks for a password unless --no-password or --password-stdin)."""
    from hindsight.web.auth import create_user

    password = None if no_password else _read_password(password_stdin)
    user_id = create_user(get_cli_ledger().store, name, role=role, password=password)
    console.print(f"added {name} ({role}) as {user_id}")


@users_app.command("password")
def password(
    name: Annotated[str, typer.Argument(help="The user's login name.")],
    password_stdin: Annotated[
        bool, typer.Option("--password-stdin", help="Read the password from stdin.")
    ] = False,
) -> None:
    """Set or replace a user's password."""
    from hindsight.web.auth import set_password

    set_password(get_cli_ledger().store, name, _read_password(password_stdin))
    console.print(f"password of {name} changed")


@users_app.command("token")
def token(
    name: Annotated[str, typer.Argument(help="The user the token acts as.")],
    label: Annotated[str, typer.Option("--label", help="What the token is for.")] = "cli",
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")] = False,
) -> None:
    """Create an API token (printed once; only its hash is stored)."""
    from hindsight.web.auth import create_token

    secret = create_token(get_cli_ledger().store, name, label)
    if as_json:
        print_json({"user": name, "label": label, "token": secret})
        return
    console.print(f"token for {name} ({label}); it is shown only now:")
    console.out(secret)


@users_app.command("list")
def list_users(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")] = False,
) -> None:
    """List users and their roles."""
    rows = get_cli_ledger().store.list_users()
    if as_json:
        print_json(rows)
        return
    t = table("Users")
    for col in ("Name", "Role", "Disabled", "Id"):
        t.add_column(col)
    for r in rows:
        t.add_row(r["name"], r["role"], "yes" if r["disabled"] else "", r["id"])
    console.print(t)


def register(app: typer.Typer) -> None:
    app.command("server")(server)
    app.add_typer(users_app, name="users")
