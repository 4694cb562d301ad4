"""A respondent's withdrawal from a questionnaire study, recorded by its intake partner.

Only the respondent's pseudonym is stored; the respondent is left out of every later
release, and rows for them are refused at intake from then on.
"""

from __future__ import annotations

from sqlalchemy import func
from sqlalchemy.exc import IntegrityError
from sqlmodel import select

from gateway import usecase
from gateway.audit.events import AuditEventType
from gateway.context import AppContext
from gateway.identity.service import Actor, Caller
from gateway.models.research import ResearchRow, ResearchWithdrawal
from gateway.research.agreements import InstrumentKind
from gateway.research.errors import NotAProviderError
from gateway.research.intake import respondent_key
from gateway.research.service.agreement_access import (
    agreement_refs,
    find_agreement,
    provider_ref,
)
from gateway.research.service.results import WithdrawalResult
from gateway.research.subject_index import respondent_persons
from gateway.vocabulary import Role

INTAKE_ROLES = frozenset({Role.PARTNER_SYSTEM, Role.ANALYST, Role.PRIVACY_OFFICER})
"""The roles of a questionnaire's intake partner that record withdrawals."""


def withdraw(
    ctx: AppContext, caller: Caller, agreement_id: str, respondent_id: str
) -> WithdrawalResult:
    """The questionnaire intake partner records a respondent's withdrawal.

    Only the respondent's pseudonym is stored; the respondent is left out of every
    later release. Recording it twice is harmless (``created`` False). Raises
    NotFoundError, NotAProviderError or InvalidInputError.
    """
    agreement = find_agreement(ctx, agreement_id)
    provider_ref(caller, agreement)
    intakes = [
        i
        for i in agreement.instruments
        if i.kind is InstrumentKind.QUESTIONNAIRE and caller.partner_id in i.providers
    ]
    if not intakes or caller.role not in INTAKE_ROLES:
        raise NotAProviderError(
            "only the system, an analyst or the privacy officer of a questionnaire's "
            "intake partner records withdrawals",
            agreement=agreement.id,
        )
    key = respondent_key(ctx.keys.pseudonymiser(agreement.project), respondent_id)
    now = ctx.clock.now()
    actor = Actor.of(caller)
    try:
        with ctx.db.write() as session:
            earlier = session.get(ResearchWithdrawal, (agreement.id, key))
            rows = int(
                session.exec(
                    select(func.count())
                    .select_from(ResearchRow)
                    .where(
                        ResearchRow.agreement_id == agreement.id,
                        ResearchRow.respondent_key == key,
                    )
                ).one()
            )
            if earlier is not None:
                return WithdrawalResult(agreement.id, False, rows, earlier.recorded_at)
            session.add(
                ResearchWithdrawal(
                    agreement_id=agreement.id,
                    respondent_key=key,
                    provider_id=caller.partner_id,
                    recorded_by=caller.principal_id,
                    recorded_at=now,
                )
            )
            usecase.record(
                session,
                ctx.clock,
                actor,
                AuditEventType.RESEARCH_RESPONDENT_WITHDRAW,
                purpose=agreement.purpose,
                legal_basis=intakes[0].legal_basis,
                parties=[p.partner for p in agreement.science_partners],
                persons=respondent_persons(session, agreement.id, key),
                refs=agreement_refs(agreement, rows_excluded=rows),
                retention=ctx.retention.period(i.category for i in intakes),
            )
    except IntegrityError:
        return withdraw(ctx, caller, agreement_id, respondent_id)  # a concurrent twin won
    return WithdrawalResult(agreement.id, True, rows, now)
