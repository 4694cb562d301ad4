"""Retention: delete records whose retention ended, then destroy closed cases' keys.

A record's retention date is set when its case closes (closure + the provider's
retention period). When a closed case has no records left and its own minimum
retention has passed, its data key and its pseudonymisation secret are shredded and its
documents deleted: what remains anywhere (backups included) can no longer be read, and
the case's pseudonyms can no longer be linked. Each deletion is audited.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import delete
from sqlmodel import Session, col, select

from gateway import usecase
from gateway.audit import log as audit_log
from gateway.audit.events import AuditEventType
from gateway.clock import Clock, FixedClock
from gateway.context import AppContext
from gateway.db import Database
from gateway.errors import NotFoundError
from gateway.identity.service import Actor
from gateway.keys import KeyKind, KeyRing, ShredReason
from gateway.keys.ring import valid_key_id
from gateway.models.cases import (
    Case,
    CaseOutput,
    CaseStatus,
    CaseSubject,
    Record,
    RecordSubject,
)


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
    at_start = FixedClock(now)  # every entry of one run carries the run's time
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
                    select(RecordSubject.id_type, RecordSubject.subject_key).where(
                        RecordSubject.record_id == record.id
                    )
                ).all()
                session.execute(
                    delete(RecordSubject).where(col(RecordSubject.record_id) == record.id)
                )
                session.delete(record)
                usecase.record(
                    session,
                    at_start,
                    actor,
                    AuditEventType.RECORD_DELETE,
                    case_id=case_id,
                    step=case.step,
                    legal_basis=record.legal_basis,
                    persons=[[(t, k) for t, k in subjects]],  # a record is about one
                    parties=[record.provider_partner_id],
                    refs={
                        "record": record.id,
                        "category": record.category,
                        "reason": "retention ended",
                    },
                    decided=False,
                    policy_version=ctx.policy.version,
                    retention=ctx.retention.period([record.category]),
                )
                report.records.setdefault(case_id, []).append(record.id)
    cutoff = now - timedelta(days=case_retention_days)
    with ctx.db.read() as session:
        closed = session.exec(
            select(Case.id).where(
                Case.status == CaseStatus.CLOSED,
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
            shred_case(
                session,
                ctx.keys,
                actor,
                case,
                at=now,
                reason=ShredReason.RETENTION,
                policy_version=ctx.policy.version,
            )
            report.shredded_cases.append(case_id)
    return report


def shred_case(
    session: Session,
    keys: KeyRing,
    actor: Actor,
    case: Case,
    *,
    at: datetime,
    reason: ShredReason,
    by: str | None = None,
    policy_version: str | None = None,
) -> bool:
    """Close and crypto-shred ``case`` in the caller's transaction, with its audit entries.

    Deletes its outputs and the keyed index rows that link a subject (a keyed BSN hash)
    to the case (case subjects, and the subjects of its records), destroys its data key
    and its pseudonymisation secret, and records ``reason`` and ``by`` (a role) so that
    later refusals say who shredded it and when. Records left are sealed under a key
    that no longer exists. Returns False, changing nothing, if it was shredded before.
    """
    if (
        case.status == CaseStatus.SHREDDED
        and keys.shredded_error(KeyKind.CASE, case.id) is not None
    ):
        return False
    record_ids = select(Record.id).where(Record.case_id == case.id)
    session.execute(delete(RecordSubject).where(col(RecordSubject.record_id).in_(record_ids)))
    session.execute(delete(CaseOutput).where(col(CaseOutput.case_id) == case.id))
    session.execute(delete(CaseSubject).where(col(CaseSubject.case_id) == case.id))
    case.status = CaseStatus.SHREDDED
    case.closed_at = case.closed_at or at
    session.add(case)
    usecase.record(
        session,
        FixedClock(at),
        actor,
        AuditEventType.CASE_SHRED,
        case_id=case.id,
        step=case.step,
        refs=(
            {"reason": "retention ended"}
            if reason is ShredReason.RETENTION
            else {"reason": "on request", "by": by}
        ),
        decided=False,
        policy_version=policy_version,
    )
    keys.shred_case(session, case.id, actor=actor, reason=reason, by=by)
    keys.shred_project(session, f"case.{case.id}", actor=actor, reason=reason, by=by)
    return True


def shred_case_on_request(
    db: Database, keys: KeyRing, clock: Clock, actor: Actor, case_id: str, *, by: str
) -> bool:
    """Shred the case ``case_id`` now, at the request of ``by`` (a role), in one transaction.

    Returns False if it was shredded before; raises NotFoundError for an unknown case.
    """
    with db.write() as session:
        audit_log.lock_head(session)
        case = session.get(Case, case_id)
        if case is None:
            raise NotFoundError(f"no such case: {case_id}", case=case_id)
        return shred_case(
            session, keys, actor, case, at=clock.now(), reason=ShredReason.REQUEST, by=by
        )


def require_case(db: Database, case_id: str) -> None:
    """Raise InvalidInputError for a malformed id, NotFoundError unless the case exists."""
    valid_key_id(case_id, "case")
    with db.read() as session:
        if session.get(Case, case_id) is None:
            raise NotFoundError(f"no such case: {case_id}", case=case_id)
