"""A data-subject request (AVG art. 15): who received which data about one person.

A privacy officer looks a person up by identifiers; the answer is the processing log of
the entries its partner may see (``processing_log.lines_for``). Looking someone up is
itself a processing of their data, so the lookup is recorded too, naming only the keyed
indexes of the identifiers, never the identifiers themselves.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from gateway import usecase
from gateway.audit import sequencer
from gateway.audit.entries import scope_for
from gateway.audit.errors import QueryMissingError
from gateway.audit.events import AuditEventType
from gateway.audit.ldv import LdvLine
from gateway.audit.processing_log import MAX_LINES, lines_for, lines_of_activity, lines_of_trace
from gateway.context import AppContext
from gateway.errors import InvalidInputError
from gateway.identity.actors import Actor, Caller
from gateway.workflow.access import SubjectIn
from gateway.workflow.subjects import subject

__all__ = [
    "ActivityQuery",
    "ProcessingLog",
    "normalise_trace_id",
    "processing_activities",
    "processing_log",
]


@dataclass(frozen=True, slots=True)
class ProcessingLog:
    """The processings found, oldest first; ``truncated`` when more exist than returned."""

    lines: list[LdvLine]
    truncated: bool


def processing_log(
    ctx: AppContext,
    caller: Caller,
    identifiers: Sequence[SubjectIn],
    *,
    since: datetime | None = None,
    until: datetime | None = None,
) -> ProcessingLog:
    """Return the processings of the person's data that the caller's partner may see.

    Every privacy officer sees the processings in which its partner acted or was a
    party; a RIEC's also those of the cases that RIEC runs, never those of another
    RIEC's cases. The lookup is audited (``subject:processing-log:read``) with the
    number of lines. Raises InvalidInputError for a malformed identifier or period.
    """
    found = [subject(ctx.keys, i.id_type, i.value) for i in identifiers]
    keys = {s.key: s.id_type for s in found}
    person = [(s.id_type, s.key) for s in found]  # the identifiers of one person
    sequencer.catch_up(ctx.db)  # every line names an integrated entry
    with ctx.db.read() as session:
        lines = lines_for(session, scope_for(caller), keys, since=since, until=until)
    with ctx.db.write() as session:
        usecase.record(
            session,
            ctx.clock,
            Actor.of(caller),
            AuditEventType.SUBJECT_LOG_READ,
            persons=[person],
            refs={"lines": len(lines)},
            decided=False,
        )
    return ProcessingLog(lines=lines, truncated=len(lines) >= MAX_LINES)


@dataclass(frozen=True, slots=True)
class ActivityQuery:
    """What the read extension asks: a trace, a processing activity, a person (any of them).

    ``identifier`` is one identifier of the person (never from a URL); ``since``/``until``
    bound the start time.
    """

    trace_id: str | None = None
    processing_activity_id: str | None = None
    identifier: SubjectIn | None = None
    since: datetime | None = None
    until: datetime | None = None


def processing_activities(ctx: AppContext, caller: Caller, query: ActivityQuery) -> ProcessingLog:
    """Return the processings matching every part of ``query`` that the caller may see.

    The read extension of the Logboek Dataverwerkingen: at least one of a trace id, a
    processing activity or a data subject must be given (QueryMissingError otherwise;
    InvalidInputError for a malformed trace id or identifier). A lookup by person is
    audited like the processing log's (``subject:processing-log:read``).
    """
    if query.trace_id is None and query.processing_activity_id is None and query.identifier is None:
        raise QueryMissingError("name a traceId, a processing activity or a data subject")
    trace = None if query.trace_id is None else normalise_trace_id(query.trace_id)
    if query.identifier is not None:
        found = processing_log(
            ctx, caller, [query.identifier], since=query.since, until=query.until
        )
        lines = found.lines
    else:
        sequencer.catch_up(ctx.db)
        scope = scope_for(caller)
        with ctx.db.read() as session:
            if trace is not None:
                lines = lines_of_trace(session, scope, trace, since=query.since, until=query.until)
            else:
                assert query.processing_activity_id is not None
                lines = lines_of_activity(
                    session,
                    scope,
                    query.processing_activity_id,
                    since=query.since,
                    until=query.until,
                )
    lines = [
        line
        for line in lines
        if (trace is None or line.trace_id == trace)
        and (
            query.processing_activity_id is None
            or line.processing_activity_id == query.processing_activity_id
        )
    ]
    return ProcessingLog(lines=lines, truncated=len(lines) >= MAX_LINES)


def normalise_trace_id(value: str) -> str:
    """Return a trace id as 32 lowercase hex digits; accepts the UUID spelling too.

    Raises InvalidInputError for anything else, and for the invalid all-zero id.
    """
    text = value.strip().lower().replace("-", "")
    if len(text) != 32 or any(c not in "0123456789abcdef" for c in text) or text == "0" * 32:
        raise InvalidInputError(
            "traceId must be 32 hexadecimal digits (or a UUID)", field="traceId"
        )
    return text
