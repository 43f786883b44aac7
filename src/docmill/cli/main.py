"""The ``docmill`` command. Thin: each module in ``docmill.cli`` adds its commands via ``register(app)``.

The only error handler: ``DocmillError`` → one line on stderr and its ``exit_code``. Exit status:
0 done, 1 a ``DocmillError``, 2 a ``ConfigError`` (bad options or settings), 130 interrupted (Ctrl-C,
SIGTERM or SIGHUP, at any moment: see ``docmill._signals``).
"""

from __future__ import annotations

import importlib
import logging
import pkgutil
import sys

import typer

from docmill.errors import DocmillError

app = typer.Typer(
    name="docmill",
    help="Extract, de-duplicate and classify large document collections in parallel, crash-safely.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _register_commands() -> None:
    import docmill.cli as package

    for info in sorted(pkgutil.iter_modules(package.__path__), key=lambda m: m.name):
        if info.name.startswith("_") or info.name == "main":
            continue
        module = importlib.import_module(f"docmill.cli.{info.name}")
        register = getattr(module, "register", None)
        if register is not None:
            register(app)


@app.callback()
def _root() -> None:
    """Extract, de-duplicate and classify large document collections in parallel, crash-safely."""


@app.command()
def version() -> None:
    """Print docmill's version."""
    from docmill import __version__

    typer.echo(f"docmill {__version__}")


_register_commands()


class _Warnings(logging.Handler):
    """docmill's warnings (a capped worker count, …) as ``docmill: warning: …`` lines on stderr."""

    def emit(self, record: logging.LogRecord) -> None:
        print(f"docmill: {record.levelname.lower()}: {record.getMessage()}", file=sys.stderr)  # noqa: T201


def _show_warnings() -> None:
    logger = logging.getLogger("docmill")
    if not any(isinstance(h, _Warnings) for h in logger.handlers):
        logger.addHandler(_Warnings(logging.WARNING))
        logger.setLevel(logging.WARNING)


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``docmill`` and ``python -m docmill``; returns the exit code."""
    _show_warnings()
    try:
        app(args=argv, prog_name="docmill")
    except SystemExit as exc:  # typer's standalone mode always exits
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    except DocmillError as exc:
        exc.show()
        return exc.exit_code
    except KeyboardInterrupt:
        print("docmill: interrupted", file=sys.stderr)  # noqa: T201
        return 130
    return 0


def run_main() -> None:
    """The ``docmill`` process: ``main()`` with exit status 130 for any interrupted ending (``_signals``)."""
    from docmill._signals import INTERRUPTED, ProcessExit

    process = ProcessExit.install()
    try:
        code = main()
    except KeyboardInterrupt:  # a signal between the command's end and main's return
        code = INTERRUPTED
    raise SystemExit(process.status(code))
