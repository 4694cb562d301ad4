"""Reading releases, bundles and proofs (gateway/research/service/reading.py), called directly."""

from __future__ import annotations

import base64
from datetime import timedelta

import pytest

from gateway.audit.events import AuditEventType
from gateway.errors import NotFoundError
from gateway.research.errors import NotEntitledError, ReleaseExpiredError
from gateway.research.service.reading import (
    bundle,
    proof,
    proof_text,
    release_record,
    releases,
)
from gateway.research.service.results import ReleaseView
from tests.helpers.research import AGREEMENT, BANK, NSCR, officer, system
from tests.research.conftest import Service


def test_researchers_download_officers_read_and_every_download_is_audited(
    service: Service, released: ReleaseView
) -> None:
    ctx, researcher, bank_po = service.ctx, service.caller(NSCR), service.caller(officer(BANK))
    assert [r.id for r in releases(ctx, bank_po, AGREEMENT)] == [released.id]
    assert release_record(ctx, researcher, released.id) == released
    path = bundle(ctx, researcher, released.id)
    assert path.name == released.bundle_name
    (leaf,) = service.leaves(AuditEventType.RESEARCH_EXTRACT_DOWNLOAD)
    assert leaf["refs"]["release"] == released.id and leaf["actor"]["partner"] == "nscr"
    with pytest.raises(NotEntitledError):
        bundle(ctx, bank_po, released.id)
    with pytest.raises(NotEntitledError):
        release_record(ctx, service.caller(system(BANK)), released.id)
    text = proof(ctx, bank_po, released.id)
    assert text == proof_text(ctx, released.id)
    extra = next(line for line in text.splitlines() if line.startswith("extra "))
    assert released.manifest_sha256 in base64.b64decode(extra.split()[1]).decode()
    with pytest.raises(NotFoundError):
        bundle(ctx, researcher, "rel-none")
    (ctx.settings.resolved_releases_dir / released.bundle_name).write_bytes(b"tampered")
    with pytest.raises(NotFoundError):
        bundle(ctx, researcher, released.id)
    assert len(service.leaves(AuditEventType.RESEARCH_EXTRACT_DOWNLOAD)) == 1


def test_a_bundle_is_not_handed_out_after_the_release_expires(
    service: Service, released: ReleaseView
) -> None:
    researcher = service.caller(NSCR)  # authenticated before its token expires too
    days = (released.expires_on - service.ctx.clock.now().date()).days
    service.ctx.clock.advance(timedelta(days=days))  # type: ignore[attr-defined]
    assert bundle(service.ctx, researcher, released.id).is_file()  # the last day
    service.ctx.clock.advance(timedelta(days=1))  # type: ignore[attr-defined]
    with pytest.raises(ReleaseExpiredError):
        bundle(service.ctx, researcher, released.id)
