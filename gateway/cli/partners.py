"""``gateway partners add|list|revoke|principal|token|enrol|logboek``: the registry by CLI.

The CLI runs on the gateway's host with its database and key ring: it is the installer
and the root of trust, so it may add principals to any partner and print their tokens
(to bootstrap a partner's first operator, say). Every change is audited as
``system:cli``. Over HTTP, operators have far less authority (``identity.authority``).
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import typer
from rich.table import Table

from gateway.cli.app import app, console, fail, open_current_database
from gateway.clock import SystemClock
from gateway.config import Mode
from gateway.identity import service
from gateway.identity.people import person_key
from gateway.identity.service import CLI_ACTOR
from gateway.keys import KeyRing
from gateway.logboek import endpoints
from gateway.logboek.endpoints import LogboekProtocol
from gateway.policy import versions
from gateway.vocabulary import IdentifierType, Role
from gateway.yamlsource import SourceError

partners_app = typer.Typer(help="Manage partners, principals and tokens.", no_args_is_help=True)
app.add_typer(partners_app, name="partners")


@partners_app.command("add")
def add(
    partner_id: str = typer.Option(..., "--id", help="short id, e.g. gemeente-leeuwarden"),
    kind: str = typer.Option(..., help="partner kind from the active policy version's vocabulary"),
    name: str = typer.Option(..., help="organisation name"),
    oin: str | None = typer.Option(None, help="20-digit OIN"),
    kvk: str | None = typer.Option(None, help="8-digit KvK number"),
) -> None:
    """Register a partner organisation."""
    if (oin is None) == (kvk is None):
        fail("give exactly one of --oin or --kvk")
    _settings, database = open_current_database()
    id_type, identifier = (IdentifierType.OIN, oin) if oin else (IdentifierType.KVK, kvk)
    assert identifier is not None
    try:
        try:
            known_kinds = versions.load_active(database).compiled.vocabulary.partner_kinds
        except SourceError as exc:
            fail(f"the active policy version does not load here ({len(exc.problems)} problem(s))")
        with database.write() as session:
            partner = service.add_partner(
                session,
                SystemClock(),
                CLI_ACTOR,
                partner_id=partner_id,
                kind=kind,
                name=name,
                identifier_type=id_type,
                identifier=identifier,
                known_kinds=known_kinds,
            )
    finally:
        database.dispose()
    console.print(f"added partner {partner.id} ({partner.kind})")


@partners_app.command("list")
def list_() -> None:
    """List partners and whether they are active."""
    _settings, database = open_current_database()
    table = Table()
    for column in ("id", "kind", "name", "identifier", "active", "demo"):
        table.add_column(column, overflow="fold")
    with database.read() as session:
        for p in service.list_partners(session):
            table.add_row(
                p.id,
                p.kind,
                p.name,
                f"{p.identifier_type.upper()} {p.identifier}",
                "yes" if p.active else "revoked",
                "yes" if p.is_demo else "",
            )
    console.print(table)


@partners_app.command("revoke")
def revoke(partner_id: str = typer.Argument(..., help="partner id")) -> None:
    """Deactivate a partner and revoke all its tokens."""
    _settings, database = open_current_database()
    with database.write() as session:
        service.revoke_partner(session, SystemClock(), CLI_ACTOR, partner_id)
    console.print(f"revoked partner {partner_id} and its tokens")


@partners_app.command("principal")
def add_principal(
    partner_id: str = typer.Argument(..., help="partner id"),
    role: Role = typer.Option(..., help="the principal's single role"),
    label: str = typer.Option(..., help="who or what this is, e.g. 'Zaaksysteem'"),
    person: str | None = typer.Option(
        None,
        help="e-mail or employee number of the person (required for a privacy officer); "
        "only its keyed hash is stored",
    ),
) -> None:
    """Add a principal to any partner and print its first token once (installer only)."""
    settings, database = open_current_database()
    clock = SystemClock()
    key = person_key(person, KeyRing.open(settings).person_key) if person else None
    with database.write() as session:
        principal = service.add_principal(
            session,
            clock,
            CLI_ACTOR,
            partner_id=partner_id,
            role=role,
            label=label,
            person_key=key,
        )
        new, row = service.issue_token(
            session, clock, CLI_ACTOR, principal.id, timedelta(days=settings.token_ttl_days)
        )
    console.print(f"principal {principal.id}")
    console.print(
        f"token (shown once, expires {row.expires_at:%Y-%m-%d}): {new.plaintext}", soft_wrap=True
    )


@partners_app.command("person")
def name_person(
    principal_id: str = typer.Argument(..., help="principal id"),
    person: str = typer.Option(..., help="e-mail or employee number of the person"),
) -> None:
    """Name the person of a principal made before person identifiers (once; keyed hash only)."""
    settings, database = open_current_database()
    key = person_key(person, KeyRing.open(settings).person_key)
    with database.write() as session:
        service.name_person(session, SystemClock(), CLI_ACTOR, principal_id, key)
    console.print(f"principal {principal_id} now names its person")


@partners_app.command("token")
def token(principal_id: str = typer.Argument(..., help="principal id")) -> None:
    """Issue a new token for a principal and print it once."""
    settings, database = open_current_database()
    with database.write() as session:
        new, row = service.issue_token(
            session,
            SystemClock(),
            CLI_ACTOR,
            principal_id,
            timedelta(days=settings.token_ttl_days),
        )
    console.print(
        f"token (shown once, expires {row.expires_at:%Y-%m-%d}): {new.plaintext}", soft_wrap=True
    )


@partners_app.command("enrol")
def enrol(principal_id: str = typer.Argument(..., help="principal id")) -> None:
    """Print a one-time enrolment code for a principal, to hand to its person or system."""
    settings, database = open_current_database()
    with database.write() as session:
        new, row = service.issue_enrolment(
            session,
            SystemClock(),
            CLI_ACTOR,
            principal_id,
            timedelta(hours=settings.enrolment_ttl_hours),
        )
    console.print(
        f"enrolment code (shown once, single use, expires {row.expires_at:%Y-%m-%d %H:%M} UTC; "
        f"redeem with POST /v1/enrolments): {new.plaintext}",
        soft_wrap=True,
    )


@partners_app.command("revoke-token")
def revoke_token(token_id: str = typer.Argument(..., help="token id (the part after gw_)")) -> None:
    """Revoke one token at once."""
    _settings, database = open_current_database()
    with database.write() as session:
        service.revoke_token(session, SystemClock(), CLI_ACTOR, token_id)
    console.print(f"revoked token {token_id}")


@partners_app.command("logboek")
def logboek(
    partner_id: str = typer.Argument(..., help="partner id"),
    endpoint: str | None = typer.Option(
        None, help="the partner's OTLP receiver, e.g. https://logboek.example/v1/traces"
    ),
    protocol: LogboekProtocol = typer.Option(LogboekProtocol.HTTP_PROTOBUF, help="OTLP transport"),
    ca_file: Path | None = typer.Option(None, help="CA bundle to trust for the endpoint"),
    client_cert: Path | None = typer.Option(None, help="client certificate for mutual TLS"),
    client_key: Path | None = typer.Option(None, help="its private key"),
    remove: bool = typer.Option(False, "--remove", help="stop queueing lines for this partner"),
) -> None:
    """Set (or --remove) the partner's Logboek endpoint: lines about it are sent there."""
    if remove == (endpoint is not None):
        fail("give exactly one of --endpoint or --remove")
    settings, database = open_current_database()
    with database.write() as session:
        if endpoint is None:
            endpoints.remove_endpoint(session, SystemClock(), CLI_ACTOR, partner_id)
        else:
            spec = endpoints.EndpointSpec(endpoint, protocol, ca_file, client_cert, client_key)
            row = endpoints.set_endpoint(
                session,
                SystemClock(),
                CLI_ACTOR,
                partner_id,
                spec,
                allow_http=settings.mode is Mode.DEVELOPMENT,
            )
    if endpoint is None:
        console.print(f"partner {partner_id} has no Logboek endpoint now")
    else:
        console.print(f"lines about {partner_id} go to {row.url} ({row.protocol})")
