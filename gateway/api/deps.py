"""Typed dependencies for routes: the context, sessions and the authenticated caller.

Roles are checked here and only here: routes declare the caller type they need
(``OperatorCaller``, ``PrivacyOfficerCaller``...) and never look at roles themselves.
"""

from __future__ import annotations

import copy
from collections.abc import Awaitable, Callable, Iterator
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Path, Request, routing
from fastapi.dependencies.models import Dependant
from fastapi.exceptions import RequestValidationError
from sqlmodel import Session
from starlette.concurrency import run_in_threadpool

from gateway.context import AppContext
from gateway.errors import AuthenticationError, PermissionDeniedError
from gateway.identity.oidc_flow import authenticate_person, looks_like_jwt
from gateway.identity.service import Caller, authenticate
from gateway.schemas.base import MAX_LOG_INDEX, MAX_ROW_ID
from gateway.vocabulary import Role

BEARER_SCHEME = "HTTPBearer"
BEARER_DESCRIPTION = (
    "Bearer token issued by the gateway, or (people) a JWT access token of their "
    "partner's identity provider"
)


async def get_ctx(request: Request) -> AppContext:
    """Return the gateway context stored on the app.

    ``async`` although it awaits nothing: FastAPI runs a sync dependency in a worker
    thread, a hop that costs more than this whole function.
    """
    ctx: AppContext = request.app.state.ctx
    return ctx


Ctx = Annotated[AppContext, Depends(get_ctx)]


def get_read_session(ctx: Ctx) -> Iterator[Session]:
    """Yield a read-only session for the duration of the request."""
    with ctx.db.read() as session:
        yield session


ReadSession = Annotated[Session, Depends(get_read_session)]


PRINCIPAL_HEADER = "Gateway-Principal"
PRINCIPAL_MAX_LENGTH = 64


def _presented_token(authorization: str | None) -> str:
    """Return the credential of an ``Authorization: Bearer ...`` header, or raise 401.

    As FastAPI's ``HTTPBearer``: the scheme is matched case-insensitively.
    """
    scheme, _, credential = (authorization or "").partition(" ")
    if not scheme or not credential or scheme.lower() != "bearer":
        raise AuthenticationError("a bearer token is required", reason="missing")
    return credential


def _acting_principal(request: Request) -> str | None:
    """Return the ``Gateway-Principal`` header (at most 64 characters, else 422)."""
    value = request.headers.get(PRINCIPAL_HEADER)
    if value is not None and len(value) > PRINCIPAL_MAX_LENGTH:
        raise RequestValidationError(
            [
                {
                    "type": "string_too_long",
                    "loc": ("header", PRINCIPAL_HEADER.lower()),
                    "msg": f"String should have at most {PRINCIPAL_MAX_LENGTH} characters",
                }
            ]
        )
    return value


def _authenticate(ctx: AppContext, presented: str, principal: str | None) -> Caller:
    if looks_like_jwt(presented):
        with ctx.db.read() as session:
            return authenticate_person(
                session, ctx.oidc, presented, ctx.clock, ctx.keys.person_key, principal
            )
    # One statement finds the token with its principal and partner: a look-up, not a
    # session (every request pays for this).
    with ctx.db.lookup() as conn:
        return authenticate(conn, presented, ctx.clock)


async def get_caller(request: Request) -> Caller:
    """Return the authenticated caller, or raise AuthenticationError (401).

    A gateway token (``gw_...``) is checked against the registry; a JWT against the
    identity provider of the partner whose issuer it names (``identity.oidc_flow``).

    One dependency reading the headers itself, not three (a bearer scheme, a header
    parameter, the context), and ``async``: on SQLite a gateway token is looked up on the
    event loop, one statement on a local file that no writer blocks (WAL), cheaper than
    the worker-thread hop a sync dependency takes. Over the network (PostgreSQL) and for
    JWTs (their provider's keys may be fetched) the look-up runs in a worker thread. The
    OpenAPI document still declares the bearer scheme and the header
    (``document_authentication``).
    """
    ctx: AppContext = request.app.state.ctx
    principal = _acting_principal(request)  # a malformed header is 422 before any 401
    presented = _presented_token(request.headers.get("authorization"))
    if ctx.db.is_sqlite and not looks_like_jwt(presented):
        caller = _authenticate(ctx, presented, principal)
    else:
        caller = await run_in_threadpool(_authenticate, ctx, presented, principal)
    request.state.principal_id = caller.principal_id
    return caller


CurrentCaller = Annotated[Caller, Depends(get_caller)]


def check_role(caller: Caller, *roles: Role) -> Caller:
    """Return ``caller`` if its role is one of ``roles``, else raise PermissionDeniedError."""
    if caller.role not in roles:
        names = sorted(r.value for r in roles)
        raise PermissionDeniedError(
            f"this operation needs the role {' or '.join(names)}", required_roles=names
        )
    return caller


def require(*roles: Role) -> Callable[[Caller], Awaitable[Caller]]:
    """Return a dependency that admits only callers with one of ``roles`` (else 403)."""

    async def check(caller: CurrentCaller) -> Caller:  # async: no worker-thread hop
        return check_role(caller, *roles)

    return check


OperatorCaller = Annotated[Caller, Depends(require(Role.OPERATOR))]
PrivacyOfficerCaller = Annotated[Caller, Depends(require(Role.PRIVACY_OFFICER))]
# The register of processing activities is open inside the partnership: every partner's
# systems, analysts, privacy officers and researchers; operators run the gateway, not
# its processing, and are refused like anyone else the partnership does not name.
PartnerCaller = Annotated[Caller, Depends(require(*(r for r in Role if r is not Role.OPERATOR)))]


# Integer path parameters, bounded so that no number reaches the database driver out of range.
VersionId = Annotated[int, Path(ge=1, le=MAX_ROW_ID, description="a policy version id")]
ProposalId = Annotated[int, Path(ge=1, le=MAX_ROW_ID, description="a proposal id")]
LogIndex = Annotated[int, Path(ge=0, le=MAX_LOG_INDEX, description="an audit log index")]


def _authenticates(dependant: Dependant) -> bool:
    return any(sub.call is get_caller or _authenticates(sub) for sub in dependant.dependencies)


_PRINCIPAL_PARAMETER = {
    "description": "with a provider's token: which of the person's principals acts",
    "in": "header",
    "name": PRINCIPAL_HEADER.lower(),
    "required": False,
    "schema": {
        "anyOf": [{"maxLength": PRINCIPAL_MAX_LENGTH, "type": "string"}, {"type": "null"}],
        "description": "with a provider's token: which of the person's principals acts",
        "title": PRINCIPAL_HEADER,
    },
}


def document_authentication(app: FastAPI, schema: dict[str, Any]) -> dict[str, Any]:
    """Declare in ``schema`` (``app``'s OpenAPI document) how callers authenticate.

    ``get_caller`` reads its headers itself, so FastAPI cannot see them: every operation
    whose dependencies include it gets the bearer security requirement and the optional
    ``Gateway-Principal`` header, as FastAPI's ``HTTPBearer`` and ``Header`` would declare.
    """
    authenticated = False
    for route in routing.iter_route_contexts(app.routes):
        if not isinstance(route.original_route, routing.APIRoute) or not route.include_in_schema:
            continue
        if not _authenticates(route.dependant):
            continue
        authenticated = True
        for method in route.methods or ():
            operation = schema["paths"][route.path_format][method.lower()]
            operation["security"] = [{BEARER_SCHEME: []}]
            operation.setdefault("parameters", []).append(copy.deepcopy(_PRINCIPAL_PARAMETER))
            # a too long header is refused as a validation error (problems.py documents it)
            operation["responses"].setdefault("422", {"description": "Validation Error"})
    if authenticated:
        schemes = schema.setdefault("components", {}).setdefault("securitySchemes", {})
        schemes[BEARER_SCHEME] = {
            "type": "http",
            "description": BEARER_DESCRIPTION,
            "scheme": "bearer",
        }
    return schema
