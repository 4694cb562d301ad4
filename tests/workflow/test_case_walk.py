"""The worked example of the brief, through the API: one case, all seven steps, five kinds.

At every step the test checks what each partner can and cannot see. It runs on SQLite
and on PostgreSQL (the ``gateway`` fixture).
"""

from __future__ import annotations

from datetime import timedelta

from sqlmodel import func, select

from gateway.app import build_context
from gateway.demo import (
    BANK,
    BELASTING,
    GEMEENTE,
    OM,
    POLITIE,
    RIEC,
)
from gateway.demo_data import GARAGE_KVK, SIGNAL, YOUTH, YOUTH_BSN
from gateway.identity.service import CLI_ACTOR
from gateway.models.audit import AuditEntry
from gateway.models.cases import Record
from gateway.models.policy import PolicyDecisionRecord
from gateway.workflow import retention
from tests.conftest import Gateway
from tests.helpers.cases import FISCAL_RECORD, POLICE_RECORD, Walk, go, start_case
from tests.helpers.problems import assert_problem


def test_one_case_through_all_seven_steps(gateway: Gateway) -> None:
    walk = start_case(gateway)

    # Step 1 output: only the RIEC and the submitter read the signal.
    for who in (RIEC, GEMEENTE):
        outputs = walk.ok(who, "GET", walk.case("/outputs"))["outputs"]
        assert [o["kind"] for o in outputs] == ["signal"]
        assert YOUTH in str(outputs[0]["content"])
    politie_view = walk.ok(POLITIE, "GET", walk.case("/outputs"))
    assert politie_view["outputs"] == [] and politie_view["withheld"] == 1

    # Step 2: hit/no-hit says yes or no per partner, nothing else.
    hits = walk.ok(
        RIEC, "POST", walk.case("/hits"), json={"identifier": {"type": "kvk", "value": GARAGE_KVK}}
    )["hits"]
    assert hits == {
        "belastingdienst": True,
        "gemeente-smallingerland": False,
        "om-noord-nederland": False,
        "politie-noord-nederland": False,
    }
    by_name = walk.ok(
        RIEC,
        "POST",
        walk.case("/hits"),
        json={"identifier": {"type": "name", "value": "  jesse DE vries "}},
    )["hits"]
    assert by_name["politie-noord-nederland"] is True
    assert by_name["om-noord-nederland"] is False
    assert walk.records(RIEC)["records"] == []
    go(walk)

    # Step 3: police and tax authority share under their own legal basis.
    assert walk.share(POLITIE, POLICE_RECORD).status_code == 201
    assert walk.share(BELASTING, FISCAL_RECORD).status_code == 201

    riec = walk.by_category(RIEC)
    assert riec["police-incident"]["fields"]["subject_bsn"] == YOUTH_BSN
    assert riec["fiscal"]["fields"]["turnover"] == 1_250_000
    assert riec["police-incident"]["provenance"]["legal_basis"] == "wpg-20"

    gemeente = walk.records(GEMEENTE)
    assert [r["provenance"]["category"] for r in gemeente["records"]] == ["police-incident"]
    police_for_gemeente = gemeente["records"][0]
    assert police_for_gemeente["summary_only"] is True
    assert police_for_gemeente["fields"] == {"summary": POLICE_RECORD["summary"]}
    assert YOUTH_BSN not in str(gemeente) and "pinautomaat" not in str(gemeente)
    assert gemeente["withheld"] == 1
    assert gemeente["withheld_by_rule"] == {"fiscaal-alleen-43c": 1}

    om = walk.by_category(OM)
    assert om["fiscal"]["fields"] == {"summary": FISCAL_RECORD["summary"]}

    bank = walk.call(BANK, "GET", walk.case("/records"))
    assert_problem(bank, 403, "not-a-participant")
    assert YOUTH not in bank.text

    # Step 3 -> 4 needs the analysis; the advice assigns interventions.
    assert_problem(
        walk.call(RIEC, "POST", walk.case("/transitions"), json={"to_step": 4}),
        409,
        "transition-not-allowed",
    )
    walk.ok(RIEC, "POST", walk.case("/outputs"), json={"kind": "analysis", "text": "Netwerk."})
    walk.move(4)
    walk.ok(
        RIEC,
        "POST",
        walk.case("/outputs"),
        json={
            "kind": "advice",
            "text": "Sluiting garage en boekenonderzoek.",
            "interventions": [
                {
                    "partner_id": "gemeente-smallingerland",
                    "purpose": "interventie-bestuurlijk",
                    "description": "Sluiting op grond van Wet Bibob / APV",
                },
                {
                    "partner_id": "belastingdienst",
                    "purpose": "interventie-fiscaal",
                    "description": "Boekenonderzoek",
                },
            ],
        },
    )
    walk.move(5)

    # Step 5: each partner sees what its own intervention needs.
    gemeente_outputs = walk.ok(GEMEENTE, "GET", walk.case("/outputs"))["outputs"]
    advice = next(o for o in gemeente_outputs if o["kind"] == "advice")
    assert [i["partner"] for i in advice["content"]["interventions"]] == ["gemeente-smallingerland"]
    assert "analysis" not in {o["kind"] for o in gemeente_outputs}
    gemeente5 = walk.records(GEMEENTE)
    assert [r["rule_id"] for r in gemeente5["records"]] == ["bestuurlijke-interventie"]
    tax5 = walk.by_category(BELASTING)
    assert tax5["police-incident"]["fields"] == {"summary": POLICE_RECORD["summary"]}
    assert tax5["fiscal"]["rule_id"] == "eigen-gegevens"
    assert tax5["fiscal"]["fields"]["remarks"] == FISCAL_RECORD["fields"]["remarks"]

    walk.ok(GEMEENTE, "POST", walk.case("/outputs"), json={"kind": "results", "text": "Gesloten."})
    walk.ok(
        BELASTING, "POST", walk.case("/outputs"), json={"kind": "results", "text": "Naheffing."}
    )
    walk.move(6)
    walk.ok(RIEC, "POST", walk.case("/outputs"), json={"kind": "evaluation", "text": "Geslaagd."})
    closed = walk.move(7, closure="Casus afgesloten na evaluatie.")
    assert closed["status"] == "closed"
    assert [(t["from_step"], t["to_step"]) for t in closed["transitions"]] == [
        (1, 2),
        (2, 3),
        (3, 4),
        (4, 5),
        (5, 6),
        (6, 7),
    ]
    assert all(t["policy_version"] for t in closed["transitions"])

    # Step 7: access ends, except each provider's own records.
    assert walk.records(RIEC)["records"] == []
    assert walk.records(GEMEENTE)["records"] == []
    assert [r["provenance"]["category"] for r in walk.records(POLITIE)["records"]] == [
        "police-incident"
    ]
    own = walk.by_category(BELASTING)
    assert list(own) == ["fiscal"]
    assert own["fiscal"]["provenance"]["retention_until"] is not None

    # Retention: the records go when their periods end; then the case key is destroyed.
    ctx = build_context(gateway.settings, clock=gateway.clock, db=gateway.database)
    gateway.clock.advance(timedelta(days=31))
    report = retention.run(ctx, CLI_ACTOR, case_retention_days=30)
    assert report.record_count == 1 and not report.shredded_cases
    assert walk.records(POLITIE)["records"] == []
    gateway.clock.advance(timedelta(days=30))
    report = retention.run(ctx, CLI_ACTOR, case_retention_days=30)
    assert report.record_count == 1 and report.shredded_cases == [walk.case_id]
    assert_problem(walk.call(BELASTING, "GET", walk.case("/records")), 410, "key-shredded")


def test_every_exchange_left_an_audit_entry_naming_case_and_policy(gateway: Gateway) -> None:
    walk = start_case(gateway)
    walk.ok(
        RIEC, "POST", walk.case("/hits"), json={"identifier": {"type": "kvk", "value": GARAGE_KVK}}
    )
    go(walk)
    walk.share(POLITIE, POLICE_RECORD)
    walk.records(GEMEENTE)
    with gateway.database.read() as session:
        entries = session.exec(select(AuditEntry).where(AuditEntry.case_id == walk.case_id)).all()
    kinds = {e.event_type for e in entries}
    assert {
        "case:signal:submit",
        "case:participant:add",
        "case:step:transition",
        "case:hit:query",
        "case:decision:record",
        "case:record:share",
        "case:record:read",
    } <= kinds
    # the decisions that allowed each exchange are rows naming that exchange's entry
    with gateway.database.read() as session:
        named = set(
            session.exec(
                select(PolicyDecisionRecord.audit_entry_id).where(
                    PolicyDecisionRecord.case_id == walk.case_id
                )
            ).all()
        )
    assert named and named <= {e.entry_id for e in entries}
    share = next(e for e in entries if e.event_type == "case:record:share")
    assert '"legal_basis":"wpg-20"' in share.leaf and '"policy_version":"' in share.leaf
    assert '"subjects":["' in share.leaf
    for entry in entries:
        assert (
            YOUTH not in entry.leaf and YOUTH_BSN not in entry.leaf and GARAGE_KVK not in entry.leaf
        )


# ----- must-deny ------------------------------------------------------------------------


def test_skipping_a_step_is_refused(gateway: Gateway) -> None:
    walk = Walk(gateway)
    walk.case_id = walk.ok(GEMEENTE, "POST", "/v1/signals", json=SIGNAL)["id"]
    body = assert_problem(
        walk.call(RIEC, "POST", walk.case("/transitions"), json={"to_step": 3}),
        409,
        "transition-not-allowed",
    )
    assert "cannot be skipped" in body["detail"]
    walk.move(2)
    body = assert_problem(
        walk.call(RIEC, "POST", walk.case("/transitions"), json={"to_step": 3}),
        409,
        "transition-not-allowed",
    )
    assert "no go yet" in body["detail"]


def test_only_the_riec_moves_a_case(gateway: Gateway) -> None:
    walk = Walk(gateway)
    walk.case_id = walk.ok(GEMEENTE, "POST", "/v1/signals", json=SIGNAL)["id"]
    body = assert_problem(
        walk.call(GEMEENTE, "POST", walk.case("/transitions"), json={"to_step": 2}),
        403,
        "policy-denied",
    )
    assert body["rule_id"] == "default-deny" and body["policy_version"]


def test_a_non_participant_cannot_act(gateway: Gateway) -> None:
    walk = start_case(gateway)
    go(walk)
    for method, suffix, body in (
        ("GET", "/records", None),
        ("GET", "/outputs", None),
        ("GET", "", None),
        ("POST", "/records", POLICE_RECORD),
    ):
        response = gateway.client.request(
            method,
            walk.case(suffix),
            json=body,
            headers={**gateway.auth("uwv.partner-system"), "Idempotency-Key": "key-00000000"},
        )
        assert_problem(response, 403, "not-a-participant")


def test_no_go_closes_the_case(gateway: Gateway) -> None:
    walk = start_case(gateway)
    closed = walk.ok(
        RIEC,
        "POST",
        walk.case("/decision"),
        json={
            "decision": "no-go",
            "purpose": "integrale-aanpak-ondermijning",
            "legal_basis": "riec-convenant",
            "motivation": "Geen aanwijzingen.",
        },
    )
    assert closed["status"] == "closed" and closed["step"] == 7
    assert_problem(walk.share(POLITIE, POLICE_RECORD), 409, "transition-not-allowed")


def test_a_municipality_never_reads_raw_police_investigation_data(gateway: Gateway) -> None:
    walk = start_case(gateway)
    go(walk)
    investigation = {
        **POLICE_RECORD,
        "category": "police-investigation",
        "legal_basis": "wpg-19-opsporing",
        "fields": {
            "case_number": "ON-2026-77",
            "subject_bsn": YOUTH_BSN,
            "subject_name": YOUTH,
            "birth_date": "2008-04-02",
            "occurred_at": "2026-10-02T10:00:00+00:00",
            "description": "Tapverslag: regelt passen voor de garage.",
        },
    }
    assert walk.share(POLITIE, investigation).status_code == 201
    view = walk.records(GEMEENTE)
    assert view["records"] == []
    assert view["withheld_by_rule"] == {"opsporing-nooit-naar-gemeente": 1}
    assert "Tapverslag" not in str(view)
    assert walk.by_category(RIEC)["police-investigation"]["fields"]["case_number"] == "ON-2026-77"


def test_fiscal_data_never_reaches_a_partner_outside_awr_43c(gateway: Gateway) -> None:
    walk = start_case(gateway)
    go(walk)
    walk.share(BELASTING, FISCAL_RECORD)
    view = walk.records(GEMEENTE)
    assert view["records"] == [] and view["withheld_by_rule"] == {"fiscaal-alleen-43c": 1}
    assert "1250000" not in str(view) and "Omzet" not in str(view)


def test_sharing_without_a_legal_basis_is_refused_and_stores_nothing(gateway: Gateway) -> None:
    walk = start_case(gateway)
    go(walk)
    missing = {k: v for k, v in POLICE_RECORD.items() if k != "legal_basis"}
    assert_problem(walk.share(POLITIE, missing), 422, "validation-failed")
    wrong = {**POLICE_RECORD, "legal_basis": "awr-43c"}  # the Belastingdienst's basis
    body = assert_problem(walk.share(POLITIE, wrong), 403, "legal-basis-not-own")
    assert body["rule_id"] == "eigen-grondslag-politie"
    other = {**POLICE_RECORD, "legal_basis": "wpg-19-opsporing"}  # its own, not for incidents
    body = assert_problem(walk.share(POLITIE, other), 403, "policy-denied")
    assert body["rule_id"] == "default-deny"
    unknown = {**POLICE_RECORD, "legal_basis": "wpg-99"}
    assert_problem(walk.share(POLITIE, unknown), 422, "invalid-input")
    with gateway.database.read() as session:
        assert session.exec(select(func.count()).select_from(Record)).one() == 0


def test_a_retry_with_the_same_idempotency_key_stores_nothing_new(gateway: Gateway) -> None:
    walk = start_case(gateway)
    go(walk)
    first = walk.share(POLITIE, POLICE_RECORD, key="incident-123-v1")
    again = walk.share(POLITIE, POLICE_RECORD, key="incident-123-v1")
    assert first.status_code == 201 and again.status_code == 200
    assert again.json() == {"record_id": first.json()["record_id"], "created": False}
    changed = {**POLICE_RECORD, "summary": "Andere samenvatting."}
    assert_problem(
        walk.share(POLITIE, changed, key="incident-123-v1"), 409, "idempotency-key-reused"
    )
    with gateway.database.read() as session:
        assert session.exec(select(func.count()).select_from(Record)).one() == 1


def test_a_record_that_does_not_match_its_category_is_refused(gateway: Gateway) -> None:
    walk = start_case(gateway)
    go(walk)
    bad = {**POLICE_RECORD, "fields": {**POLICE_RECORD["fields"], "favourite_colour": "blue"}}
    body = assert_problem(walk.share(POLITIE, bad), 422, "invalid-input")
    # the unknown name is input too: counted, the category's own fields listed, never echoed
    assert "1 field(s) not part of category police-incident" in body["detail"]
    assert "favourite_colour" not in body["detail"] and "blue" not in body["detail"]
    bad_bsn = {**POLICE_RECORD, "fields": {**POLICE_RECORD["fields"], "subject_bsn": "123456789"}}
    body = assert_problem(walk.share(POLITIE, bad_bsn), 422, "invalid-identifier")
    assert "123456789" not in str(body)


def test_going_back_to_step_3_needs_a_reason(gateway: Gateway) -> None:
    walk = start_case(gateway)
    go(walk)
    walk.ok(RIEC, "POST", walk.case("/outputs"), json={"kind": "analysis", "text": "Netwerk."})
    walk.move(4)
    assert_problem(
        walk.call(RIEC, "POST", walk.case("/transitions"), json={"to_step": 3}),
        409,
        "transition-not-allowed",
    )
    back = walk.move(3, reason="Politie heeft nieuwe informatie.")
    assert back["transitions"][-1]["reason"] == "Politie heeft nieuwe informatie."
    # the analysis of the first round does not count for the second
    assert_problem(
        walk.call(RIEC, "POST", walk.case("/transitions"), json={"to_step": 4}),
        409,
        "transition-not-allowed",
    )
