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
    person: str | None = Field(
        default=None,
        min_length=3,
        max_length=254,
        description=(
            "e-mail address or employee number of the person this principal stands for "
            "(required for a privacy officer, refused for a partner system); only its "
            "keyed hash is stored"
        ),
        examples=["j.jansen@example.org"],
    )


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


class EnrolmentOut(BaseModel):
    """A one-time enrolment code, shown this once: hand it to the principal's own person or
    system, which redeems it at ``POST /v1/enrolments`` for its bearer token."""

    code_id: str
    principal_id: str
    code: str
    expires_at: datetime


class EnrolmentIn(StrictIn):
    """An enrolment code to redeem (in the body, never in the URL)."""

    code: str = Field(min_length=1, max_length=128)


class PrincipalWithToken(BaseModel):
    """A new principal and its first credential: a ``token`` (an operator of one's own
    partner) or an ``enrolment`` code (every other case); the other member is absent."""

    principal: PrincipalOut
    token: TokenOut | None = None
    enrolment: EnrolmentOut | None = None


class Me(BaseModel):
    """Who the caller is, as the gateway sees it."""

    principal_id: str
    partner_id: str
    partner_kind: str
    role: Role
