"""Public shapes of partners, principals and tokens."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field

from gateway.schemas.base import StrictIn
from gateway.vocabulary import IdentifierType, Role


class PartnerIn(StrictIn):
    """A partner organisation to register."""

    id: str = Field(min_length=3, max_length=64, examples=["gemeente-smallingerland"])
    kind: str = Field(min_length=2, max_length=32, examples=["gemeente"])
    name: str = Field(min_length=1, max_length=200, examples=["Gemeente Smallingerland"])
    identifier_type: IdentifierType = Field(strict=False)
    identifier: str = Field(min_length=8, max_length=20, examples=["00000001001234567000"])


class PartnerOut(BaseModel):
    """A registered partner."""

    id: str
    kind: str
    name: str
    identifier_type: IdentifierType
    identifier: str
    active: bool
    is_demo: bool
    created_at: datetime


class PrincipalIn(StrictIn):
    """A person or system to act for a partner."""

    role: Role = Field(strict=False)
    label: str = Field(min_length=1, max_length=200, examples=["Zaaksysteem gemeente"])


class PrincipalOut(BaseModel):
    """A principal, without any credential."""

    id: str
    partner_id: str
    role: Role
    label: str
    active: bool
    created_at: datetime


class TokenOut(BaseModel):
    """A new bearer token. ``token`` is shown this once and cannot be retrieved again."""

    token_id: str
    principal_id: str
    token: str
    expires_at: datetime


class PrincipalWithToken(BaseModel):
    """A new principal and its first token."""

    principal: PrincipalOut
    token: TokenOut


class Me(BaseModel):
    """Who the caller is, as the gateway sees it."""

    principal_id: str
    partner_id: str
    partner_kind: str
    role: Role
