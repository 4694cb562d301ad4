"""The processing log per data subject, in the fields of the "Logboek Dataverwerkingen".

Every audit entry that concerns a subject carries the subject's keyed index
(``audit_subjects``); this module answers "who received which data about this person,
when, at which step, for which purpose and under which basis" from those entries. Each
answer line has the standard's fields: ``trace_id`` and ``span_id`` (W3C trace
context), ``name``, ``status_code``, ``start_time``/``end_time`` and the attributes
``dpl.core.processing_activity_id``, ``dpl.core.data_subject_id`` (the keyed index,
never the identifier) and ``dpl.core.data_subject_id_type``. The processing activity
is the one of the register (``policies/register.yaml``) in force when the entry was
written, with its version (``gateway.policy.register_history``). Leaves are never deleted,
so the log is kept as long as the audit log (at least the four years Wjsg art. 39j asks).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlmodel import Session, col, select

from gateway.audit.entries import EntryScope, visible_condition
from gateway.clock import as_utc
from gateway.errors import InvalidInputError
from gateway.models.audit import AuditEntry, AuditSubject
from gateway.policy.errors import ActivityNotFoundError
from gateway.policy.register import (
    ACTIVITY_PREFIX,
    Register,
    resolve_activity,
)
from gateway.policy.register_history import RegisterHistory

MAX_LINES = 1000


@dataclass(frozen=True, slots=True)
class ProcessingLine:
    """One processing of a subject's data, as the Logboek Dataverwerkingen describes it."""

    trace_id: str
    span_id: str
    name: str
    status_code: str
    start_time: datetime
    end_time: datetime
    processing_activity_id: str
    processing_activity: str
    processing_activity_version: int | None
    data_subject_id: str
    data_subject_id_type: str
    by_partner: str | None
    parties: list[str]
    case_id: str | None
    step: int | None
    purpose: str | None
    legal_basis: str | None
    policy_version: str | None
    category: str | None
    audit_index: int


def activity_for(
    register: Register, event_type: str, purpose: str | None, legal_basis: str | None
) -> tuple[str, str, int | None]:
    """Return (URI, name, version) of the register's activity covering this processing.

    A pack without a register (or a processing it does not cover, which the compiler
    refuses for every event kind that names subjects) gets a per-event URI and no version.
    """
    try:
        activity = resolve_activity(register, event_type, purpose, legal_basis)
    except ActivityNotFoundError:
        return ACTIVITY_PREFIX + "unregistered-" + event_type.replace(":", "-"), event_type, None
    return activity.uri, activity.name, activity.version


def _trace(doc: Mapping[str, Any], index: int) -> str:
    trace = doc.get("trace")
    if isinstance(trace, str) and len(trace) == 32:
        return trace
    # entries written before trace ids were logged get a stable stand-in
    return hashlib.sha256(f"audit-entry-{index}".encode()).hexdigest()[:32]


def lines_for(
    session: Session,
    scope: EntryScope,
    subjects: Mapping[str, str],
    *,
    since: datetime | None = None,
    until: datetime | None = None,
) -> list[ProcessingLine]:
    """Return the processings of the subjects (``{keyed index: id type}``) the scope may see.

    Oldest first, at most ``MAX_LINES``. Raises InvalidInputError for an empty subject
    list or a reversed period.
    """
    if not subjects:
        raise InvalidInputError("name at least one identifier", field="identifiers")
    if since is not None and until is not None and since > until:
        raise InvalidInputError("since must not be after until", field="since")
    query = (
        select(AuditEntry, AuditSubject.subject_key)
        .join(AuditSubject, col(AuditSubject.leaf_index) == col(AuditEntry.leaf_index))
        .where(col(AuditSubject.subject_key).in_(list(subjects)), visible_condition(scope))
        .order_by(col(AuditEntry.leaf_index))
        .limit(MAX_LINES)
    )
    if since is not None:
        query = query.where(col(AuditEntry.occurred_at) >= since)
    if until is not None:
        query = query.where(col(AuditEntry.occurred_at) < until)
    lines = []
    history = RegisterHistory(session)
    for entry, key in session.exec(query).all():
        doc = json.loads(entry.leaf)
        refs = doc.get("refs") or {}
        at = as_utc(entry.occurred_at)
        register = history.at(doc.get("policy_version"), entry.leaf_index)
        uri, name, version = activity_for(
            register, entry.event_type, doc.get("purpose"), doc.get("legal_basis")
        )
        lines.append(
            ProcessingLine(
                trace_id=_trace(doc, entry.leaf_index),
                span_id=f"{entry.leaf_index:016x}",
                name=entry.event_type,
                status_code="OK",
                start_time=at,
                end_time=at,
                processing_activity_id=uri,
                processing_activity=name,
                processing_activity_version=version,
                data_subject_id=key,
                data_subject_id_type=subjects[key],
                by_partner=entry.actor_partner_id,
                parties=list(doc.get("parties") or []),
                case_id=entry.case_id,
                step=doc.get("step"),
                purpose=doc.get("purpose"),
                legal_basis=doc.get("legal_basis"),
                policy_version=doc.get("policy_version"),
                category=refs.get("category") if isinstance(refs.get("category"), str) else None,
                audit_index=entry.leaf_index,
            )
        )
    return lines
