"""Case routes: signals, participants, hit/no-hit, go/no-go, outputs, steps (records: api/records).

Identifiers travel in request bodies only, never in URLs. Every route calls one
workflow use case; the policy, sealing and audit happen below.
"""

from __future__ import annotations

from fastapi import APIRouter, status

from gateway.api.deps import Ctx, CurrentCaller
from gateway.schemas.cases import (
    GoDecisionIn,
    HitQueryIn,
    HoldingsIn,
    HoldingsOut,
    OutputIn,
    ParticipantIn,
    SignalIn,
    TransitionIn,
)
from gateway.workflow import hits, outputs, signals, transitions
from gateway.workflow.access import SubjectIn
from gateway.workflow.outputs import Intervention
from gateway.workflow.steps import OutputKind
from gateway.workflow.views import (
    CaseView,
    HitResult,
    OutputsView,
    OutputView,
)

router = APIRouter(prefix="/v1", tags=["cases"])


@router.post("/signals", status_code=status.HTTP_201_CREATED, summary="Submit a signal (step 1)")
def submit_signal(body: SignalIn, caller: CurrentCaller, ctx: Ctx) -> CaseView:
    """Open a case with a signal; only the RIEC and the submitter can read it."""
    return signals.submit_signal(
        ctx,
        caller,
        process=body.process,
        riec_partner_id=body.riec,
        legal_basis=body.legal_basis,
        description=body.description,
        subjects=[SubjectIn(i.type, i.value, i.person) for i in body.subjects],
    )


@router.get("/cases", summary="The cases the caller's partner takes part in")
def list_cases(caller: CurrentCaller, ctx: Ctx) -> list[CaseView]:
    """Return the caller's cases, newest first."""
    return signals.list_cases(ctx, caller)


@router.get("/cases/{case_id}", summary="A case's state")
def get_case(case_id: str, caller: CurrentCaller, ctx: Ctx) -> CaseView:
    """Return step, status, participants and transitions; participants only."""
    return signals.get_case(ctx, caller, case_id)


@router.post("/cases/{case_id}/participants", summary="Add a partner to a case (RIEC)")
def add_participant(case_id: str, body: ParticipantIn, caller: CurrentCaller, ctx: Ctx) -> CaseView:
    """Add a partner to an open case."""
    return signals.add_participant(ctx, caller, case_id, body.partner_id)


@router.post("/holdings", summary="Register identifiers the caller's partner holds (keyed hashes)")
def register_holdings(body: HoldingsIn, caller: CurrentCaller, ctx: Ctx) -> HoldingsOut:
    """Store keyed indexes of identifiers the partner holds, for hit/no-hit at step 2."""
    added = hits.register_holdings(
        ctx, caller, body.category, [SubjectIn(i.type, i.value, i.person) for i in body.identifiers]
    )
    return HoldingsOut(added=added)


@router.post("/cases/{case_id}/hits", summary="Hit/no-hit on a subject (step 2, RIEC)")
def hit_query(case_id: str, body: HitQueryIn, caller: CurrentCaller, ctx: Ctx) -> HitResult:
    """Ask which participants hold information on a subject: yes or no each."""
    return hits.hit_query(
        ctx, caller, case_id, SubjectIn(body.identifier.type, body.identifier.value)
    )


@router.post("/cases/{case_id}/decision", summary="Record go or no-go (step 2, RIEC)")
def record_decision(case_id: str, body: GoDecisionIn, caller: CurrentCaller, ctx: Ctx) -> CaseView:
    """Record the go (with purpose and legal basis) or the no-go that closes the case."""
    return hits.record_go_decision(
        ctx,
        caller,
        case_id,
        go=body.decision == "go",
        purpose=body.purpose,
        legal_basis=body.legal_basis,
        motivation=body.motivation,
    )


@router.post(
    "/cases/{case_id}/outputs", status_code=status.HTTP_201_CREATED, summary="Write a step output"
)
def write_output(case_id: str, body: OutputIn, caller: CurrentCaller, ctx: Ctx) -> OutputView:
    """Write the analysis, the advice (with interventions), results or the evaluation."""
    return outputs.write_output(
        ctx,
        caller,
        case_id,
        OutputKind(body.kind),
        body.text,
        [Intervention(i.partner_id, i.purpose, i.description) for i in body.interventions],
    )


@router.get("/cases/{case_id}/outputs", summary="The outputs the caller may read")
def read_outputs(case_id: str, caller: CurrentCaller, ctx: Ctx) -> OutputsView:
    """Return the signal and step outputs the policy lets the caller read now."""
    return outputs.read_outputs(ctx, caller, case_id)


@router.post("/cases/{case_id}/transitions", summary="Move the case to another step (RIEC)")
def transition(case_id: str, body: TransitionIn, caller: CurrentCaller, ctx: Ctx) -> CaseView:
    """Move forward one step (its output must exist) or back to 3 from 4 or 5 with a reason."""
    return transitions.transition(ctx, caller, case_id, body.to_step, body.reason, body.closure)
