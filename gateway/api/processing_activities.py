"""The read API of the Logboek Dataverwerkingen ("logboek-extensie-lezen"), for privacy officers.

``GET /v1/processing-activities`` answers by trace (``traceId``), by processing activity
(``processingActivityId``) or by data subject; the subject's identifier travels in the
``Data-Subject-Id`` and ``Data-Subject-Id-Type`` headers, never in the URL, so it ends up
in no access log or browser history. ``POST`` takes the same question as the extension's
request body. The answer is the extension's ``ListProcessingActivities``: each
processing with its trace and span ids (the trace id in the UUID spelling the extension
uses), status ``Unset``/``Ok``/``Error``, times in RFC 3339 and the ``dpl.core.*``
attributes. The same scope rules as ``POST /v1/subjects/processing-log`` apply.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Header, Query
from pydantic import BaseModel, ConfigDict, Field

from gateway.api.deps import Ctx, PrivacyOfficerCaller
from gateway.audit import subject_requests
from gateway.audit.ldv import SERVICE_NAME, LdvLine
from gateway.audit.subject_requests import ActivityQuery
from gateway.clock import as_utc
from gateway.schemas.base import BoundedDateTime, Timestamp
from gateway.workflow.access import SubjectIn

router = APIRouter(prefix="/v1/processing-activities", tags=["processing log"])

IdType = Annotated[
    str, Field(pattern="^(bsn|kvk|iban|phone|name|address|plate)$", description="identifier type")
]


class Metadata(BaseModel):
    """Which Logboek answered."""

    logbookId: str
    organizationName: str


class ProcessingActivityOut(BaseModel):
    """One processing (``Dataverwerking``) as the read extension describes it."""

    model_config = ConfigDict(populate_by_name=True)

    traceId: str
    spanId: str
    parentSpanId: str | None = None
    status: str
    name: str
    startTime: str
    endTime: str
    resource: dict[str, Any]
    foreignOperation: dict[str, str] | None = None
    attributes: dict[str, str | int | bool]


class ListProcessingActivities(BaseModel):
    """The processings found, oldest first; ``truncated`` when more exist than returned."""

    metadata: Metadata
    processingActivities: list[ProcessingActivityOut]
    truncated: bool


class ProcessingActivityRequest(BaseModel):
    """The extension's request body: at least one of trace, activity or data subject."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    traceId: str | None = Field(default=None, max_length=36)
    startTime: Timestamp | None = None
    endTime: Timestamp | None = None
    processing_activity_id: str | None = Field(
        default=None, alias="dpl.core.processing_activity_id", max_length=200
    )
    data_subject_id: str | None = Field(
        default=None, alias="dpl.core.data_subject_id", min_length=1, max_length=200
    )
    data_subject_id_type: IdType | None = Field(default=None, alias="dpl.core.data_subject_id_type")


def _uuid(trace_id: str) -> str:
    t = trace_id
    return f"{t[:8]}-{t[8:12]}-{t[12:16]}-{t[16:20]}-{t[20:]}"


def _out(line: LdvLine) -> ProcessingActivityOut:
    doc = line.to_json()
    return ProcessingActivityOut(
        traceId=_uuid(line.trace_id),
        spanId=line.span_id,
        parentSpanId=line.parent_span_id,
        status=line.status_code.read_api,
        name=line.name,
        startTime=doc["start_time"],
        endTime=doc["end_time"],
        resource=doc["resource"],
        foreignOperation=doc["foreign_operation"],
        attributes=doc["attributes"],
    )


def _answer(
    ctx: Ctx, caller: PrivacyOfficerCaller, query: ActivityQuery
) -> ListProcessingActivities:
    found = subject_requests.processing_activities(ctx, caller, query)
    return ListProcessingActivities(
        metadata=Metadata(logbookId=SERVICE_NAME, organizationName=ctx.settings.log_origin),
        processingActivities=[_out(line) for line in found.lines],
        truncated=found.truncated,
    )


def _subject(value: str | None, id_type: str | None) -> SubjectIn | None:
    if value is None and id_type is None:
        return None
    return SubjectIn(id_type or "", value or "")


@router.get(
    "",
    summary="Processings by trace, processing activity or data subject (privacy officers)",
    response_model_exclude_none=True,
)
def list_processing_activities(
    caller: PrivacyOfficerCaller,
    ctx: Ctx,
    trace_id: Annotated[
        str | None, Query(alias="traceId", max_length=36, description="W3C trace id or UUID")
    ] = None,
    processing_activity_id: Annotated[
        str | None,
        Query(alias="processingActivityId", max_length=200, description="activity URI"),
    ] = None,
    start_time: Annotated[
        BoundedDateTime | None, Query(alias="startTime", description="started at or after")
    ] = None,
    end_time: Annotated[
        BoundedDateTime | None, Query(alias="endTime", description="started before")
    ] = None,
    data_subject_id: Annotated[
        str | None,
        Header(alias="Data-Subject-Id", max_length=200, description="the identifier itself"),
    ] = None,
    data_subject_id_type: Annotated[
        IdType | None, Header(alias="Data-Subject-Id-Type", description="its type")
    ] = None,
) -> ListProcessingActivities:
    """Return the processings the caller's partner may see, for at least one of the three.

    Several given: the processings matching all of them. The subject's identifier is read
    from headers only; it is looked up by its keyed index, and the lookup is audited.
    """
    return _answer(
        ctx,
        caller,
        ActivityQuery(
            trace_id=trace_id,
            processing_activity_id=processing_activity_id,
            identifier=_subject(data_subject_id, data_subject_id_type),
            since=None if start_time is None else as_utc(start_time),
            until=None if end_time is None else as_utc(end_time),
        ),
    )


@router.post(
    "",
    summary="Processings by trace, processing activity or data subject, asked in the body",
    response_model_exclude_none=True,
)
def search_processing_activities(
    body: ProcessingActivityRequest, caller: PrivacyOfficerCaller, ctx: Ctx
) -> ListProcessingActivities:
    """Return the processings matching the read extension's request body (see the GET)."""
    return _answer(
        ctx,
        caller,
        ActivityQuery(
            trace_id=body.traceId,
            processing_activity_id=body.processing_activity_id,
            identifier=_subject(body.data_subject_id, body.data_subject_id_type),
            since=None if body.startTime is None else as_utc(body.startTime),
            until=None if body.endTime is None else as_utc(body.endTime),
        ),
    )
