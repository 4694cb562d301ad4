"""The rows intake use case (gateway/research/service/rows.py), called directly on both backends."""

from __future__ import annotations

import pytest

from gateway.audit.events import AuditEventType
from gateway.errors import IdempotencyConflictError, InvalidInputError, PolicyDeniedError
from gateway.models.research import ResearchBatch, ResearchRow
from gateway.research.errors import NotAProviderError
from gateway.research.service.rows import submit_rows
from tests.helpers.research import AGREEMENT, BANK, BANK_ROW, POLICE_ROW, POLITIE, officer, system
from tests.research.conftest import Service

POLICE = "politie-incidenten"


def test_a_retry_is_answered_with_the_stored_batch_and_audited_as_a_replay(
    service: Service,
) -> None:
    police = service.caller(system(POLITIE))
    first = submit_rows(service.ctx, police, AGREEMENT, "intake-0001", POLICE, [POLICE_ROW])
    again = submit_rows(service.ctx, police, AGREEMENT, "intake-0001", POLICE, [POLICE_ROW])
    assert first.created and not again.created
    assert (again.batch_id, again.rows, again.rule_id) == (first.batch_id, 1, first.rule_id)
    assert service.count(ResearchRow) == 1 and service.count(ResearchBatch) == 1
    leaves = service.leaves(AuditEventType.RESEARCH_ROWS_SUBMIT)
    assert [(e["refs"]["batch"], e["refs"]["rows"], e["refs"].get("replay")) for e in leaves] == [
        (first.batch_id, 1, None),
        (first.batch_id, 0, True),
    ]
    instrument = next(i for i in service.ctx.agreements[AGREEMENT].instruments if i.id == POLICE)
    assert {e["legal_basis"] for e in leaves} == {instrument.legal_basis}
    assert all(e["refs"]["rule"] == first.rule_id for e in leaves)


def test_a_key_reused_for_other_rows_is_a_conflict_and_stores_nothing(service: Service) -> None:
    police = service.caller(system(POLITIE))
    submit_rows(service.ctx, police, AGREEMENT, "intake-0002", POLICE, [POLICE_ROW])
    other = {**POLICE_ROW, "offence": "drugshandel"}
    with pytest.raises(IdempotencyConflictError):
        submit_rows(service.ctx, police, AGREEMENT, "intake-0002", POLICE, [other])
    assert service.count(ResearchRow) == 1
    assert len(service.leaves(AuditEventType.RESEARCH_ROWS_SUBMIT)) == 1


def test_who_may_deliver_is_checked_before_anything_is_stored(service: Service) -> None:
    police = service.caller(system(POLITIE))
    with pytest.raises(InvalidInputError):
        submit_rows(service.ctx, police, AGREEMENT, "short", POLICE, [POLICE_ROW])
    with pytest.raises(NotAProviderError):
        submit_rows(
            service.ctx, service.caller(system(BANK)), AGREEMENT, "intake-0003", POLICE, [BANK_ROW]
        )
    with pytest.raises(PolicyDeniedError):
        submit_rows(
            service.ctx,
            service.caller(officer(POLITIE)),
            AGREEMENT,
            "intake-0004",
            POLICE,
            [POLICE_ROW],
        )
    assert service.count(ResearchBatch) == 0
