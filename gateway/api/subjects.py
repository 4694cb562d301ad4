"""The per-subject processing log for privacy officers (data-subject requests, AVG art. 15).

The identifier travels in the request body (``POST``), never in the URL, so it does not
end up in access logs or browser histories. Looking someone up is itself a processing
of their data, so it is audited too (``gateway.audit.subject_requests``: the route only
parses and answers).
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, Field

from gateway.api.deps import Ctx, PrivacyOfficerCaller
from gateway.audit import subject_requests
from gateway.schemas.base import StrictIn, Timestamp
from gateway.schemas.cases import IdentifierIn
from gateway.workflow.access import SubjectIn

router = APIRouter(prefix="/v1/subjects", tags=["subjects"])


class ProcessingLogIn(StrictIn):
    """The identifiers of one person, and optionally a period."""

    identifiers: list[IdentifierIn] = Field(min_length=1, max_length=10)
    since: Timestamp | None = None
    until: Timestamp | None = None


class ProcessingLogOut(BaseModel):
    """The processings found, oldest first; ``truncated`` when more exist than returned.

    Each line is a Logboek Dataverwerkingen line (``gateway.audit.ldv.LdvLine.to_json``):
    one per processing and person, with ``trace_id``, ``span_id``, ``parent_span_id``,
    ``name``, times, ``status_code``, ``resource``, ``foreign_operation`` and the
    ``dpl.core.*`` and ``nl.riec.gateway.*`` attributes.
    """

    lines: list[dict[str, Any]]
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
    answer = subject_requests.processing_log(
        ctx,
        caller,
        [SubjectIn(i.type, i.value) for i in body.identifiers],
        since=body.since,
        until=body.until,
    )
    return ProcessingLogOut(
        lines=[line.to_json() for line in answer.lines], truncated=answer.truncated
    )
