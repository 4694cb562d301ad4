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
from gateway.audit.events import AuditEventType
from gateway.audit.processing_log import MAX_LINES, ProcessingLine, lines_for
from gateway.context import AppContext
from gateway.identity.actors import Actor, Caller
from gateway.workflow.access import SubjectIn
from gateway.workflow.subjects import subject

__all__ = ["ProcessingLog", "processing_log"]


@dataclass(frozen=True, slots=True)
class ProcessingLog:
    """The processings found, oldest first; ``truncated`` when more exist than returned."""

    lines: list[ProcessingLine]
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
    sequencer.catch_up(ctx.db)  # every line names an integrated entry
    with ctx.db.read() as session:
        lines = lines_for(session, scope_for(caller), keys, since=since, until=until)
    with ctx.db.write() as session:
        usecase.record(
            session,
            ctx.clock,
            Actor.of(caller),
            AuditEventType.SUBJECT_LOG_READ,
            subjects=keys,
            refs={"lines": len(lines)},
            decided=False,
        )
    return ProcessingLog(lines=lines, truncated=len(lines) >= MAX_LINES)
