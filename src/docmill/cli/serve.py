"""``docmill serve``: the live dashboard and read-only REST API over a journal."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from docmill.errors import ConfigError, MissingDependencyError


def serve(
    db: Annotated[
        str, typer.Option("--db", help="Journal: a SQLite file or a postgresql:// URL.")
    ] = "docmill.db",
    host: Annotated[str, typer.Option(help="Address to listen on; beyond loopback a token is required.")] = (
        "127.0.0.1"
    ),
    port: Annotated[int, typer.Option(min=0, max=65535, help="Port to listen on.")] = 8765,
    token: Annotated[
        str | None,
        typer.Option(
            envvar="DOCMILL_SERVE_TOKEN", show_envvar=True, help="Require this token on every request."
        ),
    ] = None,
    allow_host: Annotated[
        list[str] | None,
        typer.Option("--allow-host", help="Another host name browsers may use (repeatable)."),
    ] = None,
) -> None:
    """Serve the live dashboard and REST API over a journal (read-only)."""
    if "://" not in db and not Path(db).is_file():
        raise ConfigError(f"no journal at {db}; run `docmill run` first or pass --db")
    try:
        from docmill.serve.app import serve as run_server
    except ImportError as exc:
        raise MissingDependencyError(exc.name or "starlette", "serve") from exc
    shown = f"http://{host if ':' not in host else f'[{host}]'}:{port}/"
    note = f"docmill dashboard on {shown}{'?token=…' if token else ''} (journal: {_display(db)})"
    run_server(
        db, host=host, port=port, token=token, extra_hosts=allow_host or (), ready=lambda: typer.echo(note)
    )


def _display(db: str) -> str:
    from docmill.serve.security import redact_text

    return redact_text(db)


def register(app: typer.Typer) -> None:
    app.command("serve")(serve)
