"""The root Typer app, shared helpers, and the error boundary of every command.

Light on purpose: the settings, the database and the key ring are imported by the
helpers that open them, so ``gateway witness ...`` (which uses none) starts quickly.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, NoReturn

import click
import typer
from pydantic import ValidationError
from rich.console import Console

from gateway.errors import GatewayError, PreflightError

if TYPE_CHECKING:
    from gateway.config import Settings
    from gateway.db import Database

app = typer.Typer(
    name="gateway",
    help="RIEC-LIEC data-sharing gateway.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
# Piped output (scripts, CI logs) gets wide lines instead of folded table cells.
console = Console(width=None if sys.stdout.isatty() else 200)
err_console = Console(stderr=True, width=None if sys.stderr.isatty() else 400)


class CliError(Exception):
    """A command failed for a reason the user can act on; the message is shown as is."""


def fail(message: str) -> NoReturn:
    """Stop the command with ``message``."""
    raise CliError(message)


def load_settings() -> Settings:
    """Return the settings from the environment; raise CliError with a readable reason."""
    from gateway.config import Settings

    try:
        return Settings()
    except ValidationError as exc:
        raise CliError(settings_error_message(exc)) from exc


def settings_error_message(exc: ValidationError) -> str:
    """Return one line naming each bad ``GATEWAY_*`` variable and why it is refused."""
    parts = []
    for err in exc.errors():
        msg = str(err.get("msg", "")).removeprefix("Value error, ")
        loc = err.get("loc", ())
        parts.append(f"GATEWAY_{str(loc[0]).upper()}: {msg}" if loc else msg)
    return "; ".join(parts)


def open_database(settings: Settings) -> Database:
    """Return the configured database (not yet checked for schema)."""
    from gateway.db import Database

    return Database(settings.resolved_database_url)


def open_current_database() -> tuple[Settings, Database]:
    """Return settings and a database whose schema is current, or fail with the reason.

    Also unlocks the key ring, so a wrong master key stops every command with one line.
    """
    from gateway.db import ensure_schema_current
    from gateway.keys.ring import KeyRing

    settings = load_settings()
    database = open_database(settings)
    ensure_schema_current(database)
    KeyRing.open(settings)
    return settings, database


# Typer 0.2x ships its own copy of click, whose exceptions (missing or unknown options,
# bad values) derive from typer.TyperException, not from click.ClickException.
_USAGE_ERRORS: tuple[type[Exception], ...] = (
    click.ClickException,
    getattr(typer, "TyperException", click.ClickException),
)


def run(argv: list[str]) -> int:
    """Run the CLI with ``argv``; return the exit code instead of exiting.

    Every failure is one line on stderr starting ``error:`` and a non-zero exit code.
    """
    try:
        result = app(args=argv, standalone_mode=False)
    except (CliError, GatewayError, PreflightError) as exc:
        err_console.print(f"error: {exc}", markup=False, highlight=False, soft_wrap=True)
        return 1
    except typer.Abort:
        err_console.print("aborted", markup=False)
        return 1
    except _USAGE_ERRORS as exc:
        context = getattr(exc, "ctx", None)
        hint = f" (see `{context.command_path} --help`)" if context is not None else ""
        message = " ".join(str(getattr(exc, "format_message", exc.__str__)()).split())
        message = message or "a command is needed; the help above lists them"
        err_console.print(f"error: {message}{hint}", markup=False, highlight=False, soft_wrap=True)
        code = getattr(exc, "exit_code", 2)
        return code if isinstance(code, int) and code else 2
    return result if isinstance(result, int) else 0
