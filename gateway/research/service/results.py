"""What the research use cases return: consent states, intake and withdrawal results, releases.

Plain frozen values built from the stored rows; the routes turn them into public schemas.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date, datetime

from gateway.models.research import ResearchConsent, ResearchRelease
from gateway.research.agreements import Agreement
from gateway.research.consent_states import ConsentDecision, ConsentEntry, ConsentState


@dataclass(frozen=True, slots=True)
class ConsentView:
    """A provider's current state on an agreement, and the decision that set it."""

    provider: str
    state: ConsentState
    agreement_version: int
    decided_by: str | None
    decided_at: datetime | None
    note: str | None


@dataclass(frozen=True, slots=True)
class ConsentsView:
    """Every provider's current state, and the whole history of decisions."""

    agreement_id: str
    agreement_version: int
    providers: list[ConsentView]
    history: list[ConsentEntry]


@dataclass(frozen=True, slots=True)
class IntakeResult:
    """What an intake stored: the batch, its row count, identifiers that failed their check."""

    batch_id: str
    created: bool
    rows: int
    invalid_identifiers: dict[str, int]
    policy_version: str
    rule_id: str


@dataclass(frozen=True, slots=True)
class WithdrawalResult:
    """A recorded withdrawal: whether this call recorded it, and how many rows it excludes."""

    agreement_id: str
    created: bool
    rows_excluded: int
    recorded_at: datetime


@dataclass(frozen=True, slots=True)
class ReleaseView:
    """A recorded release."""

    id: str
    agreement_id: str
    agreement_version: int
    agreement_sha256: str
    project: str
    policy_version: str
    manifest_sha256: str
    generalisation_sha256: str
    bundle_name: str
    bundle_sha256: str
    bundle_bytes: int
    rows_in: int
    rows_out: int
    rows_suppressed: int
    consenting_providers: list[str]
    recipients: list[str]
    expires_on: date
    created_at: datetime
    requested_by: str
    audit_index: int


def release_view_of(row: ResearchRelease) -> ReleaseView:
    """Return the view of a stored release."""
    return ReleaseView(
        id=row.id,
        agreement_id=row.agreement_id,
        agreement_version=row.agreement_version,
        agreement_sha256=row.agreement_sha256,
        project=row.project,
        policy_version=row.policy_version,
        manifest_sha256=row.manifest_sha256,
        generalisation_sha256=row.state_sha256,
        bundle_name=row.bundle_name,
        bundle_sha256=row.bundle_sha256,
        bundle_bytes=row.bundle_bytes,
        rows_in=row.rows_in,
        rows_out=row.rows_out,
        rows_suppressed=row.rows_suppressed,
        consenting_providers=json.loads(row.consenting_providers),
        recipients=json.loads(row.recipients),
        expires_on=row.expires_on,
        created_at=row.created_at,
        requested_by=row.requested_by,
        audit_index=row.audit_leaf_index,
    )


def consent_entry_of(row: ResearchConsent) -> ConsentEntry:
    """Return the consent decision a stored row records."""
    return ConsentEntry(
        provider=row.provider_id,
        decision=ConsentDecision(row.decision),
        agreement_version=row.agreement_version,
        recorded_by=row.recorded_by,
        recorded_at=row.recorded_at,
        note=row.note,
    )


def consent_view_of(provider: str, agreement: Agreement, entry: ConsentEntry | None) -> ConsentView:
    """Return a provider's state on the agreement's current version (``none`` without entry)."""
    return ConsentView(
        provider=provider,
        state=ConsentState.NONE if entry is None else entry.state,
        agreement_version=agreement.version,
        decided_by=None if entry is None else entry.recorded_by,
        decided_at=None if entry is None else entry.recorded_at,
        note=None if entry is None else entry.note,
    )
