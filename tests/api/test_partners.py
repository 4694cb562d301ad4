"""The partner registry over HTTP, and the audit entry each change leaves."""

from __future__ import annotations

from sqlmodel import func, select

from gateway.models.audit import AuditEntry, AuditTreeHead
from tests.api.test_auth import OPERATOR, assert_problem
from tests.conftest import Gateway
from tests.identity.helpers import operator_of

NEW_PARTNER = {
    "id": "gemeente-heerenveen",
    "kind": "gemeente",
    "name": "Gemeente Heerenveen",
    "identifier_type": "oin",
    "identifier": "00000099000009990000",
}


def audit_size(gateway: Gateway) -> int:
    with gateway.database.read() as session:
        head = session.get(AuditTreeHead, 1)
        count = session.exec(select(func.count()).select_from(AuditEntry)).one()
    assert head is not None
    assert head.size == count
    return count


def test_operator_registers_partner_and_enrols_its_first_principal(gateway: Gateway) -> None:
    before = audit_size(gateway)
    headers = gateway.auth(OPERATOR)
    created = gateway.client.post("/v1/partners", json=NEW_PARTNER, headers=headers)
    assert created.status_code == 201, created.text
    assert created.json()["active"] is True
    assert created.json()["created_at"].endswith(("Z", "+00:00"))  # always UTC, also on SQLite

    listed = gateway.client.get("/v1/partners", headers=headers).json()
    assert NEW_PARTNER["id"] in {p["id"] for p in listed}

    added = gateway.client.post(
        "/v1/partners/gemeente-heerenveen/principals",
        json={"role": "partner-system", "label": "Zaaksysteem Heerenveen"},
        headers=headers,
    )
    assert added.status_code == 201, added.text
    # a new partner's first principal gets a one-time enrolment code, not a token
    assert "token" not in added.json()
    code = added.json()["enrolment"]["code"]
    # partner add, principal add, enrolment issue: three audit entries
    assert audit_size(gateway) == before + 3
    redeemed = gateway.client.post("/v1/enrolments", json={"code": code})
    assert redeemed.status_code == 201, redeemed.text
    token = redeemed.json()["token"]
    me = gateway.client.get("/v1/me", headers={"Authorization": f"Bearer {token}"})
    assert me.json()["partner_kind"] == "gemeente"
    assert audit_size(gateway) == before + 4  # the redemption


def test_duplicate_partner_is_409_and_changes_nothing(gateway: Gateway) -> None:
    headers = gateway.auth(OPERATOR)
    assert gateway.client.post("/v1/partners", json=NEW_PARTNER, headers=headers).status_code == 201
    before = audit_size(gateway)
    again = gateway.client.post("/v1/partners", json=NEW_PARTNER, headers=headers)
    assert_problem(again, 409, "conflict")
    same_oin = {**NEW_PARTNER, "id": "gemeente-andere"}
    assert_problem(
        gateway.client.post("/v1/partners", json=same_oin, headers=headers), 409, "conflict"
    )
    assert audit_size(gateway) == before


def test_unknown_kind_and_bad_identifier_are_422(gateway: Gateway) -> None:
    headers = gateway.auth(OPERATOR)
    response = gateway.client.post(
        "/v1/partners", json={**NEW_PARTNER, "kind": "gemeentee"}, headers=headers
    )
    body = assert_problem(response, 422, "invalid-input")
    # names the field and lists the known kinds; never echoes what was sent
    assert "unknown partner kind" in body["detail"] and body["field"] == "kind"
    assert "gemeente" in body["detail"] and "gemeentee" not in response.text
    body = assert_problem(
        gateway.client.post(
            "/v1/partners", json={**NEW_PARTNER, "identifier": "12345678"}, headers=headers
        ),
        422,
        "invalid-input",
    )
    assert body["field"] == "identifier"


def test_researcher_role_only_for_science_partners(gateway: Gateway) -> None:
    response = gateway.client.post(
        "/v1/partners/politie-noord-nederland/principals",
        json={"role": "researcher", "label": "x"},
        headers=operator_of(gateway, "politie-noord-nederland"),  # its own operator
    )
    assert_problem(response, 422, "invalid-input")


def test_unknown_partner_is_404(gateway: Gateway) -> None:
    assert_problem(
        gateway.client.get("/v1/partners/bestaat-niet", headers=gateway.auth(OPERATOR)),
        404,
        "not-found",
    )
