"""The per-subject processing log for privacy officers (data-subject requests, AVG art. 15).

The identifier travels in the request body (``POST``), never in the URL, so it does not
end up in access logs or browser histories. Looking someone up is itself a processing
of their data, so it is audited too.
"""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel, Field

from gateway.api.deps import Ctx, PrivacyOfficerCaller
from gateway.audit import log as audit_log
from gateway.audit import sequencer
from gateway.audit.entries import scope_for
from gateway.audit.events import AuditEvent, AuditEventType
from gateway.audit.processing_log import MAX_LINES, ProcessingLine, lines_for
from gateway.schemas.base import StrictIn, Timestamp
from gateway.schemas.cases import IdentifierIn
from gateway.workflow.subjects import subject

router = APIRouter(prefix="/v1/subjects", tags=["subjects"])


class ProcessingLogIn(StrictIn):
    """The identifiers of one person, and optionally a period."""

    identifiers: list[IdentifierIn] = Field(min_length=1, max_length=10)
    since: Timestamp | None = None
    until: Timestamp | None = None


class ProcessingLogOut(BaseModel):
    """The processings found, oldest first; ``truncated`` when more exist than returned."""

    lines: list[ProcessingLine]
    truncated: bool


@router.post("/processing-log", summary="Who received which data about a person (privacy officers)")
def processing_log(
    body: ProcessingLogIn, caller: PrivacyOfficerCaller, ctx: Ctx
) -> ProcessingLogOut:
    """Return the processings of the person's data that the caller's partner may see.

    Every privacy officer sees the processings in which its partner acted or was a party;
    a RIEC's also those of the cases that RIEC runs, never those of another RIEC's cases.
    Each line names the audit entry whose inclusion the partner can prove offline
    (``/v1/audit/proofs/inclusion``).
    """
    found = [subject(ctx.keys, i.type, i.value) for i in body.identifiers]
    keys = {s.key: s.id_type for s in found}
    sequencer.catch_up(ctx.db)  # every line names an integrated entry
    with ctx.db.read() as session:
        lines = lines_for(session, scope_for(caller), keys, since=body.since, until=body.until)
    with ctx.db.write() as session:
        audit_log.append(
            session,
            AuditEvent(
                type=AuditEventType.SUBJECT_LOG_READ,
                at=ctx.clock.now(),
                actor_principal=caller.principal_id,
                actor_partner=caller.partner_id,
                subjects=tuple(keys),
                refs={"lines": len(lines)},
            ),
        )
    return ProcessingLogOut(
        lines=lines,
        truncated=len(lines) >= MAX_LINES,
    )
