"""The audit log browser: the latest signed checkpoint and whether it holds, the entries the
officer may see (filtered by case, partner and period), proofs to download, and a full
verification of the log on request.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import PlainTextResponse

from gateway.api.deps import Ctx, LogIndex
from gateway.audit import checkpoints, entries, log, sequencer
from gateway.audit.note import verify_checkpoint
from gateway.audit.verify import verify_log
from gateway.clock import as_utc
from gateway.context import AppContext
from gateway.errors import InvalidInputError
from gateway.keys.errors import IntegrityCheckFailedError
from gateway.schemas.base import EARLIEST, LATEST
from gateway.web.framework import PREFIX, CsrfOfficer, Officer, WebRoute, add_nav, render

router = APIRouter(prefix=PREFIX, route_class=WebRoute, include_in_schema=False)
add_nav("audit", "Auditlog · audit log", f"{PREFIX}/audit", order=50)

PAGE = 50


@dataclass(frozen=True, slots=True)
class CheckpointStatus:
    """The newest checkpoint, and whether its signature and root agree with the stored log."""

    size: int
    note: str
    signature_ok: bool
    root_matches: bool

    @property
    def ok(self) -> bool:
        """True when the checkpoint verifies and the store still produces its root."""
        return self.signature_ok and self.root_matches


def checkpoint_status(ctx: AppContext) -> CheckpointStatus:
    """Sign a checkpoint if the log grew, then check it against the keys and the store."""
    row = checkpoints.current_checkpoint(
        ctx.db,
        ctx.clock,
        ctx.signer,
        ctx.settings.log_origin,
        retired_public_keys=ctx.retired_public_keys,
    )
    verifiers = checkpoints.log_verifiers(
        ctx.settings.log_origin, ctx.signer, ctx.retired_public_keys
    )
    try:
        checkpoint = verify_checkpoint(row.note, verifiers, ctx.settings.log_origin)
    except IntegrityCheckFailedError:
        return CheckpointStatus(row.tree_size, row.note, signature_ok=False, root_matches=False)
    with ctx.db.read() as session:
        root = log.root_at(session, checkpoint.size)
    return CheckpointStatus(
        checkpoint.size, row.note, signature_ok=True, root_matches=root == checkpoint.root
    )


def _when(value: str) -> datetime | None:
    if not value:
        return None
    try:
        when = as_utc(datetime.fromisoformat(value))
        if not EARLIEST <= when <= LATEST:
            raise ValueError("out of range")
        return when
    except (ValueError, OverflowError) as exc:
        raise InvalidInputError("dates look like 2026-11-23 or 2026-11-23T09:00") from exc


@router.get("/audit")
def audit_log(request: Request, user: Officer, ctx: Ctx) -> Response:
    """Show the checkpoint status and one page of visible entries, newest first, filtered."""
    query = request.query_params
    before = query.get("before", "")
    flt = entries.EntryFilter(
        case_id=query.get("case") or None,
        partner_id=query.get("partner") or None,
        since=_when(query.get("since", "")),
        until=_when(query.get("until", "")),
        before=int(before) if before.isascii() and before.isdigit() and len(before) < 16 else None,
        newest_first=True,
        limit=PAGE,
    )
    status = checkpoint_status(ctx)
    with ctx.db.read() as session:
        page, next_after = entries.list_entries(session, entries.scope_for(user.caller), flt)
    rows: list[dict[str, Any]] = [
        {"index": e.leaf_index, "hash": e.leaf_hash.hex()[:16], **json.loads(e.leaf)} for e in page
    ]
    return render(
        request,
        "audit.html",
        user,
        nav="audit",
        status=status,
        rows=rows,
        older=next_after,
        filters={k: query.get(k, "") for k in ("case", "partner", "since", "until")},
    )


@router.get("/audit/{index}/proof")
def proof(index: LogIndex, user: Officer, ctx: Ctx) -> Response:
    """Download the offline proof (C2SP tlog-proof) that entry ``index`` is in the log."""
    sequencer.catch_up(ctx.db)
    with ctx.db.read() as session:
        entries.visible_entry(session, entries.scope_for(user.caller), index)
    covering = checkpoints.checkpoint_covering(
        ctx.db,
        ctx.clock,
        ctx.signer,
        ctx.settings.log_origin,
        index,
        retired_public_keys=ctx.retired_public_keys,
    )
    return PlainTextResponse(
        checkpoints.proof_bundle(ctx.db, covering, index),
        headers={"Content-Disposition": f'attachment; filename="entry-{index}.tlog-proof"'},
    )


@router.post("/audit/verify")
def verify(request: Request, user: CsrfOfficer, ctx: Ctx) -> Response:
    """Recompute the whole log from the stored events and show the outcome (an htmx fragment)."""
    sequencer.catch_up(ctx.db)
    report = verify_log(
        ctx.db,
        checkpoints.log_verifiers(ctx.settings.log_origin, ctx.signer, ctx.retired_public_keys),
        ctx.settings.log_origin,
        ctx.clock.now(),
    )
    return render(request, "_verify.html", user, report=report)
