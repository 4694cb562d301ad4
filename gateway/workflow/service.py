"""The case workflow's use cases behind one face, for callers written against ``Workflow``.

Each use case lives in the module of its step or kind (``signals``, ``hits``,
``outputs``, ``transitions``, ``records``), with who may act in ``access`` and the
answers in ``views``; this facade only binds them to one gateway context. Every use
case asks the policy first and records through ``gateway.usecase``: a refusal is on
the record even though nothing changed; an allowed change commits with its decisions
and its audit entry, or not at all.
"""

from __future__ import annotations

from collections.abc import Sequence

from gateway.context import AppContext
from gateway.identity.actors import Caller
from gateway.workflow import hits, outputs, reading, records, signals, transitions
from gateway.workflow.access import SubjectIn
from gateway.workflow.outputs import Intervention
from gateway.workflow.records import RecordIn
from gateway.workflow.steps import OutputKind
from gateway.workflow.views import (
    CaseView,
    HitResult,
    OutputsView,
    OutputView,
    RecordsView,
    ShareResult,
)

__all__ = ["Workflow"]


class Workflow:
    """The case use cases, bound to one gateway context (each delegates to its module)."""

    def __init__(self, ctx: AppContext) -> None:
        self.ctx = ctx

    def submit_signal(
        self,
        caller: Caller,
        *,
        process: str,
        riec_partner_id: str,
        legal_basis: str,
        description: str,
        subjects: Sequence[SubjectIn],
    ) -> CaseView:
        """Step 1: open a case with a signal (``signals.submit_signal``)."""
        return signals.submit_signal(
            self.ctx,
            caller,
            process=process,
            riec_partner_id=riec_partner_id,
            legal_basis=legal_basis,
            description=description,
            subjects=subjects,
        )

    def list_cases(self, caller: Caller) -> list[CaseView]:
        """Return the caller's cases, newest first (``signals.list_cases``)."""
        return signals.list_cases(self.ctx, caller)

    def get_case(self, caller: Caller, case_id: str) -> CaseView:
        """Return one case's state (``signals.get_case``)."""
        return signals.get_case(self.ctx, caller, case_id)

    def add_participant(self, caller: Caller, case_id: str, partner_id: str) -> CaseView:
        """The RIEC adds a partner to an open case (``signals.add_participant``)."""
        return signals.add_participant(self.ctx, caller, case_id, partner_id)

    def register_holdings(
        self, caller: Caller, category: str, identifiers: Sequence[SubjectIn]
    ) -> int:
        """Register keyed indexes of held subjects; return how many were new (``hits``)."""
        return hits.register_holdings(self.ctx, caller, category, identifiers)

    def hit_query(self, caller: Caller, case_id: str, identifier: SubjectIn) -> HitResult:
        """Step 2: hit or no hit per participant (``hits.hit_query``)."""
        return hits.hit_query(self.ctx, caller, case_id, identifier)

    def record_go_decision(
        self,
        caller: Caller,
        case_id: str,
        *,
        go: bool,
        purpose: str,
        legal_basis: str,
        motivation: str,
    ) -> CaseView:
        """Step 2: record go or no-go (``hits.record_go_decision``)."""
        return hits.record_go_decision(
            self.ctx,
            caller,
            case_id,
            go=go,
            purpose=purpose,
            legal_basis=legal_basis,
            motivation=motivation,
        )

    def write_output(
        self,
        caller: Caller,
        case_id: str,
        kind: OutputKind,
        text: str,
        interventions: Sequence[Intervention] = (),
    ) -> OutputView:
        """Write the current step's output (``outputs.write_output``)."""
        return outputs.write_output(self.ctx, caller, case_id, kind, text, interventions)

    def read_outputs(self, caller: Caller, case_id: str) -> OutputsView:
        """Return the outputs the caller may read (``outputs.read_outputs``)."""
        return outputs.read_outputs(self.ctx, caller, case_id)

    def transition(
        self,
        caller: Caller,
        case_id: str,
        to_step: int,
        reason: str | None,
        closure_text: str | None = None,
    ) -> CaseView:
        """Move a case to another step (``transitions.transition``)."""
        return transitions.transition(self.ctx, caller, case_id, to_step, reason, closure_text)

    def share_record(
        self, caller: Caller, case_id: str, idempotency_key: str, record: RecordIn
    ) -> ShareResult:
        """Share a record into a case (``records.share_record``)."""
        return records.share_record(self.ctx, caller, case_id, idempotency_key, record)

    def read_records(self, caller: Caller, case_id: str) -> RecordsView:
        """Return the records the caller may see now (``reading.read_records``)."""
        return reading.read_records(self.ctx, caller, case_id)
