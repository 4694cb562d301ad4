"""Signing in to the workbench through one's organisation's identity provider (OpenID Connect).

``GET /workbench/sign-in/oidc/{partner}`` sends the browser to the partner's provider
(authorization code flow, PKCE S256, nonce; ``identity.oidc_flow``) and keeps state,
nonce and verifier in a MAC'd ``__Host-`` cookie (``SameSite=Lax``: the provider's
redirect back is a cross-site navigation). ``GET /workbench/oidc/callback`` checks the
state, redeems the code, checks the ID token, maps (iss, sub) to a privacy officer of
that partner, and opens a short session (``GATEWAY_OIDC_SESSION_MINUTES``). Any failure
is a page that says what to do; a person the gateway does not know is told to ask
their operator, and the refusal is audited.
"""

from __future__ import annotations

import base64
from datetime import timedelta
from urllib.parse import urlencode

from fastapi import APIRouter, Request, Response

from gateway.api.deps import Ctx
from gateway.context import AppContext
from gateway.errors import AuthenticationError, GatewayError
from gateway.identity import oidc, oidc_flow
from gateway.identity.errors import NotEnrolledError, OidcTokenError, ProviderUnavailableError
from gateway.identity.oidc_flow import PendingSignIn
from gateway.keys.hmacs import same
from gateway.models.oidc import OidcProvider
from gateway.web import sessions
from gateway.web.framework import PREFIX, WebRoute, redirect, render

router = APIRouter(prefix=PREFIX, route_class=WebRoute, include_in_schema=False)

PENDING_COOKIE = "__Host-gw_oidc"
CALLBACK_PATH = f"{PREFIX}/oidc/callback"
_PURPOSE = "oidc-pending\0"


def _set_cookie(response: Response, name: str, value: str, *, lax: bool = False) -> None:
    response.set_cookie(
        name,
        value,
        max_age=600 if lax else None,
        httponly=True,
        secure=True,
        samesite="lax" if lax else "strict",
        path="/",
    )


def _delete_cookie(response: Response, name: str) -> None:
    response.delete_cookie(name, httponly=True, secure=True, samesite="lax", path="/")


def _seal(ctx: AppContext, pending: PendingSignIn) -> str:
    body = base64.urlsafe_b64encode(pending.to_json().encode()).decode().rstrip("=")
    return f"{body}.{sessions.sign_in_csrf(ctx.settings, _PURPOSE + body)}"


def _unseal(ctx: AppContext, value: str) -> PendingSignIn:
    body, _, mac = value.partition(".")
    expected = sessions.sign_in_csrf(ctx.settings, _PURPOSE + body)
    if not body or not same(mac, expected):
        raise OidcTokenError("the sign-in expired or came from elsewhere; start again", "bad-state")
    text = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)).decode()
    pending = PendingSignIn.from_json(text)
    if pending.expires <= int(ctx.clock.now().timestamp()):
        raise OidcTokenError("the sign-in took too long; start again", "bad-state")
    return pending


def redirect_uri(request: Request, ctx: AppContext) -> str:
    """Return the callback URL the provider sends the browser back to."""
    base = ctx.settings.public_url or str(request.base_url).rstrip("/")
    return f"{base}{CALLBACK_PATH}"


def _refused(request: Request, exc: GatewayError, status: int) -> Response:
    response = render(
        request,
        "sign_in_refused.html",
        None,
        status_code=status,
        detail=exc.detail,
        reason=getattr(exc, "reason", exc.code),
        not_enrolled=isinstance(exc, NotEnrolledError),
    )
    _delete_cookie(response, PENDING_COOKIE)
    return response


@router.get("/sign-in/oidc/{partner_id}")
def start(partner_id: str, request: Request, ctx: Ctx) -> Response:
    """Send the browser to the partner's identity provider."""
    with ctx.db.read() as session:
        provider = oidc.get_provider(session, partner_id)
    url, pending = oidc_flow.start(
        ctx.oidc, ctx.keys, provider, redirect_uri(request, ctx), ctx.clock
    )
    response = redirect(url)
    _set_cookie(response, PENDING_COOKIE, _seal(ctx, pending), lax=True)
    return response


@router.get("/oidc/callback")
def callback(request: Request, ctx: Ctx) -> Response:
    """Finish the sign-in: state, code, ID token (iss, aud, nonce, exp, acr), then the person."""
    params = request.query_params
    try:
        pending = _unseal(ctx, request.cookies.get(PENDING_COOKIE, ""))
        state = params.get("state", "")
        if not same(state, pending.state):
            raise OidcTokenError(
                "the sign-in expired or came from elsewhere; start again", "bad-state"
            )
        with ctx.db.read() as session:
            provider = oidc.get_provider(session, pending.partner_id)
    except (GatewayError, UnicodeError, ValueError) as exc:
        error = exc if isinstance(exc, GatewayError) else OidcTokenError("bad state", "bad-state")
        return _refused(request, error, 400)
    try:
        if "error" in params or "code" not in params:
            raise AuthenticationError(
                "your organisation's sign-in was cancelled or refused; try again",
                reason="provider-error",
            )
        claims = oidc_flow.finish(ctx.oidc, ctx.keys, provider, pending, params["code"], ctx.clock)
        with ctx.db.read() as session:
            found = oidc.principals_of(session, provider, str(claims["sub"]), ctx.keys.person_key)
        principal = oidc_flow.privacy_officer_of(found)
        if principal is None:
            raise NotEnrolledError(
                "your organisation knows you, but this gateway does not (yet) as a privacy "
                "officer: ask your organisation's operator to enrol you"
            )
    except ProviderUnavailableError as exc:
        oidc.refuse_sign_in(ctx.db, ctx.clock, provider, exc.code)
        return _refused(request, exc, 503)
    except AuthenticationError as exc:
        oidc.refuse_sign_in(ctx.db, ctx.clock, provider, getattr(exc, "reason", exc.code))
        return _refused(request, exc, 403 if isinstance(exc, NotEnrolledError) else 401)
    ttl = timedelta(minutes=ctx.settings.oidc_session_minutes)
    caller = oidc.open_person_session_token(ctx.db, ctx.clock, principal, ttl)
    raw = sessions.open_session(ctx.db, ctx.clock, ctx.settings, caller)
    # A page, not a redirect: the browser arrived from the provider's site, and a
    # SameSite=Strict cookie is sent only on a navigation this site starts itself.
    response = render(request, "signed_in.html", None, target=f"{PREFIX}/")
    _set_cookie(response, sessions.COOKIE, raw)
    _delete_cookie(response, PENDING_COOKIE)
    return response


def logout_url(request: Request, ctx: AppContext, partner_id: str) -> str | None:
    """Return the partner's provider's RP-initiated logout URL, or None if it has none."""
    with ctx.db.read() as session:
        provider = session.get(OidcProvider, partner_id)
    if provider is None:
        return None
    try:
        endpoint = ctx.oidc.metadata(provider.issuer).get("end_session_endpoint")
    except GatewayError:
        return None
    if not isinstance(endpoint, str):
        return None
    base = ctx.settings.public_url or str(request.base_url).rstrip("/")
    query = urlencode(
        {"client_id": provider.client_id, "post_logout_redirect_uri": f"{base}{PREFIX}/sign-in"}
    )
    return f"{endpoint}?{query}"
