"""OAuth 2.0 client credentials with ``private_key_jwt`` at the gateway's own token endpoint.

A partner system may, instead of holding a long-lived gateway token, hold a key pair:
its partner's operator registers the public JWK for the system's principal, and the
system trades a signed client assertion (RFC 7523: ``iss`` = ``sub`` = principal id,
``aud`` = the token endpoint URL, ``exp``, a ``jti`` used once) for a short-lived
gateway token at ``POST /oauth/token`` (``grant_type=client_credentials``). The grant
and the assertion checks are Authlib's (``ClientCredentialsGrant``,
``JWTBearerClientAssertion``); this module supplies the clients, the keys, the
one-time ``jti`` store and the tokens.
"""

from __future__ import annotations

import hashlib
import json
from datetime import timedelta
from typing import Any

from authlib.oauth2.rfc6749 import AuthorizationServer, ClientMixin, OAuth2Request
from authlib.oauth2.rfc6749.grants import ClientCredentialsGrant
from authlib.oauth2.rfc6749.requests import BasicOAuth2Payload
from authlib.oauth2.rfc7523 import JWTBearerClientAssertion
from joserfc.errors import JoseError
from joserfc.jwk import JWKRegistry
from sqlalchemy import delete
from sqlalchemy.exc import IntegrityError
from sqlmodel import col

from gateway import usecase
from gateway.audit.events import AuditEventType
from gateway.clock import Clock
from gateway.db import Database
from gateway.errors import InvalidInputError
from gateway.identity import service
from gateway.identity.authority import Registrar, guarded
from gateway.identity.errors import ForeignPartnerError
from gateway.identity.service import Actor
from gateway.models.oidc import OAuthAssertionUse, OAuthClientKey
from gateway.models.partners import Partner, Principal
from gateway.vocabulary import Role

GRANT = "client_credentials"
AUTH_METHOD = "private_key_jwt"


def set_client_key(
    db: Database, clock: Clock, registrar: Registrar, principal_id: str, jwk_json: str
) -> OAuthClientKey:
    """Register (or replace) the public JWK of a partner system of the operator's own partner.

    Raises ForeignPartnerError (audited), InvalidInputError (not a partner system, not a
    public RSA/EC/OKP key), NotFoundError.
    """
    with guarded(db, clock, registrar.caller, "client-key:set", principal=principal_id) as session:
        principal = service.get_principal(session, principal_id)
        if principal.partner_id != registrar.caller.partner_id:
            raise ForeignPartnerError("operators register keys of their own partner's systems")
        if Role(principal.role) is not Role.PARTNER_SYSTEM:
            raise InvalidInputError(
                "only a partner system authenticates with a key pair", field="principal_id"
            )
        try:
            key = JWKRegistry.import_key(json.loads(jwk_json))
        except (JoseError, ValueError, TypeError, KeyError) as exc:
            raise InvalidInputError("give the system's public key as a JWK", field="jwk") from exc
        if key.is_private or key.key_type == "oct":
            raise InvalidInputError(
                "give only the public part of an RSA, EC or OKP key", field="jwk"
            )
        public = json.dumps(key.as_dict(private=False), sort_keys=True)
        now = clock.now()
        row = session.get(OAuthClientKey, principal_id)
        if row is None:
            row = OAuthClientKey(principal_id=principal_id, jwk=public, created_at=now)
        else:
            row.jwk, row.created_at = public, now
        session.add(row)
        usecase.record_event(
            session,
            clock,
            registrar.caller,
            AuditEventType.CLIENT_KEY_SET,
            refs={"principal": principal_id, "partner": principal.partner_id},
        )
        return row


class _Client(ClientMixin):  # type: ignore[misc]
    """A partner system with a registered key, as Authlib sees a client."""

    def __init__(self, principal_id: str, jwk: dict[str, Any]) -> None:
        self.principal_id = principal_id
        self.jwk = jwk

    def get_client_id(self) -> str:
        return self.principal_id

    def check_endpoint_auth_method(self, method: str, endpoint: str) -> bool:
        return method == AUTH_METHOD and endpoint == "token"

    def check_grant_type(self, grant_type: str) -> bool:
        return grant_type == GRANT

    def get_allowed_scope(self, scope: str) -> str:
        return ""


class _Grant(ClientCredentialsGrant):  # type: ignore[misc]
    TOKEN_ENDPOINT_AUTH_METHODS = [AUTH_METHOD]  # noqa: RUF012  (Authlib's class attribute)


class _Request(OAuth2Request):  # type: ignore[misc]
    def __init__(self, uri: str, form: dict[str, str], headers: dict[str, str]) -> None:
        super().__init__("POST", uri, headers=headers)
        self._form = form
        self.payload = BasicOAuth2Payload(form)

    @property
    def args(self) -> dict[str, str]:
        return {}

    @property
    def form(self) -> dict[str, str]:
        return self._form


class TokenServer(AuthorizationServer):  # type: ignore[misc]
    """The gateway's token endpoint: client credentials, private_key_jwt only."""

    def __init__(self, db: Database, clock: Clock, token_url: str, ttl: timedelta) -> None:
        super().__init__()
        self.db, self.clock, self.token_url, self.ttl = db, clock, token_url, ttl
        server = self

        class Assertion(JWTBearerClientAssertion):  # type: ignore[misc]
            CLIENT_AUTH_METHOD = AUTH_METHOD

            def get_audiences(self) -> list[str]:
                return [server.token_url]

            def resolve_client_public_key(self, client: _Client) -> dict[str, Any]:
                return client.jwk

            def validate_jti(self, claims: dict[str, Any], jti: str) -> bool:
                return server.use_jti(str(claims.get("iss")), str(jti), claims.get("exp"))

        self.register_client_auth_method(AUTH_METHOD, Assertion())
        self.register_grant(_Grant)
        self.register_token_generator(GRANT, self._mint)

    def query_client(self, client_id: str) -> _Client | None:
        """Return the active partner system with a registered key, or None."""
        with self.db.read() as session:
            row = session.get(OAuthClientKey, client_id)
            principal = session.get(Principal, client_id)
            partner = session.get(Partner, principal.partner_id) if principal else None
            if row is None or principal is None or partner is None:
                return None
            if not principal.active or not partner.active:
                return None
            return _Client(principal.id, json.loads(row.jwk))

    def use_jti(self, issuer: str, jti: str, exp: object) -> bool:
        """Record a client assertion's jti; False if it was used before (a replay)."""
        digest = hashlib.sha256(f"{issuer}\0{jti}".encode()).hexdigest()
        now = self.clock.now()
        expires = now + timedelta(hours=1)
        try:
            with self.db.write() as session:
                session.execute(
                    delete(OAuthAssertionUse).where(col(OAuthAssertionUse.expires_at) <= now)
                )
                session.add(OAuthAssertionUse(jti_sha256=digest, expires_at=expires))
        except IntegrityError:
            return False
        return True

    def _mint(self, grant_type: str, client: _Client, **_kwargs: Any) -> dict[str, Any]:
        with self.db.write() as session:
            principal = service.get_principal(session, client.principal_id)
            actor = Actor(principal_id=principal.id, partner_id=principal.partner_id)
            new, _row = service.issue_token(session, self.clock, actor, principal.id, self.ttl)
        return {
            "access_token": new.plaintext,
            "token_type": "Bearer",
            "expires_in": int(self.ttl.total_seconds()),
        }

    def send_signal(self, name: str, *args: Any, **kwargs: Any) -> None:
        """Authlib's hooks for framework signals: none here (every change is audited)."""

    def save_token(self, token: dict[str, Any], request: Any) -> None:
        """Nothing to do: ``_mint`` stored the token with its audit entry."""

    def create_oauth2_request(self, request: Any) -> Any:
        """Return ``request`` (already an Authlib request, built by ``respond``)."""
        return request

    def handle_response(
        self, status: int, body: Any, headers: Any
    ) -> tuple[int, Any, dict[str, str]]:
        """Return the response as (status, JSON body, headers) for the route to send."""
        return status, body, dict(headers)

    def respond(
        self, uri: str, form: dict[str, str], headers: dict[str, str]
    ) -> tuple[int, Any, dict[str, str]]:
        """Answer one token request: (status, body, headers); errors carry RFC 6749's ``error``."""
        try:
            request = _Request(uri, form, headers)
        except Exception:  # Authlib's InsecureTransportError: the endpoint needs https
            return 400, {"error": "invalid_request", "error_description": "use https"}, {}
        result: tuple[int, Any, dict[str, str]] = self.create_token_response(request)
        return result
