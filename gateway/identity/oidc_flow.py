"""The authorization code flow with PKCE through a partner's provider, and people's API tokens.

The OAuth 2.0 client is Authlib's (``OAuth2Client``: PKCE S256, client_secret_basic or
private_key_jwt at the token endpoint); the ID token and access tokens are checked by
``oidc_tokens.verify``. What the browser must carry between the redirect and the
callback (state, nonce, PKCE verifier) is a ``PendingSignIn``; the web layer keeps it
in a MAC'd cookie.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from authlib.integrations.httpx_client import OAuth2Client
from authlib.oauth2.rfc7523 import PrivateKeyJWT
from joserfc.jwk import JWKRegistry
from sqlmodel import Session

from gateway.clock import Clock
from gateway.errors import AuthenticationError
from gateway.identity import oidc
from gateway.identity.errors import NotEnrolledError, OidcTokenError, ProviderUnavailableError
from gateway.identity.oidc_tokens import (
    FETCH_TIMEOUT,
    Expected,
    ProviderCache,
    unverified_claims,
    verify,
)
from gateway.identity.people import PersonKeyer
from gateway.identity.service import Caller, get_partner
from gateway.keys import KeyRing
from gateway.models.oidc import OidcProvider
from gateway.models.partners import Principal
from gateway.vocabulary import Role

ACCESS_TOKEN_TYPE = "at+jwt"  # noqa: S105  (RFC 9068's JOSE type, not a secret)


@dataclass(frozen=True, slots=True)
class PendingSignIn:
    """What the callback needs from the redirect: partner, state, nonce, PKCE verifier."""

    partner_id: str
    state: str
    nonce: str
    verifier: str
    redirect_uri: str
    expires: int

    def to_json(self) -> str:
        """Return the compact JSON form (the web layer MACs it)."""
        return json.dumps(
            [
                self.partner_id,
                self.state,
                self.nonce,
                self.verifier,
                self.redirect_uri,
                self.expires,
            ]
        )

    @classmethod
    def from_json(cls, text: str) -> PendingSignIn:
        """Parse ``to_json``'s output; raise OidcTokenError (``bad-state``) if it is not that."""
        try:
            p, s, n, v, r, e = json.loads(text)
            return cls(str(p), str(s), str(n), str(v), str(r), int(e))
        except (ValueError, TypeError) as exc:
            raise OidcTokenError("the sign-in expired; start again", "bad-state") from exc


def _client(keys: KeyRing, provider: OidcProvider, redirect_uri: str) -> OAuth2Client:
    credential = oidc.client_credential(keys, provider)
    if provider.client_auth == oidc.OidcClientAuth.PRIVATE_KEY_JWT.value:
        client = OAuth2Client(
            client_id=provider.client_id,
            client_secret=JWKRegistry.import_key(json.loads(credential)),
            token_endpoint_auth_method=PrivateKeyJWT.name,
            scope="openid",
            redirect_uri=redirect_uri,
            code_challenge_method="S256",
            timeout=FETCH_TIMEOUT,
        )
        client.register_client_auth_method(PrivateKeyJWT())  # aud: the token endpoint called
        return client
    return OAuth2Client(
        client_id=provider.client_id,
        client_secret=credential,
        token_endpoint_auth_method=oidc.OidcClientAuth.CLIENT_SECRET_BASIC.value,
        scope="openid",
        redirect_uri=redirect_uri,
        code_challenge_method="S256",
        timeout=FETCH_TIMEOUT,
    )


def start(
    cache: ProviderCache,
    keys: KeyRing,
    provider: OidcProvider,
    redirect_uri: str,
    clock: Clock,
    lifetime_seconds: int = 600,
) -> tuple[str, PendingSignIn]:
    """Return the provider's authorization URL (code flow, PKCE S256, nonce) and what to keep."""
    meta = cache.metadata(provider.issuer)
    pending = PendingSignIn(
        partner_id=provider.partner_id,
        state=secrets.token_urlsafe(32),
        nonce=secrets.token_urlsafe(32),
        verifier=secrets.token_urlsafe(48),
        redirect_uri=redirect_uri,
        expires=int(clock.now().timestamp()) + lifetime_seconds,
    )
    extra = {"acr_values": provider.acr_values} if provider.acr_values else {}
    with _client(keys, provider, redirect_uri) as client:
        url, _state = client.create_authorization_url(
            str(meta["authorization_endpoint"]),
            state=pending.state,
            nonce=pending.nonce,
            code_verifier=pending.verifier,
            **extra,
        )
    return str(url), pending


def finish(
    cache: ProviderCache,
    keys: KeyRing,
    provider: OidcProvider,
    pending: PendingSignIn,
    code: str,
    clock: Clock,
) -> dict[str, Any]:
    """Redeem the code (with the PKCE verifier) and return the checked ID token's claims.

    Raises OidcTokenError (the ID token fails a check: iss, aud, nonce, exp, acr,
    signature) or ProviderUnavailableError (the token endpoint refused or failed).
    """
    meta = cache.metadata(provider.issuer)
    try:
        with _client(keys, provider, pending.redirect_uri) as client:
            token = client.fetch_token(
                str(meta["token_endpoint"]), code=code, code_verifier=pending.verifier
            )
    except Exception as exc:  # Authlib raises OAuthError, httpx errors, ValueError
        raise ProviderUnavailableError(
            "the identity provider did not accept the sign-in; start again"
        ) from exc
    id_token = token.get("id_token") if isinstance(token, dict) else None
    if not isinstance(id_token, str):
        raise OidcTokenError("the identity provider sent no ID token", "no-id-token")
    return verify(
        cache,
        id_token,
        Expected(
            issuer=provider.issuer,
            audience=provider.client_id,
            nonce=pending.nonce,
            acr_values=provider.acr_values.split(),
        ),
        _unix(clock),
    )


def _unix(clock: Clock) -> Callable[[], int]:
    return lambda: int(clock.now().timestamp())


def looks_like_jwt(presented: str) -> bool:
    """Return whether a bearer credential is shaped like a JWT rather than a gateway token."""
    return presented.count(".") == 2 and not presented.startswith("gw")


def authenticate_person(
    session: Session,
    cache: ProviderCache,
    presented: str,
    clock: Clock,
    keyer: PersonKeyer,
    principal_hint: str | None = None,
) -> Caller:
    """Return the caller a provider's JWT access token stands for.

    Checks issuer (a registered provider), signature (its JWKS), ``typ`` ``at+jwt``,
    audience (the provider's ``api_audience``), expiry; then maps (iss, sub) to a
    linked principal (``principal_hint`` picks one when the person has several).
    Raises OidcTokenError, NotEnrolledError or ProviderUnavailableError.
    """
    _header, claims = unverified_claims(presented)
    issuer = claims.get("iss")
    provider = oidc.provider_by_issuer(session, issuer) if isinstance(issuer, str) else None
    if provider is None:
        raise OidcTokenError("the token's issuer is not a registered provider", "unknown-issuer")
    if provider.api_audience is None:
        raise OidcTokenError(
            "people of this partner have no API access with their provider's tokens",
            "no-api-access",
        )
    checked = verify(
        cache,
        presented,
        Expected(
            issuer=provider.issuer,
            audience=provider.api_audience,
            token_type=ACCESS_TOKEN_TYPE,
        ),
        _unix(clock),
    )
    found = oidc.principals_of(session, provider, str(checked["sub"]), keyer)
    principal = _choose(found, principal_hint)
    partner = get_partner(session, principal.partner_id)
    jti = str(checked.get("jti", ""))[:24]
    return Caller(
        principal_id=principal.id,
        partner_id=partner.id,
        partner_kind=partner.kind,
        role=Role(principal.role),
        token_id=f"jwt:{jti}",
    )


def _choose(found: Sequence[Principal], hint: str | None) -> Principal:
    if not found:
        raise NotEnrolledError(
            "you are not enrolled at this gateway; ask your organisation's operator to link "
            "your account to a principal"
        )
    if hint is not None:
        for principal in found:
            if principal.id == hint:
                return principal
        raise AuthenticationError(
            "the principal named in Gateway-Principal is not linked to you", reason="principal"
        )
    if len(found) > 1:
        raise AuthenticationError(
            "you act as several principals here: name one in the Gateway-Principal header",
            reason="ambiguous",
        )
    return found[0]


def privacy_officer_of(principals: Sequence[Principal]) -> Principal | None:
    """Return the (first) privacy officer principal among a person's, or None."""
    return next((p for p in principals if p.role == Role.PRIVACY_OFFICER.value), None)
