"""The processing log per data subject, in the data model of the "Logboek Dataverwerkingen".

Every audit entry that concerns a subject carries the subject's keyed index
(``audit_subjects``, with the person it belongs to within the entry); this module answers
"who received which data about this person, when, at which step, for which purpose and
under which basis" from those entries, as ``gateway.audit.ldv.LdvLine``s: one line per
action per person (never one per identifier), the keyed index as
``dpl.core.data_subject_id``, never the identifier. It also answers the read extension's
other questions: every processing of one trace, and of one processing activity. Leaves
are never deleted, so the log is kept as long as the audit log (at least the four years
Wjsg art. 39j asks).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime

from sqlalchemy import ColumnElement
from sqlmodel import Session, col, select

from gateway.audit.entries import EntryScope, visible_condition
from gateway.audit.events import AuditEventType
from gateway.audit.ldv import LdvLine, lines_of_entry
from gateway.errors import InvalidInputError
from gateway.models.audit import AuditEntry, AuditSubject

ACTIVITY_PREFIX = "urn:riec-gateway:verwerkingsactiviteit:"
MAX_LINES = 1000

# The register of processing activities (AVG art. 30) the events belong to.
ACTIVITIES: dict[str, str] = {
    "case:signal:submit": "Signaal indienen (stap 1)",
    "case:hit:query": "Hit/no-hit bevragen (stap 2)",
    "case:record:share": "Gegevens verstrekken aan een casus",
    "case:record:read": "Gegevens van een casus ontvangen",
    "case:record:delete": "Gegevens vernietigen na de bewaartermijn",
    "case:holdings:register": "Aanmelden dat een partner gegevens over een persoon heeft",
    "subject:processing-log:read": "Inzage in het verwerkingenlogboek (AVG art. 15)",
    "research:rows:submit": "Gegevens aanleveren voor wetenschappelijk onderzoek",
    "research:respondent:withdraw": "Intrekken van toestemming voor onderzoek",
    "research:extract:release": "Gepseudonimiseerde gegevens verstrekken aan onderzoekers",
}


def activity_for(event_type: str, purpose: str | None, legal_basis: str | None) -> tuple[str, str]:
    """Return the (URI, name) of the processing activity an event belongs to.

    The one place a line's ``dpl.core.processing_activity_id`` is decided; today by event
    type alone (``purpose`` and ``legal_basis`` are for a register that tells activities
    apart by them).
    """
    del purpose, legal_basis  # one activity per event type until a register resolves them
    return ACTIVITY_PREFIX + event_type.replace(":", "-"), ACTIVITIES.get(event_type, event_type)


def activity_id(event_type: str) -> str:
    """Return the URI of the processing activity an event type belongs to."""
    return activity_for(event_type, None, None)[0]


def event_types_of(processing_activity_id: str) -> list[str]:
    """Return the event types whose entries belong to the processing activity (may be none)."""
    return [t.value for t in AuditEventType if activity_id(t.value) == processing_activity_id]


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
                activity=activity_for,
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
    types = event_types_of(processing_activity_id)
    if not types:
        return []
    query = (
        select(AuditEntry)
        .where(
            col(AuditEntry.event_type).in_(types), visible_condition(scope), *_period(since, until)
        )
        .order_by(col(AuditEntry.leaf_index))
        .limit(MAX_LINES)
    )
    return _lines(session, session.exec(query).all(), None)


__all__ = [
    "ACTIVITIES",
    "MAX_LINES",
    "activity_for",
    "activity_id",
    "event_types_of",
    "lines_for",
    "lines_of_activity",
    "lines_of_trace",
]
