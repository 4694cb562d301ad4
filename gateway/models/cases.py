"""Cases, their participants, step outputs, transitions, records and subject indexes.

Content that may identify people (descriptions, record fields, subject identifiers) is
stored only sealed with the case's data key (``*_sealed`` columns: JSON of
base64 AES-GCM blobs, one per field) or as keyed HMAC indexes (``subject_key``).
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import Column, String, Text, UniqueConstraint
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator
from sqlmodel import Field, SQLModel

from gateway.models.base import utc_column


class CaseStatus(StrEnum):
    """Where a case is in its life: worked on, closed (step 7), or its key destroyed."""

    OPEN = "open"
    CLOSED = "closed"
    SHREDDED = "shredded"


class _CaseStatusType(TypeDecorator[CaseStatus]):
    """A case status stored as its plain string (the column predates the enum)."""

    impl = String(16)
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Dialect) -> str | None:
        """Store a status by its value; refuse strings that are no status."""
        return None if value is None else CaseStatus(value).value

    def process_result_value(self, value: Any, dialect: Dialect) -> CaseStatus | None:
        """Return a stored status as the enum."""
        return None if value is None else CaseStatus(value)


class Case(SQLModel, table=True):
    """One instance of a work process, at one of the seven steps."""

    __tablename__ = "cases"

    id: str = Field(primary_key=True, max_length=40)
    process: str = Field(max_length=32)
    step: int
    status: CaseStatus = Field(sa_column=Column(_CaseStatusType(), nullable=False, index=True))
    riec_partner_id: str = Field(foreign_key="partners.id", max_length=64)
    purpose: str | None = Field(default=None, max_length=64)
    legal_basis: str | None = Field(default=None, max_length=64)
    created_by: str = Field(max_length=64)
    created_at: datetime = utc_column()
    closed_at: datetime | None = utc_column(nullable=True)
    seq: int = Field(default=0)  # last sequence number given to an output or transition


class CaseParticipant(SQLModel, table=True):
    """A partner taking part in a case; only participants act on it."""

    __tablename__ = "case_participants"

    case_id: str = Field(foreign_key="cases.id", primary_key=True, max_length=40)
    partner_id: str = Field(foreign_key="partners.id", primary_key=True, max_length=64)
    added_by: str = Field(max_length=64)
    added_at: datetime = utc_column()


class CaseOutput(SQLModel, table=True):
    """A step's document: signal, go/no-go, analysis, advice, results, evaluation, closure."""

    __tablename__ = "case_outputs"

    id: str = Field(primary_key=True, max_length=40)
    case_id: str = Field(foreign_key="cases.id", index=True, max_length=40)
    step: int
    kind: str = Field(max_length=16)
    seq: int  # order within the case, shared with transitions
    author_principal_id: str = Field(max_length=64)
    author_partner_id: str = Field(max_length=64)
    created_at: datetime = utc_column()
    purpose: str | None = Field(default=None, max_length=64)
    legal_basis: str | None = Field(default=None, max_length=64)
    assigned_partners: str = Field(default="[]", sa_column=Column(Text, nullable=False))
    content_sealed: str = Field(sa_column=Column(Text, nullable=False))


class CaseTransition(SQLModel, table=True):
    """A step change: who, when, why, and under which policy version."""

    __tablename__ = "case_transitions"

    id: str = Field(primary_key=True, max_length=40)
    case_id: str = Field(foreign_key="cases.id", index=True, max_length=40)
    seq: int  # order within the case, shared with outputs
    from_step: int
    to_step: int
    at: datetime = utc_column()
    principal_id: str = Field(max_length=64)
    partner_id: str = Field(max_length=64)
    reason: str | None = Field(default=None, max_length=500)
    policy_version: str = Field(max_length=80)
    rule_id: str = Field(max_length=120)


class CaseSubject(SQLModel, table=True):
    """A subject named in a case's signal, by keyed index and sealed value."""

    __tablename__ = "case_subjects"

    case_id: str = Field(foreign_key="cases.id", primary_key=True, max_length=40)
    subject_key: str = Field(primary_key=True, max_length=80)
    id_type: str = Field(max_length=24)
    value_sealed: str = Field(sa_column=Column(Text, nullable=False))


class Record(SQLModel, table=True):
    """Information a partner shared into a case, with provenance that never leaves it."""

    __tablename__ = "records"
    __table_args__ = (UniqueConstraint("provider_partner_id", "idempotency_key"),)

    id: str = Field(primary_key=True, max_length=40)
    case_id: str = Field(foreign_key="cases.id", index=True, max_length=40)
    # no index of its own: it leads the unique (provider, idempotency key) index
    provider_partner_id: str = Field(foreign_key="partners.id", max_length=64)
    provided_by: str = Field(max_length=64)
    step: int
    category: str = Field(max_length=64)
    legal_basis: str = Field(max_length=64)
    purposes: str = Field(sa_column=Column(Text, nullable=False))  # JSON list
    onward: str = Field(max_length=24)  # never | with-provider-consent | per-policy
    retention_days: int
    retention_until: datetime | None = utc_column(nullable=True, index=True)
    idempotency_key: str = Field(max_length=128)
    content_key: str = Field(max_length=80)  # keyed digest of the content, for retries
    fields_sealed: str = Field(sa_column=Column(Text, nullable=False))
    summary_sealed: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    created_at: datetime = utc_column()


class RecordSubject(SQLModel, table=True):
    """A subject a record is about, by keyed index (for hits and the processing log)."""

    __tablename__ = "record_subjects"

    record_id: str = Field(foreign_key="records.id", primary_key=True, max_length=40)
    subject_key: str = Field(primary_key=True, max_length=80, index=True)
    id_type: str = Field(max_length=24)


class Holding(SQLModel, table=True):
    """A partner's statement that it holds information on a subject (keyed index only).

    Hit/no-hit queries at step 2 are answered from these, never from content.
    """

    __tablename__ = "holdings"

    partner_id: str = Field(foreign_key="partners.id", primary_key=True, max_length=64)
    subject_key: str = Field(primary_key=True, max_length=80, index=True)
    category: str = Field(primary_key=True, max_length=64)
    id_type: str = Field(max_length=24)
    registered_at: datetime = utc_column()
