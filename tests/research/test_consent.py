"""The consent use case (gateway/research/service/consent.py), called directly on both backends."""

from __future__ import annotations

import pytest
from sqlmodel import select

from gateway.audit.events import AuditEventType
from gateway.errors import PolicyDeniedError
from gateway.models.policy import PolicyDecisionRecord
from gateway.models.research import ResearchConsent
from gateway.research.consent_states import ConsentDecision, ConsentState
from gateway.research.errors import ConsentNotGivenError, NotAProviderError, NotEntitledError
from gateway.research.service.consent import consents, record_consent
from tests.helpers.research import AGREEMENT, NSCR, POLITIE, officer, system
from tests.research.conftest import Service


def test_a_consent_and_its_revocation_are_recorded_with_their_decisions_and_entries(
    service: Service,
) -> None:
    po = service.caller(officer(POLITIE))
    given = record_consent(service.ctx, po, AGREEMENT, ConsentDecision.CONSENT, "na overleg")
    assert given.state is ConsentState.CONSENTED and given.decided_by == po.principal_id
    revoked = record_consent(service.ctx, po, AGREEMENT, ConsentDecision.REVOKE, None)
    assert revoked.state is ConsentState.REVOKED
    leaves = service.leaves(AuditEventType.RESEARCH_CONSENT_RECORD)
    assert [(e["refs"]["consent"], e["refs"]["provider"]) for e in leaves] == [
        ("consent", POLITIE),
        ("revoke", POLITIE),
    ]
    assert all(e["refs"]["agreement"] == AGREEMENT and e["refs"]["rule"] for e in leaves)
    assert all("nscr" in e["parties"] and POLITIE in e["parties"] for e in leaves)
    # both carry details: the decision that allowed each (one entry per change); the
    # consent's also its note
    assert leaves[0]["details_sha256"] and leaves[1]["details_sha256"]
    with service.ctx.db.read() as session:
        stored = session.exec(select(ResearchConsent)).all()
        decided = session.exec(select(PolicyDecisionRecord)).all()
    assert [r.audit_leaf_index for r in stored] == [e["index"] for e in leaves]
    assert [d.allowed for d in decided] == [True, True]


def test_revoking_without_a_consent_stores_nothing(service: Service) -> None:
    po = service.caller(officer(POLITIE))
    with pytest.raises(ConsentNotGivenError):
        record_consent(service.ctx, po, AGREEMENT, ConsentDecision.REVOKE, None)
    assert service.count(ResearchConsent) == 0
    assert service.leaves(AuditEventType.RESEARCH_CONSENT_RECORD) == []


def test_a_providers_system_is_refused_by_the_policy_and_the_refusal_is_on_record(
    service: Service,
) -> None:
    with pytest.raises(PolicyDeniedError):
        record_consent(
            service.ctx, service.caller(system(POLITIE)), AGREEMENT, ConsentDecision.CONSENT, None
        )
    with service.ctx.db.read() as session:
        decided = session.exec(select(PolicyDecisionRecord)).all()
    assert [(d.action, d.allowed) for d in decided] == [("research:consent:record", False)]
    assert service.count(ResearchConsent) == 0


def test_only_providers_record_and_only_the_named_see(service: Service) -> None:
    with pytest.raises(NotAProviderError):
        record_consent(
            service.ctx, service.caller(officer("nscr")), AGREEMENT, ConsentDecision.CONSENT, None
        )
    with pytest.raises(NotEntitledError):
        consents(service.ctx, service.caller(system(POLITIE)), AGREEMENT)
    view = consents(service.ctx, service.caller(NSCR), AGREEMENT)
    assert {p.state for p in view.providers} == {ConsentState.NONE} and view.history == []
