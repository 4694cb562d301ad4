"""Visibility follows the case: several RIECs on one gateway, least information in refusals,
who may take part in a case, and retries that are no way past the policy.
"""

from __future__ import annotations

import json
from typing import Any

from sqlmodel import col, func, select

from gateway.demo import GEMEENTE, POLITIE, RIEC
from gateway.demo_data import SIGNAL, YOUTH, YOUTH_BSN
from gateway.models.audit import AuditEntry
from gateway.models.cases import CaseParticipant, Record
from tests.conftest import Gateway
from tests.helpers.cases import POLICE_RECORD, Walk, go, start_case
from tests.helpers.problems import assert_problem

OOST = "riec-oost-nederland.riec-analyst"
OOST_PO = "riec-oost-nederland.privacy-officer"
OOST_SYSTEM = "riec-oost-nederland.partner-system"
NOORD_PO = "riec-noord-nederland.privacy-officer"
NOORD_OPERATOR = "riec-noord-nederland.operator"
POLITIE_PO = "politie-noord-nederland.privacy-officer"
RESEARCHER = "nscr.researcher"


def shared_case(gateway: Gateway) -> Walk:
    """A riec-noord case at step 3 with a police record about the youth, read by two."""
    walk = start_case(gateway)
    go(walk)
    assert walk.share(POLITIE, POLICE_RECORD, key="incident-0001").status_code == 201
    walk.records(GEMEENTE)
    walk.records(RIEC)
    return walk


def entries(gateway: Gateway, who: str, query: str = "") -> list[dict[str, Any]]:
    response = gateway.client.get(f"/v1/audit/entries?limit=500{query}", headers=gateway.auth(who))
    assert response.status_code == 200, response.text
    return [e["leaf"] for e in response.json()["entries"]]


def processing_log(gateway: Gateway, who: str) -> list[dict[str, Any]]:
    response = gateway.client.post(
        "/v1/subjects/processing-log",
        json={"identifiers": [{"type": "bsn", "value": YOUTH_BSN}]},
        headers=gateway.auth(who),
    )
    assert response.status_code == 200, response.text
    return [
        line for line in response.json()["lines"] if line["name"] != "subject:processing-log:read"
    ]


def case_indexes(gateway: Gateway, case_id: str) -> list[int]:
    with gateway.database.read() as session:
        return list(
            session.exec(select(AuditEntry.leaf_index).where(AuditEntry.case_id == case_id)).all()
        )


# ----- several RIECs on one gateway ------------------------------------------------------


def test_another_riec_sees_no_audit_entry_of_a_case_it_does_not_run(gateway: Gateway) -> None:
    walk = shared_case(gateway)
    own = case_indexes(gateway, walk.case_id)
    assert len(own) >= 8  # one per exchange of the case so far
    for who in (RIEC, NOORD_PO):
        seen = {leaf["index"] for leaf in entries(gateway, who, f"&case={walk.case_id}")}
        assert seen == set(own), who
    for who in (OOST, OOST_PO, OOST_SYSTEM):
        assert entries(gateway, who, f"&case={walk.case_id}") == [], who
        everything = entries(gateway, who)
        assert all(leaf["case"] != walk.case_id for leaf in everything), who
        assert all(not leaf["subjects"] for leaf in everything), who
        for index in own:
            proof = gateway.client.get(
                f"/v1/audit/proofs/inclusion?index={index}", headers=gateway.auth(who)
            )
            assert_problem(proof, 404, "not-found")


def test_another_riec_neither_lists_nor_reads_the_case(gateway: Gateway) -> None:
    walk = shared_case(gateway)
    for who in (OOST, OOST_PO, OOST_SYSTEM):
        listed = walk.ok(who, "GET", "/v1/cases")
        assert listed == [], who
        for suffix in ("", "/outputs", "/records"):
            response = walk.call(who, "GET", walk.case(suffix))
            # a privacy officer reads no case content anywhere, so its role answers first
            content = who == OOST_PO and suffix != ""
            assert_problem(response, 403, "role-not-in-case" if content else "not-a-participant")
            assert YOUTH not in response.text


def test_each_riec_sees_the_cases_it_runs_and_not_the_other_ones(gateway: Gateway) -> None:
    noord = shared_case(gateway)
    oost = Walk(gateway)
    oost.case_id = oost.ok(
        GEMEENTE, "POST", "/v1/signals", json={**SIGNAL, "riec": "riec-oost-nederland"}
    )["id"]
    assert [c["id"] for c in noord.ok(OOST, "GET", "/v1/cases")] == [oost.case_id]
    assert oost.case_id not in {c["id"] for c in noord.ok(RIEC, "GET", "/v1/cases")}
    assert entries(gateway, RIEC, f"&case={oost.case_id}") == []
    assert entries(gateway, NOORD_PO, f"&case={oost.case_id}") == []
    assert {leaf["case"] for leaf in entries(gateway, OOST, f"&case={oost.case_id}")} == {
        oost.case_id
    }
    assert_problem(noord.call(RIEC, "GET", oost.case("/outputs")), 403, "not-a-participant")


def test_a_riec_taking_part_in_another_riecs_case_sees_only_what_concerns_it(
    gateway: Gateway,
) -> None:
    walk = shared_case(gateway)
    walk.ok(RIEC, "POST", walk.case("/participants"), json={"partner_id": "riec-oost-nederland"})
    seen = entries(gateway, OOST, f"&case={walk.case_id}")
    assert seen  # the entry that added it names it
    assert all(
        leaf["actor"]["partner"] == "riec-oost-nederland"
        or "riec-oost-nederland" in leaf["parties"]
        for leaf in seen
    )
    assert len(seen) < len(case_indexes(gateway, walk.case_id))


def test_another_riecs_privacy_officer_gets_no_processing_of_a_person_in_the_case(
    gateway: Gateway,
) -> None:
    shared_case(gateway)
    own = processing_log(gateway, NOORD_PO)
    assert [line["name"] for line in own] == [
        "case:record:share",
        "case:record:read",
        "case:record:read",
    ]
    assert processing_log(gateway, OOST_PO) == []


def test_a_riec_privacy_officer_never_gets_more_lines_than_the_riec_running_the_case(
    gateway: Gateway,
) -> None:
    walk = shared_case(gateway)
    walk.ok(RIEC, "POST", walk.case("/participants"), json={"partner_id": "riec-oost-nederland"})
    walk.records(OOST)
    own = {
        line["attributes"]["nl.riec.gateway.audit_index"]
        for line in processing_log(gateway, NOORD_PO)
    }
    other = {
        line["attributes"]["nl.riec.gateway.audit_index"]
        for line in processing_log(gateway, OOST_PO)
    }
    assert other <= own
    assert len(other) < len(own)


# ----- least information in refusals -----------------------------------------------------


def test_operators_and_researchers_get_403_on_every_case_read_and_learn_nothing(
    gateway: Gateway,
) -> None:
    walk = shared_case(gateway)
    with gateway.database.write() as session:
        # a researcher's partner that got into a case before participants were checked
        session.add(
            CaseParticipant(
                case_id=walk.case_id,
                partner_id="nscr",
                added_by="legacy",
                added_at=gateway.clock.now(),
            )
        )
    before = len(case_indexes(gateway, walk.case_id))
    for who in (NOORD_OPERATOR, RESEARCHER):
        for suffix in ("/records", "/outputs", ""):
            response = walk.call(who, "GET", walk.case(suffix))
            body = assert_problem(response, 403, "role-not-in-case")
            assert body["title"] == "This role has no access to case data"
            text = response.text
            assert "withheld" not in text and "rule" not in text and YOUTH not in text
        assert_problem(walk.call(who, "GET", "/v1/cases"), 403, "role-not-in-case")
    refusals = [
        leaf
        for leaf in entries(gateway, RIEC, f"&case={walk.case_id}")
        if leaf["type"] == "case:access:refuse"
    ]
    assert len(refusals) == 6
    assert {leaf["actor"]["principal"] for leaf in refusals} == {NOORD_OPERATOR, RESEARCHER}
    assert len(case_indexes(gateway, walk.case_id)) == before + 6


def test_a_privacy_officer_sees_the_case_but_not_its_content(gateway: Gateway) -> None:
    walk = shared_case(gateway)
    assert walk.ok(NOORD_PO, "GET", walk.case())["id"] == walk.case_id
    assert [c["id"] for c in walk.ok(NOORD_PO, "GET", "/v1/cases")] == [walk.case_id]
    for who in (NOORD_PO, POLITIE_PO):
        for suffix in ("/records", "/outputs"):
            assert_problem(walk.call(who, "GET", walk.case(suffix)), 403, "role-not-in-case")


def test_a_non_participant_refusal_is_audited(gateway: Gateway) -> None:
    walk = shared_case(gateway)
    assert_problem(walk.call(OOST, "GET", walk.case("/records")), 403, "not-a-participant")
    refusals = [
        leaf
        for leaf in entries(gateway, RIEC, f"&case={walk.case_id}")
        if leaf["type"] == "case:access:refuse"
    ]
    assert [(r["actor"]["principal"], r["refs"]["refusal"]) for r in refusals] == [
        (OOST, "not-a-participant")
    ]


# ----- who may be a participant ------------------------------------------------------------


def test_banks_telecom_and_science_partners_are_not_added_to_a_case(gateway: Gateway) -> None:
    walk = start_case(gateway)
    for partner in ("voorbeeldbank", "voorbeeldtelecom", "nscr", "haagse-hogeschool"):
        response = walk.call(RIEC, "POST", walk.case("/participants"), json={"partner_id": partner})
        body = assert_problem(response, 403, "policy-denied")
        assert body["rule_id"] == "geen-private-of-wetenschappelijke-deelnemer"
        assert "covenant" in body["reason"]
    view = walk.ok(RIEC, "GET", walk.case())
    assert not {"voorbeeldbank", "voorbeeldtelecom", "nscr", "haagse-hogeschool"} & set(
        view["participants"]
    )
    refused = [
        leaf
        for leaf in entries(gateway, RIEC, f"&case={walk.case_id}")
        if leaf["type"] == "policy:decision:record"
        and leaf["refs"].get("rule") == "geen-private-of-wetenschappelijke-deelnemer"
    ]
    assert len(refused) == 4


def test_covenant_partners_and_another_riec_can_still_be_added(gateway: Gateway) -> None:
    walk = start_case(gateway)
    for partner in ("uwv", "riec-oost-nederland"):
        walk.ok(RIEC, "POST", walk.case("/participants"), json={"partner_id": partner})
    response = walk.call(
        RIEC, "POST", walk.case("/participants"), json={"partner_id": "no-such-partner"}
    )
    assert_problem(response, 404, "not-found")
    response = walk.call(
        GEMEENTE, "POST", walk.case("/participants"), json={"partner_id": "no-such-partner"}
    )
    assert_problem(response, 403, "policy-denied")


# ----- a retry is not a way past the policy ------------------------------------------------


def test_a_retry_by_a_principal_without_share_rights_is_refused_not_answered(
    gateway: Gateway,
) -> None:
    walk = shared_case(gateway)
    for record in (POLICE_RECORD, {**POLICE_RECORD, "summary": "Iets anders."}):
        response = walk.share(POLITIE_PO, record, key="incident-0001")
        body = assert_problem(response, 403, "policy-denied")
        assert "record_id" not in body
    with gateway.database.read() as session:
        assert session.exec(select(func.count()).select_from(Record)).one() == 1


def test_a_retry_after_the_share_step_is_refused_by_the_policy(gateway: Gateway) -> None:
    walk = shared_case(gateway)
    walk.ok(RIEC, "POST", walk.case("/outputs"), json={"kind": "analysis", "text": "Analyse."})
    walk.move(4)
    response = walk.share(POLITIE, POLICE_RECORD, key="incident-0001")
    assert_problem(response, 403, "policy-denied")


def test_a_replay_is_audited(gateway: Gateway) -> None:
    walk = shared_case(gateway)
    again = walk.share(POLITIE, POLICE_RECORD, key="incident-0001")
    assert again.status_code == 200 and again.json()["created"] is False
    with gateway.database.read() as session:
        replays = session.exec(
            select(AuditEntry)
            .where(AuditEntry.case_id == walk.case_id)
            .where(col(AuditEntry.event_type) == "case:record:share-replay")
        ).all()
    assert len(replays) == 1
    leaf = json.loads(replays[0].leaf)
    assert leaf["actor"]["principal"] == POLITIE
    assert leaf["refs"]["record"] == again.json()["record_id"] and leaf["refs"]["replay"] is True
    assert leaf["subjects"] == []


def test_a_riec_taking_part_in_another_riecs_case_reads_only_its_own_interventions(
    gateway: Gateway,
) -> None:
    walk = shared_case(gateway)
    walk.ok(RIEC, "POST", walk.case("/participants"), json={"partner_id": "riec-oost-nederland"})
    walk.ok(RIEC, "POST", walk.case("/outputs"), json={"kind": "analysis", "text": "Netwerk."})
    walk.move(4)
    walk.ok(
        RIEC,
        "POST",
        walk.case("/outputs"),
        json={
            "kind": "advice",
            "text": "Sluiting garage.",
            "interventions": [
                {
                    "partner_id": "gemeente-smallingerland",
                    "purpose": "interventie-bestuurlijk",
                    "description": "Sluiting op grond van Wet Bibob / APV",
                }
            ],
        },
    )
    mine = walk.ok(RIEC, "GET", walk.case("/outputs"))["outputs"]
    assert [len(o["content"]["interventions"]) for o in mine if o["kind"] == "advice"] == [1]
    theirs = walk.ok(OOST, "GET", walk.case("/outputs"))["outputs"]
    for advice in (o for o in theirs if o["kind"] == "advice"):
        assert advice["content"]["interventions"] == []
        assert "Bibob" not in str(advice)


def test_only_the_riec_running_a_case_steers_it(gateway: Gateway) -> None:
    walk = start_case(gateway)
    walk.ok(RIEC, "POST", walk.case("/participants"), json={"partner_id": "riec-oost-nederland"})
    before = walk.ok(RIEC, "GET", walk.case())
    attempts: list[tuple[str, dict[str, Any]]] = [
        ("/participants", {"partner_id": "uwv"}),
        ("/hits", {"identifier": {"type": "name", "value": YOUTH}}),
        (
            "/decision",
            {
                "decision": "go",
                "purpose": "integrale-aanpak-ondermijning",
                "legal_basis": "riec-convenant",
                "motivation": "Ander RIEC.",
            },
        ),
        ("/transitions", {"to_step": 3}),
    ]
    for suffix, body in attempts:
        response = walk.call(OOST, "POST", walk.case(suffix), json=body)
        assert_problem(response, 403, "not-the-case-riec")
        assert "hits" not in response.text
    assert walk.ok(RIEC, "GET", walk.case()) == before
    refusals = [
        leaf["refs"]["refusal"]
        for leaf in entries(gateway, RIEC, f"&case={walk.case_id}")
        if leaf["type"] == "case:access:refuse"
    ]
    assert refusals == ["not-the-case-riec"] * len(attempts)
    go(walk)
    response = walk.call(
        OOST, "POST", walk.case("/outputs"), json={"kind": "analysis", "text": "Ander RIEC."}
    )
    assert_problem(response, 403, "not-the-case-riec")
