"""A partner's OpenID Connect provider, and the people it signs in linked to principals.

The client secret (or the private JWK for ``private_key_jwt``) is stored sealed by the
key ring, never in the clear. A person is stored only as the keyed HMAC of their
(``iss``, ``sub``): the same value that four-eyes compares as their person key.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Column, LargeBinary
from sqlmodel import Field, SQLModel

from gateway.models.base import utc_column


class OidcProvider(SQLModel, table=True):
    """The identity provider through which a partner's people sign in."""

    __tablename__ = "oidc_providers"

    partner_id: str = Field(primary_key=True, foreign_key="partners.id", max_length=64)
    issuer: str = Field(max_length=255, unique=True)
    client_id: str = Field(max_length=255)
    client_auth: str = Field(max_length=32)
    """``client_secret_basic`` or ``private_key_jwt`` (``OidcClientAuth``)."""
    client_credential_sealed: bytes = Field(sa_column=Column(LargeBinary(), nullable=False))
    """The client secret or private JWK, sealed by the key ring for this partner."""
    acr_values: str = Field(max_length=500)
    """Space-separated ``acr`` values a sign-in must carry one of (empty: any)."""
    api_audience: str | None = Field(default=None, max_length=255)
    """The ``aud`` of the provider's access tokens for this gateway; None: no API access."""
    created_at: datetime = utc_column()
    updated_at: datetime = utc_column()


class OidcPerson(SQLModel, table=True):
    """A principal that a person of its partner's provider acts as."""

    __tablename__ = "oidc_people"

    principal_id: str = Field(primary_key=True, foreign_key="principals.id", max_length=64)
    partner_id: str = Field(foreign_key="partners.id", index=True, max_length=64)
    person_key: str = Field(max_length=64, index=True)
    """Keyed HMAC of the provider's (``iss``, ``sub``) of this person."""
    created_at: datetime = utc_column()


class OAuthClientKey(SQLModel, table=True):
    """The public JWK with which a partner system signs its client assertions (RFC 7523)."""

    __tablename__ = "oauth_client_keys"

    principal_id: str = Field(primary_key=True, foreign_key="principals.id", max_length=64)
    jwk: str = Field(max_length=8000)
    """The public key as JSON (RSA, EC or OKP); never a private key."""
    created_at: datetime = utc_column()


class OAuthAssertionUse(SQLModel, table=True):
    """A client assertion already used (its ``jti``, hashed): each is accepted once."""

    __tablename__ = "oauth_assertion_uses"

    jti_sha256: str = Field(primary_key=True, max_length=64)
    expires_at: datetime = utc_column(index=True)
