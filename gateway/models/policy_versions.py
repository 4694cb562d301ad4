"""Policy versions, the one active-version pointer, and proposals to change the policy.

A version is a snapshot of every file of a policy pack with the content hash of what it
compiles to. Exactly one version is active: ``policy_active`` has one row (``id = 1``,
checked by the schema) naming it, and a partial unique index allows at most one version
whose ``state`` is ``active``. Workers poll that single row to see a new activation.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import CheckConstraint, Column, Index, Text, text
from sqlmodel import Field, SQLModel

from gateway.models.base import utc_column


class VersionState(StrEnum):
    """Whether a version is the one in force."""

    ACTIVE = "active"
    RETIRED = "retired"


class VersionOrigin(StrEnum):
    """How a version came into the database."""

    IMPORT = "import"  # the pack on disk, by `gateway init` or the first start
    PROPOSAL = "proposal"  # an approved proposal


class ProposalKind(StrEnum):
    """A change (edited files) or a rollback (the files of an earlier version)."""

    CHANGE = "change"
    ROLLBACK = "rollback"


class ProposalStatus(StrEnum):
    """Where a proposal is in its life: open until one other privacy officer decides."""

    OPEN = "open"
    APPROVED = "approved"
    REJECTED = "rejected"


class PolicyVersion(SQLModel, table=True):
    """One stored policy pack: its files, content hashes, author, time and state."""

    __tablename__ = "policy_versions"
    __table_args__ = (
        Index(
            "uq_policy_versions_one_active",
            "state",
            unique=True,
            sqlite_where=text("state = 'active'"),
            postgresql_where=text("state = 'active'"),
        ),
    )

    id: int | None = Field(default=None, primary_key=True)
    policy_version: str = Field(max_length=64, index=True)
    sources_sha256: str = Field(max_length=64, unique=True)
    sources: str = Field(sa_column=Column(Text, nullable=False))
    rule_count: int
    origin: str = Field(max_length=16)
    proposal_id: int | None = Field(default=None)
    created_at: datetime = utc_column()
    created_by_principal_id: str = Field(max_length=64)
    created_by_partner_id: str | None = Field(default=None, max_length=64)
    state: str = Field(max_length=16)
    activated_at: datetime | None = utc_column(nullable=True)


class PolicyActive(SQLModel, table=True):
    """The single row naming the active version; ``generation`` grows with each activation."""

    __tablename__ = "policy_active"
    __table_args__ = (CheckConstraint("id = 1", name="ck_policy_active_single_row"),)

    id: int = Field(default=1, primary_key=True)
    version_id: int = Field(foreign_key="policy_versions.id")
    generation: int
    activated_at: datetime = utc_column()


class PolicyProposal(SQLModel, table=True):
    """A proposed policy pack, its lint result, and the decision of a second officer."""

    __tablename__ = "policy_proposals"

    id: int | None = Field(default=None, primary_key=True)
    kind: str = Field(max_length=16)
    status: str = Field(max_length=16, index=True)
    title: str = Field(max_length=200)
    description: str = Field(sa_column=Column(Text, nullable=False))
    proposer_principal_id: str = Field(max_length=64, index=True)
    proposer_partner_id: str | None = Field(default=None, max_length=64)
    created_at: datetime = utc_column(index=True)
    base_version_id: int = Field(foreign_key="policy_versions.id")
    rollback_to_version_id: int | None = Field(default=None, foreign_key="policy_versions.id")
    sources: str = Field(sa_column=Column(Text, nullable=False))
    sources_sha256: str = Field(max_length=64)
    policy_version: str = Field(max_length=64)
    changed_files: str = Field(sa_column=Column(Text, nullable=False))
    lint: str = Field(sa_column=Column(Text, nullable=False))
    decided_by_principal_id: str | None = Field(default=None, max_length=64)
    decided_by_partner_id: str | None = Field(default=None, max_length=64)
    decided_at: datetime | None = utc_column(nullable=True)
    decision_note: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    result_version_id: int | None = Field(default=None, foreign_key="policy_versions.id")
