"""Step 2: holdings, hit/no-hit, and the go/no-go decision.

Partners register keyed indexes of the subjects they hold information on (never the
identifiers); the case's RIEC asks which participants hold something on a subject and
learns yes or no per partner, never content; the stuurploeg's go sets the case's
purpose and legal basis, its no-go closes the case.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlmodel import col, select

from gateway.audit.events import AuditEventType
from gateway.context import AppContext
from gateway.errors import InvalidInputError, PermissionDeniedError
from gateway.identity.actors import Caller
from gateway.models.cases import CaseStatus, Holding, Record, RecordSubject
from gateway.policy.decision import Action
from gateway.vocabulary import Role
from gateway.workflow.access import (
    SIGNAL_PURPOSE,
    SubjectIn,
    allow,
    decide,
    load_case,
    must_be_open,
    participants,
    persons_of_input,
    record_in_case,
    refusals,
    steers,
    subjects_of_input,
)
from gateway.workflow.errors import TransitionNotAllowedError
from gateway.workflow.outputs import add_output
from gateway.workflow.steps import OutputKind, Step
from gateway.workflow.subjects import subject
from gateway.workflow.transitions import close_case
from gateway.workflow.views import CaseView, HitResult, case_view


def register_holdings(
    ctx: AppContext, caller: Caller, category: str, identifiers: Sequence[SubjectIn]
) -> int:
    """Record that the caller's partner holds information on these subjects.

    Only keyed indexes are stored. Returns how many new index entries were added.
    Raises PermissionDeniedError (audited) for roles other than a partner's system or
    analyst, InvalidInputError for an unknown category or identifier.
    """
    with refusals(ctx, caller, None):
        if caller.role not in (Role.PARTNER_SYSTEM, Role.ANALYST):
            raise PermissionDeniedError("only a partner's system or analyst registers holdings")
    try:
        ctx.policy.compiled.vocabulary.schema(category)
    except KeyError as exc:
        raise InvalidInputError("unknown category", field="category") from exc
    found = subjects_of_input(ctx, identifiers)
    now = ctx.clock.now()
    added = 0
    with ctx.db.write() as session:
        for s in found:
            if session.get(Holding, (caller.partner_id, s.key, category)) is None:
                session.add(
                    Holding(
                        partner_id=caller.partner_id,
                        subject_key=s.key,
                        category=category,
                        id_type=s.id_type,
                        registered_at=now,
                    )
                )
                added += 1
        record_in_case(
            session,
            ctx,
            caller,
            AuditEventType.HOLDINGS_REGISTER,
            None,
            persons=persons_of_input(ctx, identifiers),
            refs={"category": category, "added": added},
        )
    return added


def hit_query(ctx: AppContext, caller: Caller, case_id: str, identifier: SubjectIn) -> HitResult:
    """Step 2: which participants hold information on a subject? Yes or no, never content.

    The case's RIEC asks; the answer covers every other participant, from holdings and
    shared records. Raises NotCaseRiecError, NotParticipantError, PolicyDeniedError.
    """
    with refusals(ctx, caller, case_id), ctx.db.read() as session:
        case = load_case(session, case_id, caller)
        steers(caller, case)
    must_be_open(case)
    request = decide(caller, Action.HIT_QUERY, case, purpose=SIGNAL_PURPOSE, category="hit-result")
    decision = allow(ctx, caller, request, "a hit/no-hit query", case_id)
    found = subject(ctx.keys, identifier.id_type, identifier.value)
    with ctx.db.write() as session:
        asked = [p for p in participants(session, case_id) if p != caller.partner_id]
        holders = set(
            session.exec(
                select(Holding.partner_id).where(
                    Holding.subject_key == found.key, col(Holding.partner_id).in_(asked)
                )
            ).all()
        )
        holders |= set(
            session.exec(
                select(Record.provider_partner_id)
                .join(RecordSubject, col(RecordSubject.record_id) == col(Record.id))
                .where(
                    RecordSubject.subject_key == found.key,
                    col(Record.provider_partner_id).in_(asked),
                )
            ).all()
        )
        hits = {p: p in holders for p in asked}
        record_in_case(
            session,
            ctx,
            caller,
            AuditEventType.HIT_QUERY,
            case,
            decisions=[(request, decision)],
            persons=[[(found.id_type, found.key)]],
            parties=asked,
            purpose=SIGNAL_PURPOSE,
            details={"hits": sorted(p for p, hit in hits.items() if hit)},
            refs={"asked": len(asked), "hits": len(holders)},
        )
    return HitResult(case_id=case_id, hits=hits, policy_version=decision.policy_version)


def record_go_decision(
    ctx: AppContext,
    caller: Caller,
    case_id: str,
    *,
    go: bool,
    purpose: str,
    legal_basis: str,
    motivation: str,
) -> CaseView:
    """Step 2: record the stuurploeg's go (purpose and legal basis) or no-go (closes).

    Raises TransitionNotAllowedError away from step 2 or on a closed case,
    NotCaseRiecError, NotParticipantError, PolicyDeniedError.
    """
    with refusals(ctx, caller, case_id), ctx.db.read() as session:
        case = load_case(session, case_id, caller)
        steers(caller, case)
    must_be_open(case)
    if case.step != Step.VERKENNEN:
        raise TransitionNotAllowedError("a go/no-go decision is recorded at step 2 (Verkennen)")
    request = decide(
        caller,
        Action.DECISION_RECORD,
        case,
        purpose=purpose,
        category="go-decision",
        legal_basis=legal_basis,
    )
    decision = allow(ctx, caller, request, "recording this decision", case_id)
    now = ctx.clock.now()
    kind = OutputKind.GO if go else OutputKind.NO_GO
    with ctx.db.write() as session:
        case = load_case(session, case_id, caller, lock=True)
        if case.step != Step.VERKENNEN or case.status != CaseStatus.OPEN:
            raise TransitionNotAllowedError("the case moved on; the decision was not recorded")
        output = add_output(
            ctx,
            session,
            case,
            caller,
            kind,
            {"motivation": motivation},
            now,
            purpose=purpose,
            legal_basis=legal_basis,
        )
        if go:
            case.purpose, case.legal_basis = purpose, legal_basis
        record_in_case(
            session,
            ctx,
            caller,
            AuditEventType.GO_DECISION,
            case,
            decisions=[(request, decision)],
            parties=participants(session, case_id),
            purpose=purpose,
            legal_basis=legal_basis,
            refs={"output": output.id, "go": go},
        )
        if not go:
            close_case(ctx, session, case, caller, decision, now, "no-go: the case stops")
        session.add(case)
        session.flush()
        return case_view(session, case)
