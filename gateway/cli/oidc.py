"""``gateway partners oidc-provider|oidc-person``: partners' identity providers from the host.

The installer's counterpart of ``PUT /v1/partners/{id}/oidc-provider`` and ``POST
/v1/principals/{id}/oidc-person``, audited as ``system:cli``. The client secret is read
from an environment variable (never a command-line argument, which ``ps`` shows), a
private JWK for ``private_key_jwt`` from a file.
"""

from __future__ import annotations

import os
from pathlib import Path

import typer

from gateway.cli.app import console, fail, open_current_database
from gateway.cli.partners import partners_app
from gateway.clock import SystemClock
from gateway.config import Mode
from gateway.identity import oidc, service
from gateway.identity.service import CLI_ACTOR
from gateway.keys import KeyRing

SECRET_VARIABLE = "GATEWAY_OIDC_CLIENT_SECRET"  # noqa: S105  (a variable's name)


@partners_app.command("oidc-provider")
def set_provider(
    partner_id: str = typer.Argument(..., help="partner id"),
    issuer: str = typer.Option(..., help="the provider's issuer URL, exactly as it names itself"),
    client_id: str = typer.Option(..., help="the gateway's client id at the provider"),
    private_jwk_file: Path | None = typer.Option(
        None, help="private JWK file: authenticate with private_key_jwt instead of a secret"
    ),
    acr: list[str] = typer.Option([], help="an acr value a sign-in must carry (repeatable)"),
    api_audience: str | None = typer.Option(
        None, help="aud of the provider's access tokens for this gateway (enables API access)"
    ),
) -> None:
    """Register or replace a partner's OpenID Connect provider.

    The client secret comes from $GATEWAY_OIDC_CLIENT_SECRET (or give --private-jwk-file).
    """
    settings, database = open_current_database()
    if private_jwk_file is not None:
        try:
            credential = private_jwk_file.read_text(encoding="utf-8")
        except OSError:
            fail(f"cannot read {private_jwk_file}")
        auth = oidc.OidcClientAuth.PRIVATE_KEY_JWT
    else:
        credential = os.environ.get(SECRET_VARIABLE, "")
        if not credential:
            fail(f"set {SECRET_VARIABLE} to the client secret, or give --private-jwk-file")
        auth = oidc.OidcClientAuth.CLIENT_SECRET_BASIC
    spec = oidc.ProviderSpec(
        issuer=issuer,
        client_id=client_id,
        client_auth=auth,
        credential=credential,
        acr_values=tuple(acr),
        api_audience=api_audience,
    )
    with database.write() as session:
        oidc.store_provider(
            session,
            SystemClock(),
            CLI_ACTOR,
            KeyRing.open(settings),
            partner_id,
            spec,
            allow_http=settings.mode is Mode.DEVELOPMENT,
        )
    console.print(f"partner {partner_id} signs people in through {issuer}")


@partners_app.command("oidc-person")
def link_person(
    principal_id: str = typer.Argument(..., help="principal id"),
    subject: str = typer.Option(..., help="the person's subject (sub) at the partner's provider"),
) -> None:
    """Link a principal to a person of its partner's provider (their sub is not stored)."""
    settings, database = open_current_database()
    keyer = KeyRing.open(settings).person_key
    with database.write() as session:
        principal = service.get_principal(session, principal_id)
        oidc.store_link(session, SystemClock(), CLI_ACTOR, keyer, principal, subject)
    console.print(f"principal {principal_id} is now that person at its partner's provider")
