"""The per-subject processing log: who received which data about a person, and why."""

from __future__ import annotations

from typing import Any

from gateway.demo import GEMEENTE, POLITIE, RIEC
from gateway.demo_data import YOUTH_BSN
from tests.conftest import Gateway
from tests.helpers.cases import POLICE_RECORD, go, start_case
from tests.helpers.problems import assert_problem

RIEC_PO = "riec-noord-nederland.privacy-officer"
GEMEENTE_PO = "gemeente-smallingerland.privacy-officer"
POLITIE_PO = "politie-noord-nederland.privacy-officer"
BANK_PO = "voorbeeldbank.privacy-officer"
TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"


def own(line: dict[str, Any], name: str) -> Any:
    """Return one of the gateway's own attributes of an LDV line."""
    return line["attributes"].get(f"nl.riec.gateway.{name}")


def lookup(gateway: Gateway, who: str, **identifier: str) -> Any:
    body = {"identifiers": [{"type": identifier["type"], "value": identifier["value"]}]}
    response = gateway.client.post(
        "/v1/subjects/processing-log", json=body, headers=gateway.auth(who)
    )
    assert response.status_code == 200, response.text
    return response.json()


def scenario(gateway: Gateway) -> str:
    walk = start_case(gateway)
    go(walk)
    response = gateway.client.post(
        walk.case("/records"),
        json=POLICE_RECORD,
        headers={
            **gateway.auth(POLITIE),
            "Idempotency-Key": "incident-0001",
            "traceparent": f"00-{TRACE}-00f067aa0ba902b7-01",
        },
    )
    assert response.status_code == 201
    walk.records(GEMEENTE)
    walk.records(RIEC)
    return walk.case_id


def test_a_riec_privacy_officer_sees_who_received_what_and_why(gateway: Gateway) -> None:
    case_id = scenario(gateway)
    log = lookup(gateway, RIEC_PO, type="bsn", value="111 222 333")
    lines = [line for line in log["lines"] if line["name"] != "subject:processing-log:read"]
    assert [(line["name"], own(line, "actor_partner")) for line in lines] == [
        ("case:record:share", "politie-noord-nederland"),
        ("case:record:read", "gemeente-smallingerland"),
        ("case:record:read", "riec-noord-nederland"),
    ]
    share, gemeente_read, _riec_read = lines
    assert share["trace_id"] == TRACE
    assert own(share, "legal_basis") == "wpg-20" and own(share, "category") == "police-incident"
    assert own(gemeente_read, "step") == 3
    assert own(gemeente_read, "purpose") == "integrale-aanpak-ondermijning"
    assert own(gemeente_read, "parties") == "gemeente-smallingerland,politie-noord-nederland"
    for line in lines:
        attributes = line["attributes"]
        assert own(line, "case_id") == case_id
        assert attributes["dpl.core.data_subject_id_type"] == "bsn"
        subject_id = attributes["dpl.core.data_subject_id"]
        assert len(subject_id) == 64 and YOUTH_BSN not in subject_id
        assert attributes["dpl.core.processing_activity_id"].startswith(
            "urn:riec-gateway:verwerkingsactiviteit:"
        )
        assert len(line["span_id"]) == 16 and line["status_code"] == "OK"
    proof = gateway.client.get(
        f"/v1/audit/proofs/inclusion?index={own(share, 'audit_index')}",
        headers=gateway.auth(RIEC_PO),
    )
    assert proof.status_code == 200


def test_partners_see_only_processings_they_took_part_in(gateway: Gateway) -> None:
    scenario(gateway)
    gemeente = lookup(gateway, GEMEENTE_PO, type="bsn", value=YOUTH_BSN)["lines"]
    assert {
        own(line, "actor_partner")
        for line in gemeente
        if line["name"] != "subject:processing-log:read"
    } == {"gemeente-smallingerland"}
    politie = [
        line["name"] for line in lookup(gateway, POLITIE_PO, type="bsn", value=YOUTH_BSN)["lines"]
    ]
    assert politie.count("case:record:share") == 1 and politie.count("case:record:read") == 2
    bank = lookup(gateway, BANK_PO, type="bsn", value=YOUTH_BSN)["lines"]
    assert [line["name"] for line in bank] == []


def test_a_lookup_is_itself_logged_and_found_later(gateway: Gateway) -> None:
    scenario(gateway)
    lookup(gateway, RIEC_PO, type="name", value="Jesse de Vries")
    again = lookup(gateway, RIEC_PO, type="name", value="jesse  de vries")["lines"]
    assert again[-1]["name"] == "subject:processing-log:read"
    assert own(again[-1], "actor_partner") == "riec-noord-nederland"


def test_only_privacy_officers_may_ask_and_never_in_the_url(gateway: Gateway) -> None:
    body = {"identifiers": [{"type": "bsn", "value": YOUTH_BSN}]}
    response = gateway.client.post(
        "/v1/subjects/processing-log", json=body, headers=gateway.auth(RIEC)
    )
    assert_problem(response, 403, "forbidden")
    assert_problem(
        gateway.client.get("/v1/subjects/processing-log", headers=gateway.auth(RIEC_PO)),
        405,
        "method-not-allowed",
    )
    bad = {"identifiers": [{"type": "bsn", "value": "123456789"}]}
    problem = assert_problem(
        gateway.client.post("/v1/subjects/processing-log", json=bad, headers=gateway.auth(RIEC_PO)),
        422,
        "invalid-identifier",
    )
    assert "123456789" not in str(problem)
