"""Two partners, two real identity providers: the RIEC's and gemeente-smallingerland's.

The gateway's clock is set to the real time here, since the providers sign tokens with
the real time. Each module starts its two providers once; each test registers them
afresh with its own database (on SQLite and PostgreSQL).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest

from gateway.clock import FixedClock
from gateway.identity import service
from gateway.identity.service import CLI_ACTOR
from gateway.vocabulary import Role
from tests.conftest import Gateway
from tests.oidc.idp import ACR_SUBSTANTIAL, Idp, start_idp
from tests.workbench.helpers import add_officer

RIEC = "riec-noord-nederland"
GEMEENTE = "gemeente-smallingerland"
RIEC_OPERATOR = f"{RIEC}.operator"
GEMEENTE_OPERATOR = f"{GEMEENTE}.operator"
RIEC_PO = f"{RIEC}.privacy-officer"
RIEC_PO_2 = f"{RIEC}.privacy-officer-2"
GEMEENTE_PO = f"{GEMEENTE}.privacy-officer"
CALLBACK = "https://testserver/workbench/oidc/callback"
SIGN_IN = "https://testserver/workbench/sign-in"


@pytest.fixture
def clock() -> FixedClock:
    """A clock at the real time (whole seconds), so providers' tokens are current."""
    return FixedClock(datetime.now(UTC).replace(microsecond=0))


@dataclass
class Idps:
    """The RIEC's and the gemeente's providers."""

    riec: Idp
    gemeente: Idp


@pytest.fixture(scope="module")
def idps(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Idps]:
    """Start the two providers for the module."""
    folder = tmp_path_factory.mktemp("idps")
    with (
        start_idp(folder, "riec", [CALLBACK], [SIGN_IN]) as riec,
        start_idp(folder, "gemeente", [CALLBACK], [SIGN_IN]) as gemeente,
    ):
        yield Idps(riec, gemeente)


def provider_body(idp: Idp, *, acr: list[str] | None = None) -> dict[str, object]:
    """Return the registration body of a provider (client_secret_basic)."""
    return {
        "issuer": idp.issuer,
        "client_id": idp.client_id,
        "client_credential": idp.client_secret,
        "acr_values": [ACR_SUBSTANTIAL] if acr is None else acr,
        "api_audience": idp.audience,
    }


@dataclass
class World:
    """A gateway with both providers registered and people linked."""

    gateway: Gateway
    idps: Idps

    def link(self, operator: str, principal_id: str, subject: str) -> None:
        """Link a principal to a person as the partner's operator (must succeed)."""
        response = self.gateway.client.post(
            f"/v1/principals/{principal_id}/oidc-person",
            json={"subject": subject},
            headers=self.gateway.auth(operator),
        )
        assert response.status_code == 201, response.text


@pytest.fixture
def world(gateway: Gateway, idps: Idps) -> World:
    """Register both providers (by the RIEC's operator), a gemeente operator, and link:
    rita -> the RIEC's privacy officer and a second one; gerda -> the gemeente's."""
    with gateway.database.write() as session:
        service.add_principal(
            session,
            gateway.clock,
            CLI_ACTOR,
            partner_id=GEMEENTE,
            role=Role.OPERATOR,
            label="gemeente operator (test)",
            principal_id=GEMEENTE_OPERATOR,
        )
        new, _ = service.issue_token(
            session, gateway.clock, CLI_ACTOR, GEMEENTE_OPERATOR, timedelta(days=1)
        )
    gateway.tokens[GEMEENTE_OPERATOR] = new.plaintext
    gateway.tokens[RIEC_PO_2] = add_officer(gateway.database, gateway.clock)
    for partner, idp in ((RIEC, idps.riec), (GEMEENTE, idps.gemeente)):
        response = gateway.client.put(
            f"/v1/partners/{partner}/oidc-provider",
            json=provider_body(idp),
            headers=gateway.auth(RIEC_OPERATOR),
        )
        assert response.status_code == 200, response.text
    world = World(gateway, idps)
    world.link(RIEC_OPERATOR, RIEC_PO, "rita")
    world.link(RIEC_OPERATOR, RIEC_PO_2, "rita")
    world.link(GEMEENTE_OPERATOR, GEMEENTE_PO, "gerda")
    return world
