"""The release use case (gateway/research/service/release.py), called directly on both backends."""

from __future__ import annotations

import pytest
from sqlmodel import select

from gateway.audit.events import AuditEventType
from gateway.identity.service import CLI_ACTOR
from gateway.models.policy import PolicyDecisionRecord
from gateway.models.research import ResearchGeneralisation, ResearchRelease
from gateway.research import release_folder
from gateway.research.errors import NoConsentingProviderError, NotEntitledError
from gateway.research.service.release import recover, release
from gateway.research.service.results import ReleaseView
from gateway.research.service.rows import submit_rows
from tests.helpers.research import AGREEMENT, POLICE_ROW, POLITIE, PROJECT, officer, system
from tests.research.conftest import NON_COMMERCIAL, Service


def test_a_release_is_recorded_with_its_decisions_generalisation_and_entry(
    service: Service, released: ReleaseView
) -> None:
    folder = service.ctx.settings.resolved_releases_dir
    assert (folder / released.bundle_name).is_file()
    assert not list(release_folder.pending_dir(folder).glob("*.tar"))
    assert released.recipients == ["haagse-hogeschool", "nscr"]
    assert released.rows_out > 0 and released.requested_by == CLI_ACTOR.principal_id
    (leaf,) = service.leaves(AuditEventType.RESEARCH_EXTRACT_RELEASE)
    assert leaf["index"] == released.audit_index
    assert leaf["refs"]["release"] == released.id
    assert leaf["refs"]["manifest_sha256"] == released.manifest_sha256
    assert leaf["refs"]["rule"] and leaf["policy_version"] == released.policy_version
    assert set(released.consenting_providers) <= set(leaf["parties"])
    with service.ctx.db.read() as session:
        fixed = session.get(ResearchGeneralisation, PROJECT)
        decided = session.exec(
            select(PolicyDecisionRecord).where(
                PolicyDecisionRecord.action == "research:extract:release"
            )
        ).all()
    assert fixed is not None and fixed.fixed_by_release == released.id
    assert decided and all(d.decided_at == service.ctx.clock.now() for d in decided)
    assert recover(service.ctx) == {"completed": [], "discarded": []}


def test_without_a_consenting_provider_nothing_is_released_but_the_refusals_are_recorded(
    service: Service,
) -> None:
    police = service.caller(system(POLITIE))
    submit_rows(service.ctx, police, AGREEMENT, "intake-0001", "politie-incidenten", [POLICE_ROW])
    with pytest.raises(NoConsentingProviderError):
        release(service.ctx, CLI_ACTOR, AGREEMENT, declared_use=NON_COMMERCIAL)
    with pytest.raises(NotEntitledError):  # an API caller must be entitled to ask
        release(service.ctx, CLI_ACTOR, AGREEMENT, caller=service.caller(officer(POLITIE)))
    with service.ctx.db.read() as session:
        decided = session.exec(
            select(PolicyDecisionRecord).where(
                PolicyDecisionRecord.action == "research:extract:release"
            )
        ).all()
    assert decided and not any(d.allowed for d in decided)
    assert service.count(ResearchRelease) == 0
    assert service.leaves(AuditEventType.RESEARCH_EXTRACT_RELEASE) == []
    assert not list(service.ctx.settings.resolved_releases_dir.glob("**/*.tar"))
