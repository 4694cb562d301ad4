"""Registering a partner's provider and linking its people: who may, and what is stored."""

from __future__ import annotations

import json

import pytest
from joserfc.jwk import RSAKey
from sqlmodel import col, select

from gateway.errors import InvalidInputError
from gateway.identity.oidc import check_issuer, person_key_of
from gateway.models.audit import AuditEntry
from gateway.models.oidc import OidcPerson, OidcProvider
from gateway.models.partners import Principal
from gateway.vocabulary import Role
from tests.oidc.conftest import (
    GEMEENTE,
    GEMEENTE_OPERATOR,
    GEMEENTE_PO,
    RIEC,
    RIEC_OPERATOR,
    World,
    provider_body,
)
from tests.workbench.helpers import app_ctx


def last_event_type(world: World) -> str:
    with world.gateway.database.read() as session:
        row = session.exec(select(AuditEntry).order_by(col(AuditEntry.leaf_index).desc())).first()
    assert row is not None
    return row.event_type


def put_provider(world: World, partner: str, body: dict[str, object], operator: str) -> object:
    return world.gateway.client.put(
        f"/v1/partners/{partner}/oidc-provider", json=body, headers=world.gateway.auth(operator)
    )


def test_only_the_operating_riecs_operator_registers_a_partners_provider(world: World) -> None:
    body = provider_body(world.idps.gemeente)
    response = world.gateway.client.put(
        f"/v1/partners/{GEMEENTE}/oidc-provider",
        json=body,
        headers=world.gateway.auth(GEMEENTE_OPERATOR),
    )
    assert response.status_code == 403
    assert response.json()["type"].endswith(":operating-riec-only")
    assert last_event_type(world) == "admin:registry:refuse"
    officer = world.gateway.client.put(
        f"/v1/partners/{GEMEENTE}/oidc-provider",
        json=body,
        headers=world.gateway.auth(GEMEENTE_PO),
    )
    assert officer.status_code == 403


def test_the_client_secret_is_stored_sealed_and_never_returned(world: World) -> None:
    body = provider_body(world.idps.gemeente)
    response = world.gateway.client.put(
        f"/v1/partners/{GEMEENTE}/oidc-provider",
        json=body,
        headers=world.gateway.auth(RIEC_OPERATOR),
    )
    assert response.status_code == 200
    assert world.idps.gemeente.client_secret not in response.text
    assert response.json()["acr_values"] == ["urn:gateway:loa:substantial"]
    with world.gateway.database.read() as session:
        row = session.get(OidcProvider, GEMEENTE)
    assert row is not None
    assert world.idps.gemeente.client_secret.encode() not in row.client_credential_sealed
    assert last_event_type(world) == "admin:oidc-provider:set"


def test_one_issuer_serves_one_partner(world: World) -> None:
    response = world.gateway.client.put(
        "/v1/partners/politie-noord-nederland/oidc-provider",
        json=provider_body(world.idps.gemeente),
        headers=world.gateway.auth(RIEC_OPERATOR),
    )
    assert response.status_code == 409


def test_private_key_jwt_needs_a_private_jwk(world: World) -> None:
    body = provider_body(world.idps.gemeente) | {"client_auth": "private_key_jwt"}
    response = world.gateway.client.put(
        f"/v1/partners/{GEMEENTE}/oidc-provider",
        json=body,
        headers=world.gateway.auth(RIEC_OPERATOR),
    )
    assert response.status_code == 422
    public_only = RSAKey.generate_key(2048).as_dict(private=False)
    body["client_credential"] = json.dumps(public_only)
    response = world.gateway.client.put(
        f"/v1/partners/{GEMEENTE}/oidc-provider",
        json=body,
        headers=world.gateway.auth(RIEC_OPERATOR),
    )
    assert response.status_code == 422
    body["client_credential"] = json.dumps(RSAKey.generate_key(2048).as_dict(private=True))
    response = world.gateway.client.put(
        f"/v1/partners/{GEMEENTE}/oidc-provider",
        json=body,
        headers=world.gateway.auth(RIEC_OPERATOR),
    )
    assert response.status_code == 200
    assert response.json()["client_auth"] == "private_key_jwt"


@pytest.mark.parametrize(
    "issuer",
    ["http://idp.example", "https://idp.example/", "https://idp.example?x=1", "idp.example"],
)
def test_outside_development_an_issuer_is_an_https_url_as_the_provider_names_itself(
    issuer: str,
) -> None:
    with pytest.raises(InvalidInputError):
        check_issuer(issuer, allow_http=False)
    assert check_issuer("https://idp.example/realms/x", allow_http=False)


def test_a_partners_own_operator_links_its_people_and_only_its_own(world: World) -> None:
    client, auth = world.gateway.client, world.gateway.auth
    riec_links_gemeente = client.post(
        f"/v1/principals/{GEMEENTE}.analyst/oidc-person",
        json={"subject": "gijs"},
        headers=auth(RIEC_OPERATOR),
    )
    assert riec_links_gemeente.status_code == 403
    assert riec_links_gemeente.json()["type"].endswith(":foreign-partner")
    assert last_event_type(world) == "admin:registry:refuse"
    again = client.post(
        f"/v1/principals/{GEMEENTE_PO}/oidc-person",
        json={"subject": "someone"},
        headers=auth(GEMEENTE_OPERATOR),
    )
    assert again.status_code == 409
    system = client.post(
        f"/v1/principals/{GEMEENTE}.partner-system/oidc-person",
        json={"subject": "gijs"},
        headers=auth(GEMEENTE_OPERATOR),
    )
    assert system.status_code == 422
    ok = client.post(
        f"/v1/principals/{GEMEENTE}.analyst/oidc-person",
        json={"subject": "gijs"},
        headers=auth(GEMEENTE_OPERATOR),
    )
    assert ok.status_code == 201 and "gijs" not in ok.text
    assert last_event_type(world) == "admin:oidc-person:link"


def test_the_person_is_kept_only_as_a_keyed_hash_that_four_eyes_compares(world: World) -> None:
    keyer = app_ctx(world.gateway.client).keys.person_key
    expected = person_key_of(world.idps.gemeente.issuer, "gerda", keyer)
    with world.gateway.database.read() as session:
        link = session.get(OidcPerson, GEMEENTE_PO)
        principal = session.get(Principal, GEMEENTE_PO)
    assert link is not None and principal is not None
    assert link.person_key == expected == principal.person_key
    assert "gerda" not in link.person_key
    # the same sub at another issuer is another person
    assert person_key_of(world.idps.riec.issuer, "gerda", keyer) != expected
    assert Role(principal.role) is Role.PRIVACY_OFFICER


def test_a_partner_without_a_provider_links_nobody(world: World) -> None:
    response = world.gateway.client.post(
        f"/v1/principals/{RIEC}.analyst/oidc-person".replace(RIEC, "politie-noord-nederland"),
        json={"subject": "piet"},
        headers=world.gateway.auth(RIEC_OPERATOR),
    )
    assert response.status_code == 403  # another partner's principal, before anything else
