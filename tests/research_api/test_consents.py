"""Provider consent: recorded, refused and revoked, only by a provider's privacy officer.

Every decision is decided by the policy, kept in the history and audited; the current
state is the latest decision for the agreement's current version.
"""

from __future__ import annotations

from sqlmodel import select

from gateway.models.audit import AuditEntry
from gateway.models.policy import PolicyDecisionRecord
from tests.api.test_auth import assert_problem
from tests.research_api.conftest import AGREEMENT, HHS, NSCR, Study, officer, system

CONSENTS = f"/v1/research/agreements/{AGREEMENT}/consents"
POLITIE, BANK = "politie-noord-nederland", "voorbeeldbank"


def _state(study: Study, who: str, provider: str) -> str:
    providers = study.ok(who, "GET", CONSENTS)["providers"]
    return str(next(p["state"] for p in providers if p["provider"] == provider))


def test_consent_is_recorded_refused_and_revoked_with_its_history(study: Study) -> None:
    assert _state(study, NSCR, POLITIE) == "none"
    given = study.consent(POLITIE)
    assert given["state"] == "consented" and given["decided_by"] == officer(POLITIE)
    assert given["agreement_version"] == 1
    assert _state(study, NSCR, POLITIE) == "consented"

    revoked = study.ok(
        officer(POLITIE), "POST", CONSENTS, json={"decision": "revoke", "note": "DPIA herzien"}
    )
    assert revoked["state"] == "revoked" and revoked["note"] == "DPIA herzien"
    assert _state(study, officer(BANK), POLITIE) == "revoked"
    # only a consent can be revoked
    response = study.call(officer(POLITIE), "POST", CONSENTS, json={"decision": "revoke"})
    assert_problem(response, 409, "consent-not-given")

    assert study.consent(BANK, "refuse")["state"] == "refused"
    assert study.consent(BANK, "consent")["state"] == "consented"

    seen = study.ok(HHS, "GET", CONSENTS)
    assert [(h["provider"], h["decision"]) for h in seen["history"]] == [
        (POLITIE, "consent"),
        (POLITIE, "revoke"),
        (BANK, "refuse"),
        (BANK, "consent"),
    ]
    assert all(h["recorded_by"] == officer(h["provider"]) for h in seen["history"])
    states = {p["provider"]: p["state"] for p in seen["providers"]}
    assert states[POLITIE] == "revoked" and states[BANK] == "consented"
    assert states["gemeente-groningen"] == "none"

    # each decision is a policy decision and an audit entry naming the science partners
    with study.gw.database.read() as session:
        decided = session.exec(
            select(PolicyDecisionRecord).where(
                PolicyDecisionRecord.action == "research:consent:record"
            )
        ).all()
        entries = session.exec(
            select(AuditEntry).where(AuditEntry.event_type == "research:consent:record")
        ).all()
    assert len(decided) == 4 and all(d.allowed for d in decided)
    assert {d.rule_id for d in decided} == {"toestemming-vastleggen"}
    assert len(entries) == 4
    assert all('"nscr"' in e.leaf and '"haagse-hogeschool"' in e.leaf for e in entries)
    assert "DPIA herzien" not in "".join(e.leaf for e in entries)  # the note is a detail


def test_only_a_providers_privacy_officer_records_consent(study: Study) -> None:
    body = {"decision": "consent"}
    # a provider's system or analyst: the policy says no, and the refusal is recorded
    response = study.call(system(POLITIE), "POST", CONSENTS, json=body)
    problem = assert_problem(response, 403, "policy-denied")
    assert problem["rule_id"] == "default-deny"
    response = study.call("politie-noord-nederland.analyst", "POST", CONSENTS, json=body)
    assert_problem(response, 403, "policy-denied")
    # privacy officers of partners that provide nothing under this agreement
    for outsider in ("belastingdienst", "nscr"):
        response = study.call(officer(outsider), "POST", CONSENTS, json=body)
        assert_problem(response, 403, "not-a-provider")
    # researchers and operators
    assert_problem(study.call(NSCR, "POST", CONSENTS, json=body), 403, "not-a-provider")
    response = study.call("riec-noord-nederland.operator", "POST", CONSENTS, json=body)
    assert_problem(response, 403, "policy-denied")
    # unknown agreements and decisions
    response = study.call(
        officer(POLITIE), "POST", "/v1/research/agreements/geen-studie/consents", json=body
    )
    assert_problem(response, 404, "not-found")
    response = study.call(officer(POLITIE), "POST", CONSENTS, json={"decision": "misschien"})
    assert_problem(response, 422, "validation-failed")

    assert _state(study, NSCR, POLITIE) == "none"
    with study.gw.database.read() as session:
        refused = session.exec(
            select(PolicyDecisionRecord).where(
                PolicyDecisionRecord.action == "research:consent:record"
            )
        ).all()
    assert len(refused) == 3 and not any(d.allowed for d in refused)


def test_consents_are_shown_to_privacy_officers_and_researchers_only(study: Study) -> None:
    study.consent(POLITIE)
    for who in (NSCR, HHS, officer(POLITIE), officer("nscr"), officer("riec-noord-nederland")):
        assert study.ok(who, "GET", CONSENTS)["agreement_id"] == AGREEMENT
    for who in (system(POLITIE), officer("belastingdienst"), "riec-noord-nederland.operator"):
        assert_problem(study.call(who, "GET", CONSENTS), 403, "not-entitled")
