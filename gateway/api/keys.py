"""``GET /v1/keys/signing``: the gateway's Ed25519 public keys, every version, for verifiers."""

from __future__ import annotations

import base64
from datetime import datetime
from typing import Literal

from fastapi import APIRouter
from pydantic import BaseModel, Field

from gateway.api.deps import Ctx, CurrentCaller

router = APIRouter(prefix="/v1", tags=["keys"])


class SigningKeyOut(BaseModel):
    """One version of the signing key: public half only."""

    version: int = Field(description="key version; the active one signs new material")
    algorithm: Literal["Ed25519"] = "Ed25519"
    public_key: str = Field(description="raw 32-byte Ed25519 public key, standard base64")
    fingerprint: str = Field(description="hex SHA-256 of the raw public key")
    created_at: datetime
    active: bool = Field(description="whether this version signs new checkpoints and manifests")


class SigningKeysOut(BaseModel):
    """Every signing key version the gateway has used, oldest first."""

    keys: list[SigningKeyOut]


@router.get("/keys/signing", summary="The gateway's signing public keys (any caller)")
def signing_keys(_caller: CurrentCaller, ctx: Ctx) -> SigningKeysOut:
    """Return the public keys of every signing key version; old ones still verify old signatures."""
    return SigningKeysOut(
        keys=[
            SigningKeyOut(
                version=key.version,
                public_key=base64.b64encode(key.public_key).decode(),
                fingerprint=key.fingerprint,
                created_at=key.created_at,
                active=key.active,
            )
            for key in ctx.keys.signing_public_keys()
        ]
    )
