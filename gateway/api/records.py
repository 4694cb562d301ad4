"""Record routes: share a record into a case, read the records the caller may see now.

The routes partner systems call most, in a router of their own that the app matches
first (a request is matched route by route). Identifiers travel in request bodies only.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Header, Response, status

from gateway.api.deps import Ctx, CurrentCaller
from gateway.api.responses import ready_json
from gateway.schemas.cases import RecordIn, ShareOut
from gateway.workflow import reading, records
from gateway.workflow.records import RecordIn as RecordData
from gateway.workflow.views import RecordsView

router = APIRouter(prefix="/v1", tags=["cases"])


@router.post(
    "/cases/{case_id}/records",
    status_code=status.HTTP_201_CREATED,
    summary="Share a record into a case",
    response_model=ShareOut,
    responses={
        200: {"description": "a retry: the record was stored by an earlier call", "model": ShareOut}
    },
)
def share_record(
    case_id: str,
    body: RecordIn,
    caller: CurrentCaller,
    ctx: Ctx,
    idempotency_key: Annotated[str, Header(alias="Idempotency-Key")],
) -> Response:
    """Share a record under the provider's legal basis; retries with the same key are safe."""
    result = records.share_record(
        ctx,
        caller,
        case_id,
        idempotency_key,
        RecordData(
            category=body.category,
            legal_basis=body.legal_basis,
            purposes=tuple(body.purposes),
            onward=body.onward,
            retention_days=body.retention_days,
            fields=body.fields,
            summary=body.summary,
        ),
    )
    answer = ShareOut(record_id=result.record_id, created=result.created)
    return ready_json(
        answer, status_code=status.HTTP_201_CREATED if result.created else status.HTTP_200_OK
    )


@router.get(
    "/cases/{case_id}/records",
    summary="The records the caller may see now",
    response_model=RecordsView,
)
def read_records(case_id: str, caller: CurrentCaller, ctx: Ctx) -> Response:
    """Return records with obligations applied and provenance; withheld ones only counted."""
    return ready_json(reading.read_records(ctx, caller, case_id))
