"""The withdrawal use case (gateway/research/service/withdrawal.py), called directly."""

from __future__ import annotations

import pytest
from sqlmodel import select

from gateway.audit.events import AuditEventType
from gateway.errors import InvalidInputError
from gateway.models.research import ResearchWithdrawal
from gateway.research.errors import NotAProviderError
from gateway.research.service.rows import submit_rows
from gateway.research.service.withdrawal import withdraw
from tests.helpers.research import AGREEMENT, ANSWERS, POLITIE, RIEC_INTAKE, system
from tests.research.conftest import Service

RESPONDENT = str(ANSWERS["respondent_id"])


def test_a_withdrawal_is_recorded_once_by_pseudonym_and_refuses_later_rows(
    service: Service,
) -> None:
    intake = service.caller(RIEC_INTAKE)
    stored = submit_rows(
        service.ctx, intake, AGREEMENT, "answers-0001", "vragenlijst-jongeren", [ANSWERS]
    )
    assert stored.rows == 1
    first = withdraw(service.ctx, intake, AGREEMENT, RESPONDENT)
    again = withdraw(service.ctx, intake, AGREEMENT, RESPONDENT)
    assert (first.created, first.rows_excluded) == (True, 1)
    assert (again.created, again.rows_excluded, again.recorded_at) == (
        False,
        1,
        first.recorded_at,
    )
    with service.ctx.db.read() as session:
        (row,) = session.exec(select(ResearchWithdrawal)).all()
    assert RESPONDENT not in row.respondent_key  # only the pseudonym is kept
    (leaf,) = service.leaves(AuditEventType.RESEARCH_RESPONDENT_WITHDRAW)
    assert leaf["refs"]["rows_excluded"] == 1 and leaf["legal_basis"] == "avg-6-1-a"
    assert RESPONDENT not in str(leaf)
    with pytest.raises(InvalidInputError, match="withdrew their consent"):
        submit_rows(
            service.ctx, intake, AGREEMENT, "answers-0002", "vragenlijst-jongeren", [ANSWERS]
        )


def test_only_the_questionnaires_intake_partner_records_withdrawals(service: Service) -> None:
    with pytest.raises(NotAProviderError):
        withdraw(service.ctx, service.caller(system(POLITIE)), AGREEMENT, RESPONDENT)
    assert service.count(ResearchWithdrawal) == 0
