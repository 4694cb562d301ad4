"""Moving a case between steps, and closing it.

A case moves when the step it leaves has its output and the policy allows the move
(``steps.plan_transition`` says which moves exist). Closing (step 7, or a no-go at step
2) ends access but for each provider's own records and starts every record's retention.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlmodel import Session, col, select

from gateway.audit.events import AuditEventType
from gateway.context import AppContext
from gateway.errors import InvalidInputError
from gateway.identity.actors import Caller
from gateway.models.cases import Case, CaseOutput, CaseStatus, CaseTransition, Record
from gateway.policy.decision import Action, Decision
from gateway.workflow.access import (
    allow,
    decide,
    load_case,
    new_id,
    next_seq,
    participants,
    record_in_case,
    refusals,
    steers,
)
from gateway.workflow.outputs import add_output
from gateway.workflow.steps import OutputKind, Step, plan_transition
from gateway.workflow.views import CaseView, case_view


def outputs_at_current_step(session: Session, case: Case) -> set[OutputKind]:
    """Return the kinds of output written since the case last entered its current step."""
    entered = session.exec(
        select(CaseTransition.seq)
        .where(CaseTransition.case_id == case.id, CaseTransition.to_step == case.step)
        .order_by(col(CaseTransition.seq).desc())
    ).first()
    query = select(CaseOutput.kind).where(
        CaseOutput.case_id == case.id, CaseOutput.step == case.step
    )
    if entered is not None:
        query = query.where(col(CaseOutput.seq) > entered)
    return {OutputKind(kind) for kind in session.exec(query).all()}


def transition(
    ctx: AppContext,
    caller: Caller,
    case_id: str,
    to_step: int,
    reason: str | None,
    closure_text: str | None = None,
) -> CaseView:
    """Move a case to another step, if its output exists and the policy allows it.

    Moving to step 7 closes the case: access ends except each provider's own records,
    and the retention clock of every record starts. Raises InvalidInputError,
    TransitionNotAllowedError, NotCaseRiecError, NotParticipantError, PolicyDeniedError.
    """
    try:
        target = Step(to_step)
    except ValueError as exc:
        raise InvalidInputError("to_step must be 1 to 7", field="to_step") from exc
    with refusals(ctx, caller, case_id), ctx.db.read() as session:
        case = load_case(session, case_id, caller)
        steers(caller, case)
        plan_transition(
            Step(case.step),
            target,
            outputs_at_current_step(session, case),
            reason,
            closed=case.status != CaseStatus.OPEN,
        )
    request = decide(caller, Action.STEP_TRANSITION, case)
    decision = allow(ctx, caller, request, "this step transition", case_id)
    now = ctx.clock.now()
    with ctx.db.write() as session:
        case = load_case(session, case_id, caller, lock=True)
        move = plan_transition(
            Step(case.step),
            target,
            outputs_at_current_step(session, case),
            reason,
            closed=case.status != CaseStatus.OPEN,
        )
        record_transition(session, case, caller, decision, move.target, reason, now)
        record_in_case(
            session,
            ctx,
            caller,
            AuditEventType.STEP_TRANSITION,
            case,
            decisions=[(request, decision)],
            parties=participants(session, case_id),
            refs={
                "source_step": int(move.source),
                "target_step": int(move.target),
                "backward": move.backward,
            },
        )
        if move.closes:
            if closure_text:
                add_output(
                    ctx, session, case, caller, OutputKind.CLOSURE, {"text": closure_text}, now
                )
            close_case(ctx, session, case, caller, decision, now, None)
        session.add(case)
        session.flush()
        return case_view(session, case)


def record_transition(
    session: Session,
    case: Case,
    caller: Caller,
    decision: Decision,
    target: Step,
    reason: str | None,
    now: datetime,
) -> None:
    """Store the move to ``target`` (who, when, why, which rule) and set the case's step."""
    session.add(
        CaseTransition(
            seq=next_seq(case),
            id=new_id("tr"),
            case_id=case.id,
            from_step=case.step,
            to_step=int(target),
            at=now,
            principal_id=caller.principal_id,
            partner_id=caller.partner_id,
            reason=(reason or None) and reason[:500],
            policy_version=decision.policy_version,
            rule_id=decision.rule_id,
        )
    )
    case.step = int(target)


def close_case(
    ctx: AppContext,
    session: Session,
    case: Case,
    caller: Caller,
    decision: Decision,
    now: datetime,
    reason: str | None,
) -> None:
    """Close a case: step 7, access ends but for providers, record retention starts."""
    if case.step != Step.AFSLUITEN:
        record_transition(session, case, caller, decision, Step.AFSLUITEN, reason, now)
    case.status = CaseStatus.CLOSED
    case.closed_at = now
    for record in session.exec(select(Record).where(Record.case_id == case.id)).all():
        record.retention_until = now + timedelta(days=record.retention_days)
        session.add(record)
    record_in_case(
        session,
        ctx,
        caller,
        AuditEventType.CASE_CLOSE,
        case,
        decision=decision,
        parties=participants(session, case.id),
    )
