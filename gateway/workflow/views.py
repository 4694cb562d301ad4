"""What the case use cases answer: cases, outputs and records as one partner may see them.

These are values, never table rows; the routes return them as they are. A case's view
carries its state only (step, status, participants, transitions), never content.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlmodel import Session, col, select

from gateway.models.cases import Case, CaseOutput, CaseStatus, CaseTransition
from gateway.workflow.access import participants
from gateway.workflow.steps import Step


@dataclass(frozen=True, slots=True)
class Provenance:
    """Where a record came from; it travels with the record wherever it goes."""

    provider: str
    provider_kind: str
    category: str
    legal_basis: str
    purposes: tuple[str, ...]
    onward: str
    shared_at: datetime
    shared_at_step: int
    retention_until: datetime | None


@dataclass(frozen=True, slots=True)
class ReleasedRecord:
    """A record as one partner may see it, with the rule and obligations that shaped it."""

    id: str
    provenance: Provenance
    fields: dict[str, Any]
    summary_only: bool
    rule_id: str
    obligations: list[dict[str, Any]]


@dataclass(frozen=True, slots=True)
class RecordsView:
    """What one read of a case's records returned, and how many records were withheld."""

    case_id: str
    step: int
    policy_version: str
    records: list[ReleasedRecord]
    withheld: int
    withheld_by_rule: dict[str, int]


@dataclass(frozen=True, slots=True)
class OutputView:
    """A step output as one partner may see it."""

    id: str
    kind: str
    step: int
    author_partner: str
    created_at: datetime
    purpose: str | None
    legal_basis: str | None
    content: dict[str, Any]


@dataclass(frozen=True, slots=True)
class OutputsView:
    """The outputs one partner may read, and how many were withheld."""

    case_id: str
    step: int
    outputs: list[OutputView]
    withheld: int


@dataclass(frozen=True, slots=True)
class CaseView:
    """A case's state as its participants see it (no content)."""

    id: str
    process: str
    step: int
    step_label: str
    status: str  # a CaseStatus value; a plain string in the public schema
    riec: str
    purpose: str | None
    legal_basis: str | None
    participants: list[str]
    created_at: datetime
    closed_at: datetime | None
    transitions: list[dict[str, Any]] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class ShareResult:
    """The outcome of sharing: the record id, and whether this call stored it."""

    record_id: str
    created: bool
    policy_version: str
    rule_id: str


@dataclass(frozen=True, slots=True)
class HitResult:
    """Hit or no hit per participant, never content."""

    case_id: str
    hits: dict[str, bool]
    policy_version: str


def case_view(session: Session, case: Case) -> CaseView:
    """Return the case's state: step, status, participants and every transition in order."""
    transitions = session.exec(
        select(CaseTransition)
        .where(CaseTransition.case_id == case.id)
        .order_by(col(CaseTransition.seq))
    ).all()
    return CaseView(
        id=case.id,
        process=case.process,
        step=case.step,
        step_label=Step(case.step).label,
        status=CaseStatus(case.status).value,
        riec=case.riec_partner_id,
        purpose=case.purpose,
        legal_basis=case.legal_basis,
        participants=participants(session, case.id),
        created_at=case.created_at,
        closed_at=case.closed_at,
        transitions=[
            {
                "from_step": t.from_step,
                "to_step": t.to_step,
                "at": t.at,
                "by": t.partner_id,
                "reason": t.reason,
                "policy_version": t.policy_version,
                "rule_id": t.rule_id,
            }
            for t in transitions
        ],
    )


def output_view(output: CaseOutput, content: dict[str, Any]) -> OutputView:
    """Return a stored output with its opened (and possibly narrowed) content."""
    return OutputView(
        id=output.id,
        kind=output.kind,
        step=output.step,
        author_partner=output.author_partner_id,
        created_at=output.created_at,
        purpose=output.purpose,
        legal_basis=output.legal_basis,
        content=content,
    )
