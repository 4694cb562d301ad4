"""The processing log per data subject, in the data model of the "Logboek Dataverwerkingen".

Every audit entry that concerns a subject carries the subject's keyed index
(``audit_subjects``, with the person it belongs to within the entry); this module answers
"who received which data about this person, when, at which step, for which purpose and
under which basis" from those entries, as ``gateway.audit.ldv.LdvLine``s: one line per
action per person (never one per identifier), the keyed index as
``dpl.core.data_subject_id``, never the identifier. It also answers the read extension's
other questions: every processing of one trace, and of one processing activity. Each
line names the processing activity of the register (``policies/register.yaml``) in
force when its entry was written, with its version (``gateway.policy.register_history``).
Leaves
are never deleted, so the log is kept as long as the audit log (at least the four years
Wjsg art. 39j asks).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import datetime

from sqlalchemy import ColumnElement
from sqlmodel import Session, col, select

from gateway.audit.entries import EntryScope, visible_condition
from gateway.audit.events import AuditEventType
from gateway.audit.ldv import ActivityLookup, LdvLine, lines_of_entry
from gateway.errors import InvalidInputError
from gateway.models.audit import AuditEntry, AuditSubject
from gateway.policy.errors import ActivityNotFoundError, NoActiveVersionError
from gateway.policy.register import (
    ACTIVITY_PREFIX,
    EMPTY,
    Register,
    resolve_activity,
)
from gateway.policy.register_history import RegisterHistory, register_in_force

MAX_LINES = 1000


def activity_for(
    register: Register, event_type: str, purpose: str | None, legal_basis: str | None
) -> tuple[str, str, int | None]:
    """Return (URI, name, version) of the register's activity covering this processing.

    The one place a line's ``dpl.core.processing_activity_id`` is decided. A pack without
    a register (or a processing it does not cover, which the compiler refuses for every
    event kind that names subjects) gets a per-event URI and no version.
    """
    try:
        activity = resolve_activity(register, event_type, purpose, legal_basis)
    except ActivityNotFoundError:
        return ACTIVITY_PREFIX + "unregistered-" + event_type.replace(":", "-"), event_type, None
    return activity.uri, activity.name, activity.version


def lookup_in(register: Register) -> ActivityLookup:
    """Return the activity lookup of one register (for ``ldv.lines_of_entry``)."""
    return lambda event_type, purpose, basis: activity_for(register, event_type, purpose, basis)


def lookup_for(history: RegisterHistory, entry: AuditEntry) -> ActivityLookup:
    """Return the lookup in the register in force when ``entry`` was written."""
    doc = json.loads(entry.leaf)
    version = doc.get("policy_version")
    register = history.at(version if isinstance(version, str) else None, entry.leaf_index)
    return lookup_in(register)


def event_types_of(register: Register, processing_activity_id: str) -> list[str]:
    """Return the event types the register's activity covers (none for an unknown id).

    An ``unregistered-`` URI (a processing no register covered) maps back to its event.
    """
    wanted = processing_activity_id.removeprefix(ACTIVITY_PREFIX)
    if wanted.startswith("unregistered-"):
        rest = wanted.removeprefix("unregistered-")
        return [t.value for t in AuditEventType if t.value.replace(":", "-") == rest]
    try:
        return list(register.get(wanted).events)
    except ActivityNotFoundError:
        return []


def _period(since: datetime | None, until: datetime | None) -> list[ColumnElement[bool]]:
    if since is not None and until is not None and since > until:
        raise InvalidInputError("since must not be after until", field="since")
    found = []
    if since is not None:
        found.append(col(AuditEntry.occurred_at) >= since)
    if until is not None:
        found.append(col(AuditEntry.occurred_at) < until)
    return found


def _lines(
    session: Session, entries: Sequence[AuditEntry], only: Mapping[str, str] | None
) -> list[LdvLine]:
    """Return the lines of ``entries``: per person named (of ``only``'s keys if given)."""
    links: dict[int, list[AuditSubject]] = {}
    if entries:
        query = select(AuditSubject).where(
            col(AuditSubject.leaf_index).in_([e.leaf_index for e in entries])
        )
        if only is not None:
            query = query.where(col(AuditSubject.subject_key).in_(list(only)))
        for link in session.exec(query).all():
            links.setdefault(link.leaf_index, []).append(link)
    lines: list[LdvLine] = []
    history = RegisterHistory(session)
    for entry in entries:
        found = sorted(links.get(entry.leaf_index, []), key=lambda s: s.subject_key)
        if only is not None and not found:
            continue
        lines.extend(
            lines_of_entry(
                entry,
                [
                    (s.subject_key, (only or {}).get(s.subject_key) or s.id_type or "unknown")
                    for s in found
                ],
                persons={s.subject_key: s.person or s.subject_key for s in found},
                activity=lookup_for(history, entry),
            )
        )
    return lines[:MAX_LINES]


def lines_for(
    session: Session,
    scope: EntryScope,
    subjects: Mapping[str, str],
    *,
    since: datetime | None = None,
    until: datetime | None = None,
) -> list[LdvLine]:
    """Return the processings of one person (``{keyed index: id type}``) the scope may see.

    One line per entry and person, oldest first, at most ``MAX_LINES``. Raises
    InvalidInputError for an empty subject list or a reversed period.
    """
    if not subjects:
        raise InvalidInputError("name at least one identifier", field="identifiers")
    period = _period(since, until)
    named = select(AuditSubject.leaf_index).where(col(AuditSubject.subject_key).in_(list(subjects)))
    query = (
        select(AuditEntry)
        .where(col(AuditEntry.leaf_index).in_(named), visible_condition(scope), *period)
        .order_by(col(AuditEntry.leaf_index))
        .limit(MAX_LINES)
    )
    return _lines(session, session.exec(query).all(), subjects)


def lines_of_trace(
    session: Session,
    scope: EntryScope,
    trace_id: str,
    *,
    since: datetime | None = None,
    until: datetime | None = None,
) -> list[LdvLine]:
    """Return every processing of one W3C trace the scope may see, oldest first.

    An action naming data subjects gives a line per person; one naming none (a refusal
    before anyone was looked up, a step transition) gives its own line.
    """
    query = (
        select(AuditEntry)
        .where(
            col(AuditEntry.trace_id) == trace_id.lower(),
            visible_condition(scope),
            *_period(since, until),
        )
        .order_by(col(AuditEntry.leaf_index))
        .limit(MAX_LINES)
    )
    return _lines(session, session.exec(query).all(), None)


def lines_of_activity(
    session: Session,
    scope: EntryScope,
    processing_activity_id: str,
    *,
    since: datetime | None = None,
    until: datetime | None = None,
) -> list[LdvLine]:
    """Return the processings of one processing activity the scope may see, oldest first."""
    try:
        _, register = register_in_force(session)
    except NoActiveVersionError:
        register = EMPTY
    types = event_types_of(register, processing_activity_id)
    if not types:
        return []
    wanted = ACTIVITY_PREFIX + processing_activity_id.removeprefix(ACTIVITY_PREFIX)
    query = (
        select(AuditEntry)
        .where(
            col(AuditEntry.event_type).in_(types), visible_condition(scope), *_period(since, until)
        )
        .order_by(col(AuditEntry.leaf_index))
        .limit(MAX_LINES)
    )
    # one event type may belong to several activities (by purpose and legal basis)
    lines = _lines(session, session.exec(query).all(), None)
    return [line for line in lines if line.processing_activity_id == wanted]


__all__ = [
    "MAX_LINES",
    "activity_for",
    "event_types_of",
    "lines_for",
    "lines_of_activity",
    "lines_of_trace",
    "lookup_for",
    "lookup_in",
]
