"""Research: provider consents, intake batches and rows, withdrawals, generalisations, releases.

Research rows never hold a raw identifier: identifiers are replaced by the project's
keyed pseudonyms on intake and everything else of a row is sealed with the project's
row key (``payload_sealed``: base64 of one AES-GCM blob, bound to the batch, the row
number and the key version). Withdrawals hold only the respondent's pseudonym.
"""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import Column, Date, Index, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

from gateway.models.base import utc_column


class ResearchConsent(SQLModel, table=True):
    """One decision of a provider's privacy officer on an agreement: the history is kept.

    The current state of a provider is its latest row for the agreement's current version.
    """

    __tablename__ = "research_consents"
    __table_args__ = (Index("ix_research_consents_agreement", "agreement_id", "provider_id"),)

    id: int | None = Field(default=None, primary_key=True)
    agreement_id: str = Field(max_length=80)
    agreement_version: int
    provider_id: str = Field(foreign_key="partners.id", max_length=64)
    decision: str = Field(max_length=16)  # consent | refuse | revoke
    note: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    recorded_by: str = Field(max_length=64)
    recorded_at: datetime = utc_column()
    policy_version: str = Field(max_length=80)
    audit_leaf_index: int


class ResearchBatch(SQLModel, table=True):
    """One intake request: a provider's rows for one instrument of an agreement."""

    __tablename__ = "research_batches"
    __table_args__ = (UniqueConstraint("provider_id", "idempotency_key"),)

    id: str = Field(primary_key=True, max_length=40)
    agreement_id: str = Field(max_length=80, index=True)
    instrument_id: str = Field(max_length=80)
    provider_id: str = Field(foreign_key="partners.id", max_length=64)
    submitted_by: str = Field(max_length=64)
    idempotency_key: str = Field(max_length=128)
    content_key: str = Field(max_length=80)  # keyed digest of the content, for retries
    row_count: int
    invalid_identifiers: str = Field(sa_column=Column(Text, nullable=False))  # JSON counts
    policy_version: str = Field(max_length=80)
    rule_id: str = Field(max_length=120)
    created_at: datetime = utc_column()


class ResearchRow(SQLModel, table=True):
    """One submitted row: provenance in the clear, pseudonyms and values sealed."""

    __tablename__ = "research_rows"
    __table_args__ = (
        Index("ix_research_rows_selection", "agreement_id", "provider_id", "instrument_id"),
    )

    batch_id: str = Field(foreign_key="research_batches.id", primary_key=True, max_length=40)
    seq: int = Field(primary_key=True)
    agreement_id: str = Field(max_length=80)
    instrument_id: str = Field(max_length=80)
    provider_id: str = Field(max_length=64)
    category: str = Field(max_length=64)
    respondent_key: str | None = Field(default=None, max_length=80, index=True)
    payload_sealed: str = Field(sa_column=Column(Text, nullable=False))


class ResearchWithdrawal(SQLModel, table=True):
    """A questionnaire respondent withdrew consent: excluded from every later release."""

    __tablename__ = "research_withdrawals"

    agreement_id: str = Field(primary_key=True, max_length=80)
    respondent_key: str = Field(primary_key=True, max_length=80)
    provider_id: str = Field(foreign_key="partners.id", max_length=64)
    recorded_by: str = Field(max_length=64)
    recorded_at: datetime = utc_column()


class ResearchGeneralisation(SQLModel, table=True):
    """The generalisation a project's first release fixed; every later release reuses it."""

    __tablename__ = "research_generalisations"

    project: str = Field(primary_key=True, max_length=80)
    agreement_id: str = Field(max_length=80)
    state: str = Field(sa_column=Column(Text, nullable=False))  # GeneralisationState JSON
    state_sha256: str = Field(max_length=64)
    fixed_by_release: str = Field(max_length=120)
    fixed_at: datetime = utc_column()


class ResearchRelease(SQLModel, table=True):
    """A published release: what went to whom, under which versions, and its audit entry."""

    __tablename__ = "research_releases"

    id: str = Field(primary_key=True, max_length=120)
    agreement_id: str = Field(max_length=80, index=True)
    agreement_version: int
    agreement_sha256: str = Field(max_length=64)
    project: str = Field(max_length=80)
    policy_version: str = Field(max_length=80)
    manifest_sha256: str = Field(max_length=64)
    state_sha256: str = Field(max_length=64)
    bundle_name: str = Field(max_length=140)
    bundle_sha256: str = Field(max_length=64)
    bundle_bytes: int
    rows_in: int
    rows_out: int
    rows_suppressed: int
    consenting_providers: str = Field(sa_column=Column(Text, nullable=False))  # JSON list
    recipients: str = Field(sa_column=Column(Text, nullable=False))  # JSON list of partners
    expires_on: date = Field(sa_column=Column(Date, nullable=False))
    created_at: datetime = utc_column()
    requested_by: str = Field(max_length=64)
    requested_by_partner: str | None = Field(default=None, max_length=64)
    audit_leaf_index: int


class ResearchRecipient(SQLModel, table=True):
    """One version of a researcher's age recipient under an agreement: the history is kept.

    A researcher registers the public key (``pending``); a privacy officer of the
    researcher's science partner, not the researcher, confirms it (``confirmed``);
    registering a new key, or an officer's revocation, ends it (``revoked``). Releases
    are encrypted to the confirmed recipients only.
    """

    __tablename__ = "research_recipients"
    __table_args__ = (
        Index("ix_research_recipients_agreement", "agreement_id", "status"),
        UniqueConstraint("agreement_id", "version"),
    )

    id: str = Field(primary_key=True, max_length=40)
    agreement_id: str = Field(max_length=80)
    version: int  # per agreement: 1, 2, ... in the order recipients were registered
    partner_id: str = Field(foreign_key="partners.id", max_length=64)
    principal_id: str = Field(max_length=64)  # the researcher whose key it is
    recipient: str = Field(max_length=100)  # the age public key (age1...)
    status: str = Field(max_length=16)  # pending | confirmed | revoked
    added_by: str = Field(max_length=64)
    added_at: datetime = utc_column()
    confirmed_by: str | None = Field(default=None, max_length=64)
    confirmed_at: datetime | None = utc_column(nullable=True)
    revoked_by: str | None = Field(default=None, max_length=64)
    revoked_at: datetime | None = utc_column(nullable=True)
    replaced_by: str | None = Field(default=None, max_length=40)


class ResearchRowSubject(SQLModel, table=True):
    """The keyed subject index of a person a research row is about (never the identifier).

    The same keyed index (``KeyRing.blind_index``) as the case subjects and the audit
    subject index, so a data-subject request finds the person's research rows and the
    releases they went into; ``person`` is the key that stands for the row's person.
    """

    __tablename__ = "research_row_subjects"

    batch_id: str = Field(foreign_key="research_batches.id", primary_key=True, max_length=40)
    seq: int = Field(primary_key=True)
    subject_key: str = Field(primary_key=True, max_length=80, index=True)
    id_type: str = Field(max_length=32)
    person: str = Field(max_length=80)
