"""A legal basis belongs to the partner that invokes it, through the case API.

A gemeente cannot submit a signal under the police's Wpg art. 20, nor share a record
under another partner's basis; the RIEC cannot record the go decision under a partner's
basis. Each refusal is a 403 problem ``legal-basis-not-own`` naming the derived rule,
stores nothing, and is recorded as a decision with its audit entry.
"""

from __future__ import annotations

from typing import Any

import pytest
from sqlmodel import col, func, select

from gateway.demo import BELASTING, GEMEENTE, POLITIE
from gateway.demo_data import SIGNAL
from gateway.models.audit import AuditEntry
from gateway.models.cases import Case, CaseOutput, Record
from gateway.models.policy import PolicyDecisionRecord
from tests.conftest import Gateway
from tests.helpers.cases import POLICE_RECORD, go, start_case
from tests.helpers.problems import assert_problem

MUNICIPAL_RECORD: dict[str, Any] = {
    "category": "municipal",
    "legal_basis": "avg-6-1-e",
    "purposes": ["integrale-aanpak-ondermijning"],
    "onward": "never",
    "retention_days": 365,
    "fields": {
        "kvk": "99123456",
        "address": "Werkplaatsweg 1, Drachten",
        "postcode": "9203 AB",
        "permit_type": "exploitatie",
        "issued_on": "2024-05-01",
        "remarks": "Vergunning voor een scooterwerkplaats.",
    },
    "summary": "Exploitatievergunning scooterwerkplaats.",
}


def refusals(gateway: Gateway) -> list[tuple[str, str, bool, str]]:
    with gateway.database.read() as session:
        rows = session.exec(
            select(PolicyDecisionRecord).order_by(col(PolicyDecisionRecord.id))
        ).all()
        audited = {e.entry_id: e.event_type for e in session.exec(select(AuditEntry)).all()}
    # each decision names its entry: a refusal's own, an allowed change's the change's
    assert all(r.audit_entry_id in audited for r in rows)
    assert all(audited[r.audit_entry_id] == "policy:decision:record" for r in rows if not r.allowed)
    return [(r.action, r.legal_basis, r.allowed, r.rule_id) for r in rows if not r.allowed]


@pytest.mark.parametrize(
    ("who", "basis", "rule"),
    [
        (GEMEENTE, "wpg-20", "eigen-grondslag-gemeente"),
        (GEMEENTE, "wjsg-39f", "eigen-grondslag-gemeente"),
        (GEMEENTE, "riec-convenant", "eigen-grondslag-gemeente"),
        (BELASTING, "wpg-20", "eigen-grondslag-belastingdienst"),
        (POLITIE, "awr-43c", "eigen-grondslag-politie"),
    ],
)
def test_a_signal_under_another_partners_basis_is_refused_and_opens_no_case(
    gateway: Gateway, who: str, basis: str, rule: str
) -> None:
    response = gateway.client.post(
        "/v1/signals", json={**SIGNAL, "legal_basis": basis}, headers=gateway.auth(who)
    )
    body = assert_problem(response, 403, "legal-basis-not-own")
    assert body["title"] == "Legal basis not the partner's own"
    assert body["rule_id"] == rule
    assert "legal basis of its own" in body["reason"]
    with gateway.database.read() as session:
        assert session.exec(select(func.count()).select_from(Case)).one() == 0
        assert session.exec(select(func.count()).select_from(CaseOutput)).one() == 0
    assert refusals(gateway) == [("case:signal:submit", basis, False, rule)]


def test_a_municipality_signals_under_its_own_basis(gateway: Gateway) -> None:
    for basis in ("avg-6-1-e", "avg-10-uavg-33", "suwi-64"):
        response = gateway.client.post(
            "/v1/signals", json={**SIGNAL, "legal_basis": basis}, headers=gateway.auth(GEMEENTE)
        )
        assert response.status_code == 201, response.text


def test_a_municipality_cannot_share_under_the_police_or_tax_basis(gateway: Gateway) -> None:
    walk = start_case(gateway)
    go(walk)
    for basis in ("wpg-20", "awr-43c", "wjsg-39f"):
        record = {**MUNICIPAL_RECORD, "legal_basis": basis}
        body = assert_problem(walk.share(GEMEENTE, record), 403, "legal-basis-not-own")
        assert body["rule_id"] == "eigen-grondslag-gemeente"
        # the same key again is refused again: a retry is no way past the basis
        again = walk.share(GEMEENTE, record, key=f"retry-{basis}")
        assert_problem(again, 403, "legal-basis-not-own")
        assert_problem(
            walk.share(GEMEENTE, record, key=f"retry-{basis}"), 403, "legal-basis-not-own"
        )
    assert walk.share(GEMEENTE, MUNICIPAL_RECORD).status_code == 201
    wrong = {**POLICE_RECORD, "legal_basis": "avg-6-1-e"}
    body = assert_problem(walk.share(POLITIE, wrong), 403, "legal-basis-not-own")
    assert body["rule_id"] == "eigen-grondslag-politie"
    with gateway.database.read() as session:
        assert session.exec(select(func.count()).select_from(Record)).one() == 1
    shared = [r for r in refusals(gateway) if r[0] == "case:record:share"]
    assert len(shared) == 10
    assert {r[3] for r in shared} == {"eigen-grondslag-gemeente", "eigen-grondslag-politie"}


def test_the_go_decision_names_a_basis_of_the_riec(gateway: Gateway) -> None:
    walk = start_case(gateway)
    response = walk.call(
        "riec-noord-nederland.riec-analyst",
        "POST",
        walk.case("/decision"),
        json={
            "decision": "go",
            "purpose": "integrale-aanpak-ondermijning",
            "legal_basis": "wpg-20",
            "motivation": "Stuurploeg.",
        },
    )
    body = assert_problem(response, 403, "legal-basis-not-own")
    assert body["rule_id"] == "eigen-grondslag-riec"
    case = walk.ok("riec-noord-nederland.riec-analyst", "GET", walk.case())
    assert case["step"] == 2 and case["legal_basis"] is None
