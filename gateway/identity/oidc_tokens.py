"""Partners' identity providers as seen from here: discovery, JWKS, and checked JWTs.

A provider's metadata (``/.well-known/openid-configuration``) and its JWKS are fetched
once and cached; a token signed with a key id the cache does not hold makes one refetch
(at most every ``REFETCH_SECONDS`` per provider), so the provider can rotate keys
without the gateway answering 401 for long, and a stream of made-up key ids cannot make
it hammer the provider. Signatures and claims are checked with joserfc (Authlib's own
JOSE library); only asymmetric algorithms are accepted.

Every refusal is an ``OidcTokenError`` (401) whose ``reason`` says which check failed:
the caller already holds the token, so naming the check tells nothing new, and it tells
the person's script what to fix. The token itself is never logged or echoed.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from typing import Any

import httpx
from joserfc import jwt
from joserfc.errors import (
    BadSignatureError,
    ExpiredTokenError,
    InvalidClaimError,
    JoseError,
    MissingClaimError,
)
from joserfc.jwk import KeySet
from joserfc.jws import extract_compact

from gateway.identity.errors import OidcTokenError, ProviderUnavailableError

ALGORITHMS = ("RS256", "PS256", "ES256", "EdDSA")
"""Signature algorithms accepted from providers: asymmetric only (never ``none`` or HS*)."""
METADATA_SECONDS = 3600.0
REFETCH_SECONDS = 30.0
LEEWAY_SECONDS = 30
FETCH_TIMEOUT = 5.0


@dataclass
class _Cached:
    metadata: dict[str, Any]
    fetched_at: float
    keys: KeySet | None = None
    keys_at: float = float("-inf")


@dataclass
class ProviderCache:
    """Metadata and JWKS of identity providers by issuer, shared by one gateway process."""

    http: Callable[[str], Any] | None = None
    """Fetches a URL and returns its JSON (tests pass none: httpx is used)."""
    monotonic: Callable[[], float] = time.monotonic
    _entries: dict[str, _Cached] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    fetches: int = 0

    def _get(self, url: str) -> Any:
        self.fetches += 1
        if self.http is not None:
            return self.http(url)
        try:
            response = httpx.get(url, timeout=FETCH_TIMEOUT, follow_redirects=False)
            response.raise_for_status()
            return response.json()
        except (httpx.HTTPError, ValueError) as exc:
            raise ProviderUnavailableError(
                "the identity provider could not be reached; try again later"
            ) from exc

    def metadata(self, issuer: str) -> dict[str, Any]:
        """Return the provider's discovery document; its ``issuer`` must equal ``issuer``.

        Raises ProviderUnavailableError when it cannot be fetched or does not match.
        """
        now = self.monotonic()
        with self._lock:
            entry = self._entries.get(issuer)
            if entry is not None and now - entry.fetched_at < METADATA_SECONDS:
                return entry.metadata
        doc = self._get(f"{issuer}/.well-known/openid-configuration")
        if not isinstance(doc, dict) or doc.get("issuer") != issuer or "jwks_uri" not in doc:
            raise ProviderUnavailableError(
                "the identity provider's discovery document does not describe its issuer"
            )
        with self._lock:
            self._entries[issuer] = _Cached(doc, now)
        return doc

    def keys_for(self, issuer: str, kid: str | None) -> KeySet:
        """Return the provider's JWKS, refetched once when it does not hold ``kid``."""
        meta = self.metadata(issuer)
        now = self.monotonic()
        with self._lock:
            entry = self._entries[issuer]
            held = entry.keys
            fresh_enough = now - entry.keys_at < REFETCH_SECONDS
        if held is not None and (_holds(held, kid) or fresh_enough):
            return held
        doc = self._get(str(meta["jwks_uri"]))
        try:
            keys = KeySet.import_key_set(doc)
        except (JoseError, ValueError, TypeError, KeyError) as exc:
            raise ProviderUnavailableError("the identity provider's JWKS is not valid") from exc
        with self._lock:
            entry.keys, entry.keys_at = keys, now
        return keys


def _holds(keys: KeySet, kid: str | None) -> bool:
    return kid is None or any(key.kid == kid for key in keys.keys)


def unverified_claims(token: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """Return the header and claims of a compact JWS without checking it (to find its issuer).

    Raises OidcTokenError (``malformed``) when it is not a JWT.
    """
    try:
        compact = extract_compact(token.encode("ascii"))
        claims = json.loads(compact.payload)
        header = dict(compact.headers())
    except (JoseError, ValueError, UnicodeError, TypeError) as exc:
        raise OidcTokenError("the token is not a JWT", "malformed") from exc
    if not isinstance(claims, dict):
        raise OidcTokenError("the token is not a JWT", "malformed")
    return header, claims


@dataclass(frozen=True, slots=True)
class Expected:
    """What a provider's JWT must say: its issuer, audience, and (ID tokens) nonce and acr."""

    issuer: str
    audience: str
    nonce: str | None = None
    acr_values: Collection[str] = ()
    token_type: str | None = None
    """The JOSE ``typ`` the token must have (``at+jwt`` for access tokens, RFC 9068)."""


def verify(
    cache: ProviderCache, token: str, expected: Expected, now: Callable[[], int]
) -> dict[str, Any]:
    """Return the claims of a provider's JWT after checking signature, iss, aud, exp, nonce, acr.

    ``now`` gives the current Unix time (the gateway's clock). Raises OidcTokenError
    naming the failed check, or ProviderUnavailableError.
    """
    header, _claims = unverified_claims(token)
    kid = header.get("kid")
    keys = cache.keys_for(expected.issuer, kid if isinstance(kid, str) else None)
    try:
        decoded = jwt.decode(token, keys, algorithms=list(ALGORITHMS))
    except BadSignatureError as exc:
        raise OidcTokenError("the token's signature is not valid", "bad-signature") from exc
    except JoseError as exc:  # no key with this kid, unsupported algorithm, bad encoding
        raise OidcTokenError(
            "the token is not signed by its issuer's keys", "bad-signature"
        ) from exc
    claims = decoded.claims
    if expected.token_type is not None and str(header.get("typ", "")).lower() != (
        expected.token_type
    ):
        raise OidcTokenError("the token is not an access token", "wrong-token-type")
    options: dict[str, Any] = {
        "iss": {"essential": True, "value": expected.issuer},
        "aud": {"essential": True, "value": expected.audience},
        "exp": {"essential": True},
        "sub": {"essential": True},
    }
    if expected.nonce is not None:
        options["nonce"] = {"essential": True, "value": expected.nonce}
    registry = jwt.JWTClaimsRegistry(now=now, leeway=LEEWAY_SECONDS, **options)
    try:
        registry.validate(claims)
    except ExpiredTokenError as exc:
        raise OidcTokenError("the token has expired", "expired") from exc
    except (InvalidClaimError, MissingClaimError) as exc:
        claim = getattr(exc, "claim", "") or str(exc)
        reason = {"iss": "wrong-issuer", "aud": "wrong-audience", "nonce": "wrong-nonce"}.get(
            claim, "invalid-claims"
        )
        raise OidcTokenError(f"the token's {claim} claim is not acceptable", reason) from exc
    except JoseError as exc:
        raise OidcTokenError("the token's claims are not acceptable", "invalid-claims") from exc
    aud = claims.get("aud")
    if isinstance(aud, list) and len(aud) > 1 and claims.get("azp") != expected.audience:
        raise OidcTokenError("the token was issued to another client", "wrong-audience")
    if expected.acr_values and claims.get("acr") not in set(expected.acr_values):
        raise OidcTokenError(
            "the sign-in's assurance level (acr) is not one this partner allows", "acr-not-allowed"
        )
    if not isinstance(claims.get("sub"), str) or not 1 <= len(claims["sub"]) <= 255:
        raise OidcTokenError("the token names no subject", "invalid-claims")
    return dict(claims)
