"""Audit log routes: the signed checkpoint, entries each caller may see, and proofs.

Hashes are standard base64, as in the C2SP formats. Anyone authenticated may fetch
checkpoints and consistency proofs (they reveal only hashes); entries and inclusion
proofs are limited to what the caller's role and partner may see.
"""

from __future__ import annotations

import base64
import json
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query
from fastapi.responses import JSONResponse, PlainTextResponse
from pydantic import BaseModel, Field

from gateway.api.deps import Ctx, CurrentCaller, ReadSession
from gateway.audit import checkpoints, entries, log, sequencer
from gateway.audit.bundle import format_tlog_proof
from gateway.clock import as_utc
from gateway.errors import NotFoundError
from gateway.models.audit import AuditEntry, AuditPending
from gateway.schemas.base import MAX_LOG_INDEX, BoundedDateTime


def integrated(ctx: Ctx) -> None:
    """Integrate pending entries first: reads that name leaf indexes see every commit."""
    sequencer.catch_up(ctx.db)


router = APIRouter(prefix="/v1/audit", tags=["audit"], dependencies=[Depends(integrated)])
pending_router = APIRouter(prefix="/v1/audit", tags=["audit"])

NOTE_MEDIA_TYPE = "text/plain; charset=utf-8"


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


class AuditEntryOut(BaseModel):
    """One log entry: its index, its canonical leaf document and the leaf's RFC 9162 hash."""

    index: int
    leaf_hash: str = Field(description="base64 SHA-256(0x00 || canonical JSON of leaf)")
    leaf: dict[str, Any] = Field(description="the canonical event: ids and hashes, no details")


class AuditEntryPage(BaseModel):
    """A page of entries in log order; pass ``next_after`` as ``after`` for the next page."""

    entries: list[AuditEntryOut]
    next_after: int | None


class InclusionProofOut(BaseModel):
    """Proof that entry ``index`` is in the tree of ``tree_size`` signed in ``checkpoint``."""

    index: int
    tree_size: int
    leaf_hash: str
    hashes: list[str] = Field(description="RFC 9162 inclusion path, leaf sibling first")
    root_hash: str
    checkpoint: str = Field(description="the signed checkpoint (C2SP signed note)")
    tlog_proof: str = Field(description="the same as an offline C2SP tlog-proof bundle")
    requested_size: int | None = Field(
        default=None, description="the size asked for; ``tree_size`` is the signed tree's"
    )
    consistency_hashes: list[str] = Field(
        default_factory=list,
        description="RFC 9162 proof that the tree of ``requested_size`` is a prefix of the "
        "signed tree (empty when they are the same)",
    )


class ConsistencyProofOut(BaseModel):
    """Proof that the tree of size ``first`` is a prefix of the tree of size ``second``."""

    first: int
    second: int
    first_root: str
    second_root: str
    hashes: list[str] = Field(description="RFC 9162 consistency proof")


def _entry_out(row: AuditEntry) -> AuditEntryOut:
    return AuditEntryOut(
        index=row.leaf_index, leaf_hash=_b64(row.leaf_hash), leaf=json.loads(row.leaf)
    )


@router.get(
    "/checkpoint",
    summary="The latest signed checkpoint",
    response_class=PlainTextResponse,
    responses={200: {"content": {"text/plain": {}}, "description": "a C2SP signed note"}},
)
def get_checkpoint(_caller: CurrentCaller, ctx: Ctx) -> PlainTextResponse:
    """Return the newest checkpoint (signing one first if the log grew since) as a signed note."""
    row = checkpoints.current_checkpoint(
        ctx.db,
        ctx.clock,
        ctx.signer,
        ctx.settings.log_origin,
        retired_public_keys=ctx.retired_public_keys,
    )
    return PlainTextResponse(checkpoints.witnessed_note(ctx.db, row), media_type=NOTE_MEDIA_TYPE)


@router.get(
    "/verifier-keys",
    summary="The log's public keys as note verifier keys",
    response_class=PlainTextResponse,
)
def get_verifier_keys(_caller: CurrentCaller, ctx: Ctx) -> PlainTextResponse:
    """Return the current key first, then earlier ones, one ``name+id+key`` per line.

    Verifiers should get the key through a second channel too: a key fetched from the
    log itself proves nothing about the log.
    """
    keys = checkpoints.log_verifiers(ctx.settings.log_origin, ctx.signer, ctx.retired_public_keys)
    return PlainTextResponse("".join(k.vkey() + "\n" for k in keys), media_type=NOTE_MEDIA_TYPE)


@router.get("/entries", summary="Audit entries you may see")
def list_entries(
    caller: CurrentCaller,
    session: ReadSession,
    case: Annotated[str | None, Query(max_length=64, description="case id")] = None,
    partner: Annotated[
        str | None, Query(max_length=64, description="entries this partner acted in or concerns")
    ] = None,
    since: Annotated[BoundedDateTime | None, Query(description="occurred at or after")] = None,
    until: Annotated[BoundedDateTime | None, Query(description="occurred before")] = None,
    after: Annotated[
        int, Query(ge=-1, le=MAX_LOG_INDEX, description="last index of the previous page")
    ] = -1,
    limit: Annotated[int, Query(ge=1, le=entries.MAX_PAGE)] = 100,
) -> AuditEntryPage:
    """Return entries in log order, filtered, limited to what the caller's role may see."""
    page, next_after = entries.list_entries(
        session,
        entries.scope_for(caller),
        entries.EntryFilter(
            case_id=case,
            partner_id=partner,
            since=None if since is None else as_utc(since),
            until=None if until is None else as_utc(until),
            after=after,
            limit=limit,
        ),
    )
    return AuditEntryPage(entries=[_entry_out(r) for r in page], next_after=next_after)


@router.get("/proofs/inclusion", summary="Inclusion proof of an entry you may see")
def inclusion_proof(
    caller: CurrentCaller,
    ctx: Ctx,
    index: Annotated[int, Query(ge=0, le=MAX_LOG_INDEX)],
    size: Annotated[
        int | None, Query(ge=1, le=MAX_LOG_INDEX, description="tree size; default: latest")
    ] = None,
) -> InclusionProofOut:
    """Return the proof of entry ``index`` under a signed checkpoint.

    With ``size``: under the stored checkpoint of that size, or else the newest signed
    one, with a consistency proof from ``size`` to it (nothing is signed for the past).
    """
    with ctx.db.read() as session:
        entry = entries.visible_entry(session, entries.scope_for(caller), index)
    checkpoint = checkpoints.checkpoint_covering(
        ctx.db,
        ctx.clock,
        ctx.signer,
        ctx.settings.log_origin,
        index,
        size,
        retired_public_keys=ctx.retired_public_keys,
    )
    with ctx.db.read() as session:
        proof = log.inclusion_proof(session, index, checkpoint.tree_size)
        linked = (
            log.consistency_proof(session, size, checkpoint.tree_size).hashes
            if size is not None and size != checkpoint.tree_size
            else ()
        )
    note = checkpoints.witnessed_note(ctx.db, checkpoint, cosign=True)  # with cosignatures
    return InclusionProofOut(
        index=index,
        tree_size=proof.size,
        leaf_hash=_b64(proof.leaf_hash),
        hashes=[_b64(h) for h in proof.hashes],
        root_hash=_b64(proof.root),
        checkpoint=note,
        tlog_proof=format_tlog_proof(index, proof.hashes, note, extra=entry.leaf.encode()),
        requested_size=size,
        consistency_hashes=[_b64(h) for h in linked],
    )


@router.get("/proofs/consistency", summary="Consistency proof between two tree sizes")
def consistency_proof(
    _caller: CurrentCaller,
    session: ReadSession,
    first: Annotated[int, Query(ge=1, le=MAX_LOG_INDEX)],
    second: Annotated[
        int | None, Query(ge=1, le=MAX_LOG_INDEX, description="default: the current size")
    ] = None,
) -> ConsistencyProofOut:
    """Return the RFC 9162 proof that the log at ``first`` is a prefix of the log at ``second``."""
    proof = log.consistency_proof(session, first, second)
    return ConsistencyProofOut(
        first=proof.first,
        second=proof.second,
        first_root=_b64(proof.first_root),
        second_root=_b64(proof.second_root),
        hashes=[_b64(h) for h in proof.hashes],
    )


class AuditEntryPending(BaseModel):
    """The entry is committed but has no leaf index yet; ask again after ``retry_after_ms``."""

    entry_id: int
    status: str = "pending"
    retry_after_ms: int


class AuditEntryPlaced(BaseModel):
    """Where entry ``entry_id`` (the id its action returned) landed in the log."""

    entry_id: int
    index: int
    proof: str = Field(description="path of its inclusion proof")


def _may_see_pending(row: AuditPending, partner_id: str | None) -> bool:
    if partner_id is None:
        return False
    return row.actor_partner_id == partner_id or partner_id in json.loads(row.document)["parties"]


@pending_router.get(
    "/entry-ids/{entry_id}",
    summary="Where an entry id landed in the log, or that it is still pending",
    response_model=AuditEntryPlaced,
    responses={202: {"model": AuditEntryPending, "description": "pending; retry later"}},
)
def entry_by_id(
    caller: CurrentCaller,
    ctx: Ctx,
    entry_id: Annotated[int, Path(ge=0, le=MAX_LOG_INDEX)],
) -> AuditEntryPlaced | JSONResponse:
    """Return the leaf index of the entry an action returned, or 202 while it is pending.

    Does not integrate: it is what a client polls after an action returned an entry id
    (``Retry-After`` says when to ask again). Entries the caller may not see are 404.
    """
    scope = entries.scope_for(caller)
    with ctx.db.read() as session:
        index = sequencer.index_of(session, entry_id)
        if index is not None:
            entries.visible_entry(session, scope, index)  # 404 unless visible
            return AuditEntryPlaced(
                entry_id=entry_id, index=index, proof=f"/v1/audit/proofs/inclusion?index={index}"
            )
        pending = session.get(AuditPending, entry_id)
    if pending is None or not _may_see_pending(pending, scope.partner_id):
        raise NotFoundError(f"no audit entry {entry_id} that you may see")
    wait = sequencer.RETRY_AFTER_MS
    body = AuditEntryPending(entry_id=entry_id, retry_after_ms=wait)
    return JSONResponse(
        body.model_dump(),
        status_code=202,
        headers={"Retry-After": str(max(1, -(-wait // 1000)))},
    )
