"""The values research use cases return (gateway/research/service/results.py)."""

from __future__ import annotations

import json
from dataclasses import asdict
from datetime import UTC, date, datetime

from gateway.models.research import ResearchConsent, ResearchRelease
from gateway.research.agreements import Agreement
from gateway.research.consent_states import ConsentDecision, ConsentState
from gateway.research.service.results import consent_entry_of, consent_view_of, release_view_of

AT = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)


def test_a_provider_without_a_decision_is_in_state_none(agreement: Agreement) -> None:
    view = consent_view_of("voorbeeldbank", agreement, None)
    assert (view.state, view.decided_by, view.agreement_version) == (
        ConsentState.NONE,
        None,
        agreement.version,
    )


def test_a_stored_consent_reads_back_as_its_decision(agreement: Agreement) -> None:
    row = ResearchConsent(
        agreement_id=agreement.id,
        agreement_version=agreement.version,
        provider_id="voorbeeldbank",
        decision="revoke",
        note=None,
        recorded_by="voorbeeldbank.privacy-officer",
        recorded_at=AT,
        policy_version="v1",
        audit_leaf_index=7,
    )
    entry = consent_entry_of(row)
    assert entry.decision is ConsentDecision.REVOKE and entry.state is ConsentState.REVOKED
    assert consent_view_of("voorbeeldbank", agreement, entry).decided_at == AT


def test_a_stored_release_reads_back_with_its_lists_and_leaf() -> None:
    row = ResearchRelease(
        id="rel-1",
        agreement_id="a",
        agreement_version=2,
        agreement_sha256="0" * 64,
        project="p",
        policy_version="v1",
        manifest_sha256="1" * 64,
        state_sha256="2" * 64,
        bundle_name="rel-1.tar",
        bundle_sha256="3" * 64,
        bundle_bytes=10,
        rows_in=5,
        rows_out=4,
        rows_suppressed=1,
        consenting_providers=json.dumps(["x", "y"]),
        recipients=json.dumps(["nscr"]),
        expires_on=date(2027, 1, 1),
        created_at=AT,
        requested_by="system:cli",
        requested_by_partner=None,
        audit_leaf_index=42,
    )
    view = asdict(release_view_of(row))
    assert view["generalisation_sha256"] == "2" * 64 and view["audit_index"] == 42
    assert (view["consenting_providers"], view["recipients"]) == (["x", "y"], ["nscr"])
