"""Research rows: authority before idempotency, and a provider's own legal basis.

A retry (same Idempotency-Key and content) is answered with the stored batch only to a
caller the policy lets deliver now, and the replay is audited; a principal without that
right gets the refusal, not the replay. Rows under a basis the provider's kind does not
invoke (a bank under the police's research basis) are refused, even if an agreement
loaded in memory named that basis.
"""

from __future__ import annotations

import json
from typing import Any

from sqlmodel import col, func, select

from gateway.models.audit import AuditEntry
from gateway.models.policy import PolicyDecisionRecord
from gateway.models.research import ResearchBatch, ResearchRow
from tests.api.test_auth import assert_problem
from tests.helpers.research import BANK, BANK_ROW, POLICE_ROW, POLITIE
from tests.research_api.conftest import AGREEMENT, Study, officer, system


def counts(study: Study) -> tuple[int, int]:
    with study.gw.database.read() as session:
        return (
            session.exec(select(func.count()).select_from(ResearchBatch)).one(),
            session.exec(select(func.count()).select_from(ResearchRow)).one(),
        )


def row_events(study: Study) -> list[dict[str, Any]]:
    with study.gw.database.read() as session:
        entries = session.exec(
            select(AuditEntry)
            .where(AuditEntry.event_type == "research:rows:submit")
            .order_by(col(AuditEntry.leaf_index))
        ).all()
    return [json.loads(entry.leaf)["refs"] for entry in entries]


def test_a_retry_by_a_principal_without_rights_is_refused_not_answered(study: Study) -> None:
    key = "retry-authority-0001"
    first = study.submit(system(POLITIE), "politie-incidenten", [POLICE_ROW], key=key)
    assert first.status_code == 201, first.text
    # the police's privacy officer is of the provider, but may not deliver rows
    response = study.submit(officer(POLITIE), "politie-incidenten", [POLICE_ROW], key=key)
    body = assert_problem(response, 403, "policy-denied")
    assert "batch_id" not in response.text and first.json()["batch_id"] not in response.text
    assert body["rule_id"] == "default-deny"
    assert counts(study) == (1, 1)
    with study.gw.database.read() as session:
        refused = session.exec(
            select(PolicyDecisionRecord).where(
                PolicyDecisionRecord.actor_principal_id == officer(POLITIE)
            )
        ).all()
    assert [(r.action, r.allowed) for r in refused] == [("research:rows:submit", False)]


def test_a_retry_after_the_right_is_gone_is_refused(study: Study) -> None:
    key = "retry-authority-0002"
    first = study.submit(system(BANK), "bank-money-mule-signalen", [BANK_ROW], key=key)
    assert first.status_code == 201, first.text
    ctx = study.gw.client.app.state.ctx  # type: ignore[attr-defined]
    agreement = ctx.agreements[AGREEMENT]
    instruments = tuple(
        i.model_copy(update={"legal_basis": "wpg-22-bpg-4-7"})
        if i.id == "bank-money-mule-signalen"
        else i
        for i in agreement.instruments
    )
    ctx.agreements[AGREEMENT] = agreement.model_copy(update={"instruments": instruments})
    response = study.submit(system(BANK), "bank-money-mule-signalen", [BANK_ROW], key=key)
    assert_problem(response, 403, "legal-basis-not-own")
    assert counts(study) == (1, 1)


def test_an_allowed_retry_is_answered_and_audited_as_a_replay(study: Study) -> None:
    key = "retry-authority-0003"
    first = study.submit(system(POLITIE), "politie-incidenten", [POLICE_ROW], key=key)
    again = study.submit(system(POLITIE), "politie-incidenten", [POLICE_ROW], key=key)
    assert again.status_code == 200 and again.json() == {**first.json(), "created": False}
    events = row_events(study)
    assert len(events) == 2
    assert events[0].get("replay") is None and events[0]["rows"] == 1
    assert events[1]["replay"] is True and events[1]["batch"] == first.json()["batch_id"]
    assert counts(study) == (1, 1)


def test_a_bank_delivering_under_a_police_research_basis_is_refused(study: Study) -> None:
    ctx = study.gw.client.app.state.ctx  # type: ignore[attr-defined]
    agreement = ctx.agreements[AGREEMENT]
    for basis in ("wpg-22-bpg-4-7", "wjsg-15-39g"):
        instruments = tuple(
            i.model_copy(update={"legal_basis": basis}) if i.id == "bank-money-mule-signalen" else i
            for i in agreement.instruments
        )
        ctx.agreements[AGREEMENT] = agreement.model_copy(update={"instruments": instruments})
        response = study.submit(system(BANK), "bank-money-mule-signalen", [BANK_ROW])
        body = assert_problem(response, 403, "legal-basis-not-own")
        assert body["rule_id"] == "eigen-grondslag-bank"
        assert body["title"] == "Legal basis not the partner's own"
    assert counts(study) == (0, 0)
    with study.gw.database.read() as session:
        refused = session.exec(
            select(PolicyDecisionRecord).where(PolicyDecisionRecord.allowed == False)  # noqa: E712
        ).all()
    assert [(r.legal_basis, r.rule_id) for r in refused] == [
        ("wpg-22-bpg-4-7", "eigen-grondslag-bank"),
        ("wjsg-15-39g", "eigen-grondslag-bank"),
    ]
