"""Typed dependencies for routes: the context, sessions and the authenticated caller.

Roles are checked here and only here: routes declare the caller type they need
(``OperatorCaller``, ``PrivacyOfficerCaller``...) and never look at roles themselves.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Annotated

from fastapi import Depends, Header, Path, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlmodel import Session

from gateway.context import AppContext
from gateway.errors import AuthenticationError, PermissionDeniedError
from gateway.identity.oidc_flow import authenticate_person, looks_like_jwt
from gateway.identity.service import Caller, authenticate
from gateway.schemas.base import MAX_LOG_INDEX, MAX_ROW_ID
from gateway.vocabulary import Role

_bearer = HTTPBearer(
    auto_error=False,
    description="Bearer token issued by the gateway, or (people) a JWT access token of "
    "their partner's identity provider",
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


def get_caller(
    request: Request,
    ctx: Ctx,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    gateway_principal: Annotated[
        str | None,
        Header(
            max_length=64,
            description="with a provider's token: which of the person's principals acts",
        ),
    ] = None,
) -> Caller:
    """Return the authenticated caller, or raise AuthenticationError (401).

    A gateway token (``gw_...``) is checked against the registry; a JWT against the
    identity provider of the partner whose issuer it names (``identity.oidc_flow``).
    """
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise AuthenticationError("a bearer token is required", reason="missing")
    presented = credentials.credentials
    if looks_like_jwt(presented):
        with ctx.db.read() as session:
            caller = authenticate_person(
                session, ctx.oidc, presented, ctx.clock, ctx.keys.person_key, gateway_principal
            )
    else:
        # One statement finds the token with its principal and partner: a look-up, not
        # a session (every request pays for this).
        with ctx.db.lookup() as conn:
            caller = authenticate(conn, presented, ctx.clock)
    request.state.principal_id = caller.principal_id
    return caller


CurrentCaller = Annotated[Caller, Depends(get_caller)]


def require(*roles: Role) -> Callable[[Caller], Caller]:
    """Return a dependency that admits only callers with one of ``roles`` (else 403)."""
    allowed = frozenset(roles)

    def check(caller: CurrentCaller) -> Caller:
        if caller.role not in allowed:
            raise PermissionDeniedError(
                f"this operation needs the role {' or '.join(sorted(r.value for r in allowed))}",
                required_roles=sorted(r.value for r in allowed),
            )
        return caller

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
