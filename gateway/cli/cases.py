"""``gateway demo`` (the worked example against a running gateway) and ``gateway retention``."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import httpx
import typer

from gateway.app import build_command_context
from gateway.cli.app import app, console, fail, open_current_database
from gateway.clock import SystemClock
from gateway.demo import AGREEMENT, PRINCIPALS, Demo, DemoFailed
from gateway.identity import service
from gateway.identity.service import CLI_ACTOR
from gateway.models.partners import Principal
from gateway.workflow import retention

retention_app = typer.Typer(help="Retention of case records and keys.", no_args_is_help=True)
app.add_typer(retention_app, name="retention")


@app.command()
def demo(
    url: str = typer.Option("http://127.0.0.1:8080", help="the running gateway"),
) -> None:
    """Walk the brief's example case through all seven steps, then one research release.

    Mints short-lived tokens for the demo principals (needs the demo partners of
    ``gateway init`` in development mode) and revokes them afterwards.
    """
    settings, database = open_current_database()
    try:
        agreement = build_command_context(settings, db=database).agreements.get(AGREEMENT)
    except BaseException:
        database.dispose()
        raise
    if agreement is None:
        database.dispose()
        fail(f"the active policy version has no research agreement {AGREEMENT}")
    clock = SystemClock()
    minted: dict[str, str] = {}
    token_ids: list[str] = []
    with database.write() as session:
        missing = [p for p in PRINCIPALS if session.get(Principal, p) is None]
        if missing:
            fail(
                f"demo principal {missing[0]} does not exist; run `gateway init` in "
                "development mode on a fresh database first"
            )
        for principal in PRINCIPALS:
            new, _row = service.issue_token(
                session, clock, CLI_ACTOR, principal, timedelta(hours=1)
            )
            minted[principal] = new.plaintext
            token_ids.append(new.token_id)
    try:
        with httpx.Client(base_url=url, timeout=30) as client:
            try:
                client.get("/readyz").raise_for_status()
            except httpx.HTTPError as exc:
                fail(f"no ready gateway at {url} ({type(exc).__name__}); start `gateway serve`")

            def request(method: str, path: str, **kwargs: Any) -> httpx.Response:
                return client.request(method, path, **kwargs)

            demo = Demo(request, minted, console)
            case_id = demo.run()
            bundle = demo.run_research(agreement, settings.data_dir / "demo-downloads")
        console.print(f"\ncase {case_id} went through all seven steps")
        console.print(f"research release verified and saved as {bundle}")
    except DemoFailed as exc:
        fail(f"the demo stopped: {exc}")
    finally:
        with database.write() as session:
            for token_id in token_ids:
                service.revoke_token(session, clock, CLI_ACTOR, token_id)
        database.dispose()


@retention_app.command("run")
def run_retention() -> None:
    """Delete records whose retention ended; destroy the keys of closed cases that are due."""
    settings, database = open_current_database()
    try:
        ctx = build_command_context(settings, db=database)
        report = retention.run(ctx, CLI_ACTOR, case_retention_days=settings.case_retention_days)
    finally:
        database.dispose()
    for case_id, ids in sorted(report.records.items()):
        console.print(f"case {case_id}: deleted {len(ids)} record(s): {', '.join(ids)}")
    for case_id in report.shredded_cases:
        console.print(f"case {case_id}: key destroyed, documents deleted (crypto-shredded)")
    console.print(
        f"retention: {report.record_count} record(s) deleted, "
        f"{len(report.shredded_cases)} case key(s) destroyed"
    )
