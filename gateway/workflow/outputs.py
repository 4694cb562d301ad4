"""Step outputs: storing one sealed, writing the analysis, advice, results or evaluation,
and reading the outputs (the signal included) the policy lets a partner read now.

An advice assigns interventions to participants; the case's own RIEC reads every
intervention, anyone else only its own.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlmodel import Session, col, select

from gateway.audit.events import AuditEventType
from gateway.context import AppContext
from gateway.errors import InvalidInputError
from gateway.identity.actors import Caller
from gateway.models.cases import Case, CaseOutput, CaseStatus
from gateway.policy.decision import Action, Decision, DecisionRequest, Relation
from gateway.workflow import sealing
from gateway.workflow.access import (
    CASE_ROLES,
    allow,
    decide,
    known_term,
    load_case,
    must_be_open,
    new_id,
    next_seq,
    participants,
    readable,
    record_in_case,
    refusals,
    role_may_read,
    steers,
)
from gateway.workflow.errors import TransitionNotAllowedError
from gateway.workflow.steps import OUTPUT_STEP, OutputKind
from gateway.workflow.views import OutputsView, OutputView, output_view

# The data category the policy knows each output kind by.
OUTPUT_CATEGORY: dict[OutputKind, str] = {
    OutputKind.SIGNAL: "signal",
    OutputKind.GO: "go-decision",
    OutputKind.NO_GO: "go-decision",
    OutputKind.ANALYSIS: "analysis",
    OutputKind.ADVICE: "advice",
    OutputKind.RESULTS: "result",
    OutputKind.EVALUATION: "evaluation",
    OutputKind.CLOSURE: "closure",
}
WRITABLE_OUTPUTS = frozenset(
    {OutputKind.ANALYSIS, OutputKind.ADVICE, OutputKind.RESULTS, OutputKind.EVALUATION}
)


@dataclass(frozen=True, slots=True)
class Intervention:
    """An intervention the advice assigns to one partner, for one purpose."""

    partner_id: str
    purpose: str
    description: str


def add_output(
    ctx: AppContext,
    session: Session,
    case: Case,
    caller: Caller,
    kind: OutputKind,
    content: dict[str, Any],
    now: datetime,
    *,
    purpose: str | None = None,
    legal_basis: str | None = None,
    assigned: Sequence[str] = (),
) -> CaseOutput:
    """Store a step output at the case's current step, sealed; the caller holds the lock."""
    output_id = new_id("out")
    output = CaseOutput(
        seq=next_seq(case),
        id=output_id,
        case_id=case.id,
        step=case.step,
        kind=kind.value,
        author_principal_id=caller.principal_id,
        author_partner_id=caller.partner_id,
        created_at=now,
        purpose=purpose,
        legal_basis=legal_basis,
        assigned_partners=json.dumps(list(assigned)),
        content_sealed=sealing.seal_map(ctx.keys, case.id, output_id, content),
    )
    session.add(output)
    return output


def _check_interventions(
    ctx: AppContext, kind: OutputKind, interventions: Sequence[Intervention], taking_part: set[str]
) -> None:
    """Raise InvalidInputError unless an advice (only) assigns known purposes to participants."""
    if kind is not OutputKind.ADVICE:
        if interventions:
            raise InvalidInputError("only an advice has interventions", field="interventions")
        return
    if not interventions:
        raise InvalidInputError(
            "an advice assigns at least one intervention to a partner", field="interventions"
        )
    for item in interventions:
        if item.partner_id not in taking_part:
            raise InvalidInputError(
                "interventions go to partners taking part in the case", field="interventions"
            )
        known_term(ctx, "purpose", item.purpose)


def write_output(
    ctx: AppContext,
    caller: Caller,
    case_id: str,
    kind: OutputKind,
    text: str,
    interventions: Sequence[Intervention] = (),
) -> OutputView:
    """Write the current step's output (analysis, advice, results or evaluation).

    Raises InvalidInputError, TransitionNotAllowedError (wrong step, closed case),
    NotCaseRiecError (results aside), NotParticipantError or PolicyDeniedError.
    """
    if kind not in WRITABLE_OUTPUTS:
        raise InvalidInputError(
            "outputs written here are analysis, advice, results and evaluation", field="kind"
        )
    if not text.strip():
        raise InvalidInputError("an output needs text", field="text")
    with refusals(ctx, caller, case_id), ctx.db.read() as session:
        case = load_case(session, case_id, caller)
        if kind is not OutputKind.RESULTS:  # results are each partner's own
            steers(caller, case)
        taking_part = set(participants(session, case_id))
    must_be_open(case)
    if OUTPUT_STEP[kind] != case.step:
        raise TransitionNotAllowedError(
            f"a {kind.value} is written at step {int(OUTPUT_STEP[kind])}, "
            f"the case is at step {case.step}"
        )
    _check_interventions(ctx, kind, interventions, taking_part)
    request = decide(
        caller, Action.OUTPUT_WRITE, case, category=OUTPUT_CATEGORY[kind], relation=Relation.OWN
    )
    decision = allow(ctx, caller, request, f"writing the {kind.value}", case_id)
    now = ctx.clock.now()
    content: dict[str, Any] = {"text": text}
    if interventions:
        content["interventions"] = [
            {"partner": i.partner_id, "purpose": i.purpose, "description": i.description}
            for i in interventions
        ]
    with ctx.db.write() as session:
        case = load_case(session, case_id, caller, lock=True)
        if case.step != OUTPUT_STEP[kind] or case.status != CaseStatus.OPEN:
            raise TransitionNotAllowedError("the case moved on; the output was not stored")
        assigned = sorted({i.partner_id for i in interventions})
        output = add_output(ctx, session, case, caller, kind, content, now, assigned=assigned)
        record_in_case(
            session,
            ctx,
            caller,
            AuditEventType.OUTPUT_WRITE,
            case,
            decisions=[(request, decision)],
            parties=assigned,
            refs={"output": output.id, "kind": kind.value},
        )
        return output_view(output, content)


def read_outputs(ctx: AppContext, caller: Caller, case_id: str) -> OutputsView:
    """Return the outputs (signal included) the caller may read at the case's step.

    Roles outside the case's work get RoleNotInCaseError (audited), not counts; a
    shredded case raises KeyShreddedError. Every decision and the read are recorded.
    """
    with refusals(ctx, caller, case_id), ctx.db.read() as session:
        role_may_read(caller, CASE_ROLES)
        case = load_case(session, case_id, caller)
        readable(ctx, case)
        outputs = session.exec(
            select(CaseOutput).where(CaseOutput.case_id == case_id).order_by(col(CaseOutput.seq))
        ).all()
    pairs: list[tuple[DecisionRequest, Decision]] = []
    shown: list[OutputView] = []
    for output in outputs:
        kind = OutputKind(output.kind)
        own = output.author_partner_id == caller.partner_id
        request = decide(
            caller,
            Action.SIGNAL_READ if kind is OutputKind.SIGNAL else Action.OUTPUT_READ,
            case,
            category=OUTPUT_CATEGORY[kind],
            relation=Relation.OWN if own else Relation.OTHER,
        )
        decision = ctx.policy.decide(request)
        pairs.append((request, decision))
        if not decision.allowed:
            continue
        content = sealing.open_map(ctx.keys, case_id, output.id, output.content_sealed)
        # the case's own RIEC sees every intervention; anyone else (another RIEC too) its own
        if kind is OutputKind.ADVICE and caller.partner_id != case.riec_partner_id and not own:
            content["interventions"] = [
                i for i in content.get("interventions", []) if i["partner"] == caller.partner_id
            ]
        shown.append(output_view(output, content))
    withheld = len(outputs) - len(shown)
    with ctx.db.write() as session:
        record_in_case(
            session,
            ctx,
            caller,
            AuditEventType.OUTPUT_READ,
            case,
            decisions=pairs,
            decision=pairs[0][1] if pairs else None,
            parties={o.author_partner for o in shown},
            refs={"returned": len(shown), "withheld": withheld},
        )
    return OutputsView(case_id=case_id, step=case.step, outputs=shown, withheld=withheld)
