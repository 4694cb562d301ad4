"""``gateway logboek status|flush``: the lines waiting for partners' Logboeken."""

from __future__ import annotations

import typer
from rich.table import Table

from gateway.cli.app import app, console, fail, open_current_database
from gateway.clock import SystemClock
from gateway.logboek import outbox
from gateway.logboek.exporter import export_settings, flush

logboek_app = typer.Typer(
    help="Partners' Logboeken: lines waiting for them, and sending them now.",
    no_args_is_help=True,
)
app.add_typer(logboek_app, name="logboek")


@logboek_app.command("status")
def status() -> None:
    """Show, per partner, its endpoint and the lines waiting (and failing) for it."""
    _settings, database = open_current_database()
    with database.read() as session:
        rows = outbox.status(session)
    table = Table()
    for column in ("partner", "endpoint", "pending", "failed", "oldest", "next attempt", "error"):
        table.add_column(column, overflow="fold")
    for row in rows:
        table.add_row(
            row.partner_id,
            "(none)" if row.url is None else f"{row.url} ({row.protocol})",
            str(row.pending),
            str(row.failed),
            "" if row.oldest is None else f"{row.oldest:%Y-%m-%d %H:%M:%S}Z",
            "" if row.next_attempt_at is None else f"{row.next_attempt_at:%Y-%m-%d %H:%M:%S}Z",
            row.last_error or "",
        )
    console.print(table)


@logboek_app.command("flush")
def flush_() -> None:
    """Send every line that is due now; exit non-zero if a Logboek did not acknowledge."""
    settings, database = open_current_database()
    try:
        result = flush(database, SystemClock(), export_settings(settings))
    finally:
        database.dispose()
    for partner, count in sorted(result.delivered.items()):
        console.print(f"{partner}: {count} line(s) delivered")
    if result.failed:
        fail(
            "not delivered: "
            + "; ".join(f"{partner}: {why}" for partner, why in sorted(result.failed.items()))
        )
