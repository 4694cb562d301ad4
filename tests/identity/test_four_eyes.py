"""Issue 12: four eyes are two people, and only the pack owner's privacy officers approve.

One person may hold privacy-officer principals at two partners; the gateway knows them
by the keyed hash of a person identifier and refuses approval by the proposer's person.
The pack names its owner (``policies/pack.yaml``); privacy officers of other partners,
another RIEC's included, propose but never approve. Refusals are audited.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from sqlmodel import col, select

from gateway.demo_partners import demo_person
from gateway.errors import InvalidInputError
from gateway.identity import service
from gateway.identity.service import CLI_ACTOR
from gateway.models.audit import AuditEntry
from gateway.models.partners import Principal
from gateway.policy.pack import PACK_FILE, Pack, pack_owner, read_pack
from gateway.vocabulary import Role
from tests.api.test_auth import assert_problem
from tests.conftest import POLICIES, Gateway
from tests.workbench.helpers import (
    GEMEENTE_PO,
    OFFICER_A,
    RULES_30,
    add_officer,
    app_ctx,
    widened_rules,
)

GEMEENTE = "gemeente-smallingerland"


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def propose(gateway: Gateway, headers: dict[str, str]) -> int:
    response = gateway.client.post(
        "/v1/policies/proposals",
        json={"title": "Widen step 5", "description": "why", "files": {RULES_30: widened_rules()}},
        headers=headers,
    )
    assert response.status_code == 201, response.text
    proposal_id: int = response.json()["id"]
    return proposal_id


def approve(gateway: Gateway, proposal_id: int, headers: dict[str, str]) -> Any:
    return gateway.client.post(
        f"/v1/policies/proposals/{proposal_id}/approve", json={"note": "ok"}, headers=headers
    )


def last_event(gateway: Gateway) -> tuple[str, dict[str, Any]]:
    with gateway.database.read() as session:
        entry = session.exec(select(AuditEntry).order_by(col(AuditEntry.leaf_index).desc())).first()
    assert entry is not None
    return entry.event_type, json.loads(entry.leaf)


def test_the_same_person_with_privacy_officer_principals_at_two_partners_cannot_approve(
    gateway: Gateway,
) -> None:
    proposal_id = propose(gateway, gateway.auth(GEMEENTE_PO))
    # the gemeente's privacy officer also holds a principal at the RIEC, spelt differently
    same_person = " " + demo_person(GEMEENTE, Role.PRIVACY_OFFICER).upper() + " "
    token = add_officer(
        gateway.database,
        gateway.clock,
        "riec-noord-nederland.privacy-officer-2",
        person=same_person,
        keyer=app_ctx(gateway.client).keys.person_key,
    )
    body = assert_problem(approve(gateway, proposal_id, bearer(token)), 403, "four-eyes-violation")
    assert "one person" in body["detail"]
    event_type, leaf = last_event(gateway)
    assert event_type == "policy:proposal:refuse"
    assert leaf["refs"]["reason"] == "four-eyes-violation"
    # another person at the RIEC can
    other = add_officer(gateway.database, gateway.clock, "riec-noord-nederland.privacy-officer-3")
    assert approve(gateway, proposal_id, bearer(other)).status_code == 200


def test_the_same_person_at_the_same_partner_cannot_approve_under_another_principal(
    gateway: Gateway,
) -> None:
    proposal_id = propose(gateway, gateway.auth(OFFICER_A))
    token = add_officer(
        gateway.database,
        gateway.clock,
        person=demo_person("riec-noord-nederland", Role.PRIVACY_OFFICER),
        keyer=app_ctx(gateway.client).keys.person_key,
    )
    assert_problem(approve(gateway, proposal_id, bearer(token)), 403, "four-eyes-violation")
    detail = gateway.client.get(
        f"/v1/policies/proposals/{proposal_id}", headers=bearer(token)
    ).json()
    assert "four-eyes" in json.dumps(detail)


@pytest.mark.parametrize(
    "officer",
    ["politie-noord-nederland.privacy-officer", "another-riec"],
    ids=["politie", "another-riec"],
)
def test_a_privacy_officer_of_a_partner_that_does_not_own_the_pack_cannot_approve(
    gateway: Gateway, officer: str
) -> None:
    if officer == "another-riec":  # a demo partner: riec-oost-nederland's own officer
        headers = gateway.auth("riec-oost-nederland.privacy-officer")
    else:
        headers = gateway.auth(officer)
    proposal_id = propose(gateway, headers)  # may propose
    body = assert_problem(
        approve(gateway, proposal_id, gateway.auth(GEMEENTE_PO)), 403, "not-an-approver"
    )
    assert "riec-noord-nederland" in body["detail"]
    body = assert_problem(approve(gateway, proposal_id, headers), 403, "four-eyes-violation")
    other_proposal = propose(gateway, gateway.auth(OFFICER_A))
    body = assert_problem(approve(gateway, other_proposal, headers), 403, "not-an-approver")
    event_type, leaf = last_event(gateway)
    assert event_type == "policy:proposal:refuse"
    assert leaf["refs"]["reason"] == "not-an-approver"
    rejected = gateway.client.post(
        f"/v1/policies/proposals/{other_proposal}/reject", json={"note": "no"}, headers=headers
    )
    assert_problem(rejected, 403, "not-an-approver")


def test_a_privacy_officer_must_name_a_person_and_a_system_must_not(gateway: Gateway) -> None:
    with gateway.database.write() as session:
        with pytest.raises(InvalidInputError, match="person"):
            service.add_principal(
                session,
                gateway.clock,
                CLI_ACTOR,
                partner_id=GEMEENTE,
                role=Role.PRIVACY_OFFICER,
                label="Nameless",
            )
        with pytest.raises(InvalidInputError, match="system"):
            service.add_principal(
                session,
                gateway.clock,
                CLI_ACTOR,
                partner_id=GEMEENTE,
                role=Role.PARTNER_SYSTEM,
                label="Zaaksysteem",
                person_key="0" * 64,
            )
    response = gateway.client.post(
        "/v1/partners/riec-noord-nederland/principals",
        json={"role": "privacy-officer", "label": "No person"},
        headers=gateway.auth("riec-noord-nederland.operator"),
    )
    body = assert_problem(response, 422, "invalid-input")
    assert body["field"] == "person"


def test_person_identifiers_are_stored_only_as_keyed_hashes(gateway: Gateway) -> None:
    person = "Fg.Nieuw@Riec.example"
    response = gateway.client.post(
        "/v1/partners/riec-noord-nederland/principals",
        json={"role": "privacy-officer", "label": "FG", "person": person},
        headers=gateway.auth("riec-noord-nederland.operator"),
    )
    assert response.status_code == 201, response.text
    assert person.lower() not in response.text.lower()
    with gateway.database.read() as session:
        row = session.get(Principal, response.json()["principal"]["id"])
        entries = " ".join(e.leaf for e in session.exec(select(AuditEntry)).all())
    assert row is not None and row.person_key is not None
    assert len(row.person_key) == 64 and person.lower() not in row.person_key
    assert person.lower() not in entries.lower()
    ring = app_ctx(gateway.client).keys
    assert row.person_key == ring.person_key(person.lower())
    assert ring.person_key(person.lower()) != ring.blind_index("person", person.lower())


def test_the_shipped_pack_names_the_demo_riec_as_its_owner() -> None:
    pack = read_pack(POLICIES)
    assert PACK_FILE in pack.files
    assert pack_owner(pack) == "riec-noord-nederland"
    assert pack_owner(Pack.of({k: v for k, v in pack.files.items() if k != PACK_FILE})) is None
