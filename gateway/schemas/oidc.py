"""Public shapes of partners' identity providers and the people linked to principals."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field, SecretStr

from gateway.identity.oidc import OidcClientAuth
from gateway.schemas.base import StrictIn


class OidcProviderIn(StrictIn):
    """A partner's OpenID Connect provider, as the operating RIEC's operator registers it."""

    issuer: str = Field(
        min_length=8, max_length=255, examples=["https://login.gemeente-smallingerland.nl"]
    )
    client_id: str = Field(min_length=1, max_length=255, examples=["riec-gateway"])
    client_auth: OidcClientAuth = Field(default=OidcClientAuth.CLIENT_SECRET_BASIC, strict=False)
    client_credential: SecretStr = Field(
        min_length=1,
        max_length=8000,
        description="the client secret, or for private_key_jwt the private JWK (JSON); "
        "stored sealed, never returned",
    )
    acr_values: list[str] = Field(
        default_factory=list,
        max_length=10,
        description="a sign-in must carry one of these acr values (empty: any)",
        examples=[["urn:gateway:loa:substantial"]],
    )
    api_audience: str | None = Field(
        default=None,
        min_length=1,
        max_length=255,
        description="the aud of the provider's access tokens for this gateway; without it "
        "people of this partner use the workbench only",
    )


class OidcProviderOut(BaseModel):
    """A registered provider, without its credential."""

    partner_id: str
    issuer: str
    client_id: str
    client_auth: OidcClientAuth
    acr_values: list[str]
    api_audience: str | None
    updated_at: datetime


class OidcPersonIn(StrictIn):
    """The provider's subject (``sub``) of the person a principal stands for."""

    subject: str = Field(min_length=1, max_length=255, examples=["248289761001"])


class OidcPersonOut(BaseModel):
    """A principal linked to a person of its partner's provider (the subject is not kept)."""

    principal_id: str
    partner_id: str
    linked_at: datetime
