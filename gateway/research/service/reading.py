"""What researchers and privacy officers read: releases, bundles (audited) and audit proofs.

Release records and proofs are shown to the agreement's researchers and to the privacy
officers of the partners it names; a bundle is handed only to the agreement's
researchers, only until the release's retention ends, and every download is audited.
"""

from __future__ import annotations

from pathlib import Path

from sqlmodel import col, select

from gateway import usecase
from gateway.audit import checkpoints
from gateway.audit.events import AuditEventType
from gateway.context import AppContext
from gateway.errors import NotFoundError
from gateway.identity.service import Actor, Caller
from gateway.models.research import ResearchRelease
from gateway.research import release_folder as folder
from gateway.research.agreements import Agreement
from gateway.research.bundle import sha256_file
from gateway.research.errors import NotEntitledError, ReleaseExpiredError
from gateway.research.service.agreement_access import (
    agreement_refs,
    find_agreement,
    is_researcher,
    require_may_see,
)
from gateway.research.service.duo import require_download_conditions
from gateway.research.service.release import recover
from gateway.research.service.results import ReleaseView, release_view_of


def release_row(ctx: AppContext, release_id: str) -> tuple[ResearchRelease, Agreement]:
    """Return a stored release and its agreement; raise NotFoundError for an unknown id."""
    with ctx.db.read() as session:
        row = session.get(ResearchRelease, release_id)
    if row is None:
        raise NotFoundError("no such release", field="release_id")
    return row, find_agreement(ctx, row.agreement_id)


def releases(ctx: AppContext, caller: Caller, agreement_id: str) -> list[ReleaseView]:
    """Return an agreement's releases, newest first.

    Raises NotFoundError, or NotEntitledError for anyone ``require_may_see`` refuses.
    """
    agreement = find_agreement(ctx, agreement_id)
    require_may_see(caller, agreement)
    with ctx.db.read() as session:
        rows = session.exec(
            select(ResearchRelease)
            .where(ResearchRelease.agreement_id == agreement.id)
            .order_by(
                col(ResearchRelease.created_at).desc(),
                col(ResearchRelease.audit_leaf_index).desc(),
            )
        ).all()
    return [release_view_of(r) for r in rows]


def release_record(ctx: AppContext, caller: Caller, release_id: str) -> ReleaseView:
    """Return one release's record; raise NotFoundError or NotEntitledError."""
    row, agreement = release_row(ctx, release_id)
    require_may_see(caller, agreement)
    return release_view_of(row)


def bundle(ctx: AppContext, caller: Caller, release_id: str) -> Path:
    """Return the bundle of a release for one of its researchers to download (audited).

    Raises NotFoundError, NotEntitledError (anyone but the agreement's researchers),
    DuoUseRestrictedError or DuoConditionNotMetError (the agreement's DUO conditions;
    audited) or ReleaseExpiredError after the release's retention.
    """
    row, agreement = release_row(ctx, release_id)
    if not is_researcher(caller, agreement):
        raise NotEntitledError(
            "only the agreement's researchers download its releases", release=release_id
        )
    require_download_conditions(ctx, caller, agreement, row.id)
    if ctx.clock.now().date() > row.expires_on:
        raise ReleaseExpiredError(
            f"release {release_id} could be kept until {row.expires_on.isoformat()}; it is "
            "no longer handed out",
            release=release_id,
        )
    path = folder.final_path(ctx.settings.resolved_releases_dir, row.id)
    if not path.exists():
        recover(ctx)
    if not path.exists() or sha256_file(path) != (row.bundle_sha256, row.bundle_bytes):
        raise NotFoundError("the bundle of this release is missing", release=release_id)
    with ctx.db.write() as session:
        usecase.record(
            session,
            ctx.clock,
            Actor.of(caller),
            AuditEventType.RESEARCH_EXTRACT_DOWNLOAD,
            purpose=agreement.purpose,
            legal_basis=agreement.legal_basis,
            refs=agreement_refs(agreement, release=row.id, manifest_sha256=row.manifest_sha256),
        )
    return path


def proof(ctx: AppContext, caller: Caller, release_id: str) -> str:
    """Return the release's audit proof (see ``proof_text``); NotEntitledError as ``releases``."""
    _row, agreement = release_row(ctx, release_id)
    require_may_see(caller, agreement)
    return proof_text(ctx, release_id)


def proof_text(ctx: AppContext, release_id: str) -> str:
    """Return the tlog-proof of the release's audit entry under a signed checkpoint.

    The entry's leaf (in the proof) names the release and its manifest's SHA-256.
    Raises NotFoundError for an unknown release.
    """
    row, _agreement = release_row(ctx, release_id)
    checkpoint = checkpoints.checkpoint_covering(
        ctx.db,
        ctx.clock,
        ctx.signer,
        ctx.settings.log_origin,
        row.audit_leaf_index,
        retired_public_keys=ctx.retired_public_keys,
    )
    return checkpoints.proof_bundle(ctx.db, checkpoint, row.audit_leaf_index)
