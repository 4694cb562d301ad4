"""Recorded policy decisions: every request the engine answered, with outcome and version.

Kept so that a proposed policy can be replayed against real past requests, and so that
partners and data subjects can see what was decided and why.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Column, Text
from sqlmodel import Field, SQLModel

from gateway.models.base import utc_column


class PolicyDecisionRecord(SQLModel, table=True):
    """One decision: the full request, the outcome, the rule and the policy version.

    Indexed by ``decided_at`` only, the one column a query selects on (replays take a
    period): every decided request inserts a row, and each index is a page more to write.
    """

    __tablename__ = "policy_decisions"

    id: int | None = Field(default=None, primary_key=True)
    decided_at: datetime = utc_column(index=True)
    actor_principal_id: str | None = Field(default=None, max_length=64)
    actor_partner_id: str | None = Field(default=None, max_length=64)
    case_id: str | None = Field(default=None, max_length=64)
    request_sha256: str = Field(max_length=64)
    partner_id: str = Field(max_length=64)
    partner_kind: str = Field(max_length=64)
    role: str = Field(max_length=32)
    action: str = Field(max_length=64)
    process: str = Field(max_length=64)
    step: int | None = Field(default=None)
    purpose: str = Field(max_length=64)
    category: str = Field(max_length=64)
    legal_basis: str = Field(max_length=64)
    provider_kind: str = Field(max_length=64)
    relation: str = Field(max_length=16)
    consent: str = Field(max_length=16)
    allowed: bool
    rule_id: str = Field(max_length=128)
    policy_version: str = Field(max_length=64)
    obligations: str = Field(sa_column=Column(Text, nullable=False))
    audit_entry_id: int = Field(sa_column=Column(BigInteger, nullable=False))
    """The audit entry's id (``audit_entries.entry_id``; its leaf index comes later)."""
