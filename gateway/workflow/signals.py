"""Step 1 and the case itself: submitting a signal, listing and reading cases, and the
RIEC adding partners to a case.

A signal opens a case with the submitter and the RIEC as participants; its subjects are
stored as keyed indexes and sealed values, its text as a sealed output.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlmodel import col, select

from gateway.audit.events import AuditEventType
from gateway.context import AppContext
from gateway.errors import ConflictError, InvalidInputError, NotFoundError
from gateway.identity.actors import Caller
from gateway.models.cases import Case, CaseParticipant, CaseStatus, CaseSubject
from gateway.models.partners import Partner
from gateway.policy.decision import NONE, Action, Relation
from gateway.workflow import sealing
from gateway.workflow.access import (
    CASE_VIEW_ROLES,
    SIGNAL_PURPOSE,
    SubjectIn,
    allow,
    decide,
    load_case,
    must_be_open,
    new_id,
    persons_of_input,
    record_in_case,
    refusals,
    role_may_read,
    steers,
    subjects_of_input,
)
from gateway.workflow.outputs import add_output
from gateway.workflow.steps import OutputKind, Process, Step
from gateway.workflow.views import CaseView, case_view


def submit_signal(
    ctx: AppContext,
    caller: Caller,
    *,
    process: str,
    riec_partner_id: str,
    legal_basis: str,
    description: str,
    subjects: Sequence[SubjectIn],
) -> CaseView:
    """Step 1: a partner submits a signal; a case opens with the submitter and the RIEC.

    Only the RIEC and the submitter can read the signal. Raises PolicyDeniedError,
    InvalidInputError (unknown process, RIEC, basis or identifier) or NotFoundError.
    """
    try:
        Process(process)
    except ValueError as exc:
        raise InvalidInputError("unknown work process", field="process") from exc
    if not description.strip():
        raise InvalidInputError("a signal needs a description", field="description")
    request = decide(
        caller,
        Action.SIGNAL_SUBMIT,
        None,
        process=process,
        step=Step.INDIENEN_SIGNAAL,
        purpose=SIGNAL_PURPOSE,
        category="signal",
        legal_basis=legal_basis,
        relation=Relation.OWN,
    )
    decision = allow(ctx, caller, request, "submitting this signal", None)
    found = subjects_of_input(ctx, subjects)
    now = ctx.clock.now()
    case_id = new_id("case")
    with ctx.db.write() as session:
        riec = session.get(Partner, riec_partner_id)
        if riec is None or riec.kind != "riec" or not riec.active:
            raise InvalidInputError("riec must name an active RIEC partner", field="riec")
        ctx.keys.create_case_key(case_id)
        case = Case(
            id=case_id,
            process=process,
            step=Step.INDIENEN_SIGNAAL,
            status=CaseStatus.OPEN,
            riec_partner_id=riec.id,
            created_by=caller.principal_id,
            created_at=now,
        )
        session.add(case)
        session.flush()
        for partner_id in {caller.partner_id, riec.id}:
            session.add(
                CaseParticipant(
                    case_id=case_id,
                    partner_id=partner_id,
                    added_by=caller.principal_id,
                    added_at=now,
                )
            )
        output = add_output(
            ctx,
            session,
            case,
            caller,
            OutputKind.SIGNAL,
            {
                "description": description,
                # as the submitter wrote them; the indexes use the canonical form
                "subjects": [{"type": s.id_type, "value": s.value.strip()} for s in subjects],
            },
            now,
            purpose=SIGNAL_PURPOSE,
            legal_basis=legal_basis,
        )
        for s in found:
            session.add(
                CaseSubject(
                    case_id=case_id,
                    subject_key=s.key,
                    id_type=s.id_type,
                    value_sealed=sealing.seal_value(ctx.keys, case_id, s.key, "value", s.value),
                )
            )
        record_in_case(
            session,
            ctx,
            caller,
            AuditEventType.SIGNAL_SUBMIT,
            case,
            decisions=[(request, decision)],
            persons=persons_of_input(ctx, subjects),
            parties=[riec.id],
            purpose=SIGNAL_PURPOSE,
            legal_basis=legal_basis,
            refs={"output": output.id},
        )
        return case_view(session, case)


def list_cases(ctx: AppContext, caller: Caller) -> list[CaseView]:
    """Return the cases the caller's partner takes part in, newest first.

    Raises RoleNotInCaseError (audited) for roles that see no cases.
    """
    with refusals(ctx, caller, None), ctx.db.read() as session:
        role_may_read(caller, CASE_VIEW_ROLES)
        cases = session.exec(
            select(Case)
            .join(CaseParticipant, col(CaseParticipant.case_id) == col(Case.id))
            .where(CaseParticipant.partner_id == caller.partner_id)
            .order_by(col(Case.created_at).desc())
        ).all()
        return [case_view(session, c) for c in cases]


def get_case(ctx: AppContext, caller: Caller, case_id: str) -> CaseView:
    """Return one case's state; participants in a case role or privacy officers only.

    Raises RoleNotInCaseError or NotParticipantError (both audited), NotFoundError.
    """
    with refusals(ctx, caller, case_id), ctx.db.read() as session:
        role_may_read(caller, CASE_VIEW_ROLES)
        return case_view(session, load_case(session, case_id, caller))


def add_participant(ctx: AppContext, caller: Caller, case_id: str, partner_id: str) -> CaseView:
    """The RIEC adds a partner to an open case. Raises PolicyDeniedError, NotFoundError.

    The policy decides on the added partner's kind too (as ``provider_kind``): banks,
    telecom and science partners take part only where a rule allows their kind. Also
    raises ConflictError for a partner already taking part, NotCaseRiecError and
    NotParticipantError (audited).
    """
    with refusals(ctx, caller, case_id), ctx.db.read() as session:
        case = load_case(session, case_id, caller)
        steers(caller, case)
        added = session.get(Partner, partner_id)
        # an unknown partner is decided as "none", so a caller without the right
        # learns nothing about which partners exist
        added_kind = added.kind if added is not None and added.active else NONE
    must_be_open(case)
    request = decide(caller, Action.PARTICIPANT_ADD, case, provider_kind=added_kind)
    decision = allow(ctx, caller, request, "adding a partner to this case", case_id)
    now = ctx.clock.now()
    with ctx.db.write() as session:
        case = load_case(session, case_id, caller, lock=True)
        must_be_open(case)
        partner = session.get(Partner, partner_id)
        if partner is None or not partner.active:
            raise NotFoundError("no active partner with that id", field="partner_id")
        if session.get(CaseParticipant, (case_id, partner_id)) is not None:
            raise ConflictError("that partner already takes part in the case")
        session.add(
            CaseParticipant(
                case_id=case_id, partner_id=partner_id, added_by=caller.principal_id, added_at=now
            )
        )
        record_in_case(
            session,
            ctx,
            caller,
            AuditEventType.PARTICIPANT_ADD,
            case,
            decisions=[(request, decision)],
            parties=[partner_id],
            refs={"partner": partner_id},
        )
        session.flush()
        return case_view(session, case)
