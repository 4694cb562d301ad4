"""Retention: delete records whose retention ended, then destroy closed cases' keys.

A record's retention date is set when its case closes (closure + the provider's
retention period). When a closed case has no records left and its own minimum
retention has passed, its data key and its pseudonymisation secret are shredded and its
documents deleted: what remains anywhere (backups included) can no longer be read, and
the case's pseudonyms can no longer be linked. Each deletion is audited.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta

from sqlalchemy import delete
from sqlmodel import col, select

from gateway.audit import log as audit_log
from gateway.audit.events import AuditEvent, AuditEventType
from gateway.context import AppContext
from gateway.identity.service import Actor
from gateway.models.cases import Case, CaseOutput, CaseSubject, Record, RecordSubject
from gateway.workflow.service import CLOSED, SHREDDED


@dataclass
class RetentionReport:
    """What one retention run deleted: record ids per case, and cases whose keys went."""

    records: dict[str, list[str]] = field(default_factory=dict)
    shredded_cases: list[str] = field(default_factory=list)

    @property
    def record_count(self) -> int:
        """Return how many records were deleted."""
        return sum(len(ids) for ids in self.records.values())


def run(ctx: AppContext, actor: Actor, *, case_retention_days: int) -> RetentionReport:
    """Delete expired records and shred the keys of closed cases that are due.

    Each case is handled in its own transaction, so a failure leaves earlier cases done
    and later ones untouched; running again continues where it stopped.
    """
    now = ctx.clock.now()
    report = RetentionReport()
    with ctx.db.read() as session:
        due = session.exec(
            select(Record.case_id)
            .where(col(Record.retention_until).is_not(None), col(Record.retention_until) <= now)
            .distinct()
        ).all()
    for case_id in sorted(due):
        with ctx.db.write() as session:
            case = session.get(Case, case_id)
            assert case is not None
            records = session.exec(
                select(Record).where(
                    Record.case_id == case_id,
                    col(Record.retention_until).is_not(None),
                    col(Record.retention_until) <= now,
                )
            ).all()
            for record in records:
                subjects = session.exec(
                    select(RecordSubject.subject_key).where(RecordSubject.record_id == record.id)
                ).all()
                session.execute(
                    delete(RecordSubject).where(col(RecordSubject.record_id) == record.id)
                )
                session.delete(record)
                audit_log.append(
                    session,
                    AuditEvent(
                        type=AuditEventType.RECORD_DELETE,
                        at=now,
                        actor_principal=actor.principal_id,
                        actor_partner=actor.partner_id,
                        policy_version=ctx.policy.version,
                        case_id=case_id,
                        step=case.step,
                        legal_basis=record.legal_basis,
                        subjects=tuple(subjects),
                        parties=(record.provider_partner_id,),
                        refs={
                            "record": record.id,
                            "category": record.category,
                            "reason": "retention ended",
                        },
                    ),
                )
                report.records.setdefault(case_id, []).append(record.id)
    cutoff = now - timedelta(days=case_retention_days)
    with ctx.db.read() as session:
        closed = session.exec(
            select(Case.id).where(
                Case.status == CLOSED,
                col(Case.closed_at).is_not(None),
                col(Case.closed_at) <= cutoff,
            )
        ).all()
    for case_id in sorted(closed):
        with ctx.db.write() as session:
            left = session.exec(select(Record.id).where(Record.case_id == case_id)).first()
            if left is not None:
                continue
            case = session.get(Case, case_id)
            assert case is not None
            session.execute(delete(CaseOutput).where(col(CaseOutput.case_id) == case_id))
            session.execute(delete(CaseSubject).where(col(CaseSubject.case_id) == case_id))
            case.status = SHREDDED
            session.add(case)
            audit_log.append(
                session,
                AuditEvent(
                    type=AuditEventType.CASE_SHRED,
                    at=now,
                    actor_principal=actor.principal_id,
                    actor_partner=actor.partner_id,
                    policy_version=ctx.policy.version,
                    case_id=case_id,
                    step=case.step,
                    refs={"reason": "retention ended"},
                ),
            )
            ctx.keys.shred_case(session, case_id, actor=actor)
            ctx.keys.shred_project(session, f"case.{case_id}", actor=actor)
            report.shredded_cases.append(case_id)
    return report
