"""The gateway's own OAuth 2.0 token endpoint (client credentials, private_key_jwt) and the
route by which operators register a partner system's public key. Rules: identity.client_credentials.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from gateway.api.deps import Ctx, OperatorCaller
from gateway.api.problems import problem
from gateway.identity import client_credentials
from gateway.identity.authority import Registrar
from gateway.schemas.base import StrictIn

router = APIRouter(tags=["partners"])
TOKEN_PATH = "/oauth/token"  # noqa: S105  (a path, not a secret)
TOKEN_MINUTES = 15


class ClientKeyIn(StrictIn):
    """A partner system's public key (JWK) for signing client assertions."""

    jwk: dict[str, Any] = Field(
        description="public RSA, EC or OKP key as a JWK", examples=[{"kty": "EC", "crv": "P-256"}]
    )


class ClientKeyOut(BaseModel):
    """A registered client key."""

    principal_id: str
    registered_at: datetime


@router.put(
    "/v1/principals/{principal_id}/client-key",
    summary="Register a partner system's public key for client credentials (operator)",
)
def set_client_key(
    principal_id: str, body: ClientKeyIn, caller: OperatorCaller, ctx: Ctx
) -> ClientKeyOut:
    """Let a partner system of one's own partner obtain short tokens at ``/oauth/token`` by
    signing client assertions (RFC 7523) with this key's private half."""
    row = client_credentials.set_client_key(
        ctx.db,
        ctx.clock,
        Registrar(caller, ctx.settings.resolved_operating_partner),
        principal_id,
        json.dumps(body.jwk),
    )
    return ClientKeyOut(principal_id=row.principal_id, registered_at=row.created_at)


@router.post(
    TOKEN_PATH,
    summary="A short-lived token for a partner system (client credentials, private_key_jwt)",
    response_model=None,
)
def token(
    request: Request,
    ctx: Ctx,
    grant_type: Annotated[str, Form(max_length=64)],
    client_assertion_type: Annotated[str | None, Form(max_length=100)] = None,
    client_assertion: Annotated[str | None, Form(max_length=8000)] = None,
    client_id: Annotated[str | None, Form(max_length=64)] = None,
    scope: Annotated[str | None, Form(max_length=200)] = None,
) -> JSONResponse:
    """RFC 6749 section 4.4 with RFC 7523 client authentication.

    Errors are problem documents that also carry RFC 6749's ``error`` and
    ``error_description`` (``invalid_client``, ``unsupported_grant_type``...).
    """
    base = ctx.settings.public_url or str(request.base_url).rstrip("/")
    form = {
        k: v
        for k, v in {
            "grant_type": grant_type,
            "client_assertion_type": client_assertion_type,
            "client_assertion": client_assertion,
            "client_id": client_id,
            "scope": scope,
        }.items()
        if v is not None
    }
    server = client_credentials.TokenServer(
        ctx.db, ctx.clock, f"{base}{TOKEN_PATH}", timedelta(minutes=TOKEN_MINUTES)
    )
    status, body, headers = server.respond(f"{base}{TOKEN_PATH}", form, dict(request.headers))
    kept = {k: v for k, v in headers.items() if k.lower() not in {"cache-control", "pragma"}}
    if status >= 400:  # a problem document that also carries RFC 6749's members
        error = str(body.get("error", "invalid_request")) if isinstance(body, dict) else ""
        described = body.get("error_description") if isinstance(body, dict) else None
        return problem(
            status,
            "token-request-refused",
            "Token request refused",
            str(described or error or "the token request was refused"),
            headers=kept or None,
            error=error or "invalid_request",
            error_description=str(described or error),
        )
    return JSONResponse(body, status_code=status, headers=kept)  # no-store: the middleware
