"""Issue 12: issuing credentials is not impersonation.

Operators manage principals and credentials of their own partner only; the operating
RIEC registers partners and enrols a new partner's first principal with a one-time
enrolment code; no operator ever holds a token that reads records. Refusals are 403
problems that leave an audit entry although the request fails.
"""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

from sqlmodel import col, select

from gateway.models.audit import AuditEntry
from gateway.models.partners import ApiToken, EnrolmentCode, Principal
from tests.api.test_auth import OPERATOR, assert_problem
from tests.conftest import Gateway
from tests.identity.helpers import operator_of

POLITIE = "politie-noord-nederland"
POLITIE_ANALYST = f"{POLITIE}.analyst"
GEMEENTE = "gemeente-smallingerland"
NEW_PARTNER = {
    "id": "gemeente-heerenveen",
    "kind": "gemeente",
    "name": "Gemeente Heerenveen",
    "identifier_type": "oin",
    "identifier": "00000099000009990000",
}


def last_event(gateway: Gateway) -> dict[str, Any]:
    with gateway.database.read() as session:
        entry = session.exec(select(AuditEntry).order_by(col(AuditEntry.leaf_index).desc())).first()
    assert entry is not None
    leaf: dict[str, Any] = json.loads(entry.leaf)
    return {"type": entry.event_type, "actor": entry.actor_principal_id, "leaf": leaf}


def tokens_of(gateway: Gateway, principal_id: str) -> int:
    with gateway.database.read() as session:
        return len(
            session.exec(select(ApiToken).where(ApiToken.principal_id == principal_id)).all()
        )


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def register_new_partner(gateway: Gateway) -> None:
    created = gateway.client.post("/v1/partners", json=NEW_PARTNER, headers=gateway.auth(OPERATOR))
    assert created.status_code == 201, created.text


def enrol_first_principal(gateway: Gateway, role: str = "operator") -> dict[str, Any]:
    register_new_partner(gateway)
    response = gateway.client.post(
        f"/v1/partners/{NEW_PARTNER['id']}/principals",
        json={"role": role, "label": "Beheerder Heerenveen", "person": "beheer@heerenveen.nl"},
        headers=gateway.auth(OPERATOR),
    )
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


# ----------------------------------------------------------------- minting for others


def test_operating_riec_operator_cannot_mint_a_token_for_another_partners_analyst(
    gateway: Gateway,
) -> None:
    before = tokens_of(gateway, POLITIE_ANALYST)
    response = gateway.client.post(
        f"/v1/principals/{POLITIE_ANALYST}/tokens", headers=gateway.auth(OPERATOR)
    )
    body = assert_problem(response, 403, "foreign-partner")
    assert "gw_" not in response.text
    assert body["title"] == "Another partner's principals and credentials"
    assert tokens_of(gateway, POLITIE_ANALYST) == before
    event = last_event(gateway)
    assert event["type"] == "admin:registry:refuse"
    assert event["actor"] == OPERATOR
    assert event["leaf"]["refs"]["action"] == "token:issue"
    assert event["leaf"]["refs"]["principal"] == POLITIE_ANALYST


def test_another_partners_operator_cannot_mint_a_token_for_the_riecs_people(
    gateway: Gateway,
) -> None:
    politie_operator = operator_of(gateway, POLITIE)
    for principal in (
        "riec-noord-nederland.riec-analyst",
        "riec-noord-nederland.privacy-officer",
        "riec-noord-nederland.operator",
        f"{GEMEENTE}.analyst",
    ):
        response = gateway.client.post(
            f"/v1/principals/{principal}/tokens", headers=politie_operator
        )
        assert_problem(response, 403, "foreign-partner")
        assert last_event(gateway)["leaf"]["refs"]["principal"] == principal


def test_operator_cannot_enrol_or_revoke_another_partners_principals(gateway: Gateway) -> None:
    response = gateway.client.post(
        f"/v1/principals/{POLITIE_ANALYST}/enrolments", headers=gateway.auth(OPERATOR)
    )
    assert_problem(response, 403, "foreign-partner")
    token_id = gateway.tokens[POLITIE_ANALYST].split("_")[1]
    response = gateway.client.post(f"/v1/tokens/{token_id}/revoke", headers=gateway.auth(OPERATOR))
    assert_problem(response, 403, "foreign-partner")
    assert last_event(gateway)["type"] == "admin:registry:refuse"
    assert gateway.client.get("/v1/me", headers=gateway.auth(POLITIE_ANALYST)).status_code == 200


# ----------------------------------------------------------------- principals elsewhere


def test_operator_cannot_create_an_operator_principal_at_a_foreign_partner(
    gateway: Gateway,
) -> None:
    for headers, partner in (
        (gateway.auth(OPERATOR), POLITIE),  # the operating RIEC: the politie has principals
        (operator_of(gateway, GEMEENTE), POLITIE),
    ):
        response = gateway.client.post(
            f"/v1/partners/{partner}/principals",
            json={"role": "operator", "label": "Sneaky operator"},
            headers=headers,
        )
        assert_problem(response, 403, "foreign-partner")
        assert "gw_" not in response.text
        assert last_event(gateway)["leaf"]["refs"]["action"] == "principal:add"
    with gateway.database.read() as session:
        labels = [p.label for p in session.exec(select(Principal)).all()]
    assert "Sneaky operator" not in labels


def test_only_the_operating_riec_registers_partners_and_enrols_their_first_principal(
    gateway: Gateway,
) -> None:
    politie_operator = operator_of(gateway, POLITIE)
    response = gateway.client.post("/v1/partners", json=NEW_PARTNER, headers=politie_operator)
    assert_problem(response, 403, "operating-riec-only")
    register_new_partner(gateway)
    response = gateway.client.post(
        f"/v1/partners/{NEW_PARTNER['id']}/principals",
        json={"role": "operator", "label": "x"},
        headers=politie_operator,
    )
    assert_problem(response, 403, "foreign-partner")


# ----------------------------------------------------------------- enrolment codes


def test_operating_riec_creates_a_new_partners_first_principal_with_an_enrolment_code(
    gateway: Gateway,
) -> None:
    body = enrol_first_principal(gateway)
    assert "token" not in body
    code = body["enrolment"]["code"]
    assert code.startswith("gwe_")
    principal_id = body["principal"]["id"]
    assert tokens_of(gateway, principal_id) == 0
    # the code is no bearer token
    assert_problem(gateway.client.get("/v1/me", headers=bearer(code)), 401, "unauthenticated")
    # stored only as a hash
    with gateway.database.read() as session:
        rows = session.exec(select(EnrolmentCode)).all()
    assert code.split("_", 2)[2] not in " ".join(r.secret_sha256 for r in rows)
    assert last_event(gateway)["type"] == "admin:enrolment:issue"


def test_an_enrolment_code_works_once(gateway: Gateway) -> None:
    body = enrol_first_principal(gateway)
    code = body["enrolment"]["code"]
    redeemed = gateway.client.post("/v1/enrolments", json={"code": code})
    assert redeemed.status_code == 201, redeemed.text
    token = redeemed.json()["token"]
    me = gateway.client.get("/v1/me", headers=bearer(token)).json()
    assert me == {
        "principal_id": body["principal"]["id"],
        "partner_id": NEW_PARTNER["id"],
        "partner_kind": "gemeente",
        "role": "operator",
    }
    event = last_event(gateway)
    assert event["type"] == "admin:enrolment:redeem"
    assert event["actor"] == body["principal"]["id"]

    again = gateway.client.post("/v1/enrolments", json={"code": code})
    second = assert_problem(again, 401, "enrolment-code-invalid")
    unknown = gateway.client.post(
        "/v1/enrolments", json={"code": "gwe_" + "0" * 16 + "_" + "A" * 43}
    )
    first_unknown = assert_problem(unknown, 401, "enrolment-code-invalid")
    assert second["detail"] == first_unknown["detail"]  # no hint which
    assert code not in again.text
    assert tokens_of(gateway, body["principal"]["id"]) == 1


def test_an_expired_enrolment_code_fails(gateway: Gateway) -> None:
    body = enrol_first_principal(gateway)
    gateway.clock.advance(timedelta(hours=gateway.settings.enrolment_ttl_hours, seconds=1))
    response = gateway.client.post("/v1/enrolments", json={"code": body["enrolment"]["code"]})
    assert_problem(response, 401, "enrolment-code-invalid")
    assert tokens_of(gateway, body["principal"]["id"]) == 0
    # the operating RIEC may re-enrol the partner's only principal while nobody enrolled
    again = gateway.client.post(
        f"/v1/principals/{body['principal']['id']}/enrolments", headers=gateway.auth(OPERATOR)
    )
    assert again.status_code == 201, again.text
    assert (
        gateway.client.post("/v1/enrolments", json={"code": again.json()["code"]}).status_code
        == 201
    )


def test_malformed_enrolment_codes_are_the_same_401(gateway: Gateway) -> None:
    for code in ("x", "gw_0123456789abcdef_" + "A" * 43, "gwe_zz_" + "A" * 43):
        response = gateway.client.post("/v1/enrolments", json={"code": code})
        assert_problem(response, 401, "enrolment-code-invalid")


def test_a_new_enrolment_code_supersedes_the_unused_one(gateway: Gateway) -> None:
    body = enrol_first_principal(gateway)
    again = gateway.client.post(
        f"/v1/principals/{body['principal']['id']}/enrolments", headers=gateway.auth(OPERATOR)
    )
    assert again.status_code == 201
    old = gateway.client.post("/v1/enrolments", json={"code": body["enrolment"]["code"]})
    assert_problem(old, 401, "enrolment-code-invalid")


# ----------------------------------------------------------------- own partner's people


def test_operator_gets_no_usable_token_for_its_own_partners_analyst(gateway: Gateway) -> None:
    politie_operator = operator_of(gateway, POLITIE)
    before = tokens_of(gateway, POLITIE_ANALYST)
    response = gateway.client.post(
        f"/v1/principals/{POLITIE_ANALYST}/tokens", headers=politie_operator
    )
    assert_problem(response, 403, "enrolment-required")
    assert "gw_" not in response.text
    assert tokens_of(gateway, POLITIE_ANALYST) == before
    assert last_event(gateway)["type"] == "admin:registry:refuse"

    for role, person in (
        ("analyst", "a.agent@politie.nl"),
        ("privacy-officer", "fg@politie.nl"),
        ("partner-system", None),
    ):
        created = gateway.client.post(
            f"/v1/partners/{POLITIE}/principals",
            json={"role": role, "label": f"New {role}", "person": person},
            headers=politie_operator,
        )
        assert created.status_code == 201, created.text
        assert "token" not in created.json()
        assert created.json()["enrolment"]["code"].startswith("gwe_")
        assert tokens_of(gateway, created.json()["principal"]["id"]) == 0

    reissue = gateway.client.post(
        f"/v1/principals/{POLITIE_ANALYST}/enrolments", headers=politie_operator
    )
    assert reissue.status_code == 201
    assert reissue.json()["code"].startswith("gwe_")


def test_operator_may_hold_tokens_of_its_own_partners_operators(gateway: Gateway) -> None:
    created = gateway.client.post(
        "/v1/partners/riec-noord-nederland/principals",
        json={"role": "operator", "label": "Tweede beheerder", "person": "beheer2@riec.nl"},
        headers=gateway.auth(OPERATOR),
    )
    assert created.status_code == 201, created.text
    token = created.json()["token"]["token"]
    assert gateway.client.get("/v1/me", headers=bearer(token)).json()["role"] == "operator"
    another = gateway.client.post(
        f"/v1/principals/{created.json()['principal']['id']}/tokens",
        headers=gateway.auth(OPERATOR),
    )
    assert another.status_code == 201


# ----------------------------------------------------------------- revoking, listing


def test_non_operating_operator_cannot_revoke_another_partner(gateway: Gateway) -> None:
    politie_operator = operator_of(gateway, POLITIE)
    for partner in (GEMEENTE, "riec-noord-nederland"):
        response = gateway.client.post(f"/v1/partners/{partner}/revoke", headers=politie_operator)
        assert_problem(response, 403, "operating-riec-only")
        assert last_event(gateway)["leaf"]["refs"]["action"] == "partner:revoke"
    assert (
        gateway.client.get("/v1/me", headers=gateway.auth(f"{GEMEENTE}.analyst")).status_code == 200
    )
    own = gateway.client.post(f"/v1/partners/{POLITIE}/revoke", headers=politie_operator)
    assert own.status_code == 200


def test_principals_are_listed_for_ones_own_partner_or_by_the_operating_riec(
    gateway: Gateway,
) -> None:
    politie_operator = operator_of(gateway, POLITIE)
    own = gateway.client.get(f"/v1/partners/{POLITIE}/principals", headers=politie_operator)
    assert own.status_code == 200
    other = gateway.client.get(f"/v1/partners/{GEMEENTE}/principals", headers=politie_operator)
    assert_problem(other, 403, "foreign-partner")
    riec = gateway.client.get(f"/v1/partners/{GEMEENTE}/principals", headers=gateway.auth(OPERATOR))
    assert riec.status_code == 200


def test_unknown_principals_and_tokens_are_named_by_field_never_echoed(gateway: Gateway) -> None:
    marker = "echo-me-4242"
    auth = gateway.auth(OPERATOR)
    for path in (
        f"/v1/principals/{marker}/tokens",
        f"/v1/principals/{marker}/enrolments",
        f"/v1/tokens/{marker}/revoke",
    ):
        response = gateway.client.post(path, headers=auth)
        assert response.status_code == 404, (path, response.text)
        assert marker not in response.text
