"""Partners (organisations), the principals acting for them, and their bearer tokens."""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Field, SQLModel

from gateway.models.base import utc_column


class Partner(SQLModel, table=True):
    """An organisation taking part: a gemeente, the police, a bank, a science partner."""

    __tablename__ = "partners"

    id: str = Field(primary_key=True, max_length=64)
    kind: str = Field(max_length=32, index=True)
    name: str = Field(max_length=200)
    identifier_type: str = Field(max_length=8)
    identifier: str = Field(max_length=32, unique=True)
    active: bool = Field(default=True)
    is_demo: bool = Field(default=False)
    created_at: datetime = utc_column()


class Principal(SQLModel, table=True):
    """A person or system acting for a partner, with exactly one role."""

    __tablename__ = "principals"

    id: str = Field(primary_key=True, max_length=64)
    partner_id: str = Field(foreign_key="partners.id", index=True, max_length=64)
    role: str = Field(max_length=32)
    label: str = Field(max_length=200)
    active: bool = Field(default=True)
    created_at: datetime = utc_column()
    person_key: str | None = Field(default=None, max_length=64, index=True)
    """Keyed HMAC of the normalised person identifier (e-mail, employee number) of a
    principal that is a person; never the identifier itself. None for systems."""


class ApiToken(SQLModel, table=True):
    """A bearer token; only the SHA-256 of its secret part is stored."""

    __tablename__ = "api_tokens"

    id: str = Field(primary_key=True, max_length=32)
    principal_id: str = Field(foreign_key="principals.id", index=True, max_length=64)
    secret_sha256: str = Field(max_length=64)
    created_at: datetime = utc_column()
    expires_at: datetime = utc_column()
    revoked_at: datetime | None = utc_column(nullable=True)


class EnrolmentCode(SQLModel, table=True):
    """A one-time code that its holder redeems for a principal's bearer token.

    Only the SHA-256 of its secret part is stored; ``used_at`` is set once, on redemption.
    """

    __tablename__ = "enrolment_codes"

    id: str = Field(primary_key=True, max_length=32)
    principal_id: str = Field(foreign_key="principals.id", index=True, max_length=64)
    secret_sha256: str = Field(max_length=64)
    created_at: datetime = utc_column()
    expires_at: datetime = utc_column()
    used_at: datetime | None = utc_column(nullable=True)
