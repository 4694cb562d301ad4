"""People of a partner sign in through the partner's own OpenID Connect provider.

- The operating RIEC's operators register (or replace) a partner's provider: issuer,
  client id, client secret or private JWK (``private_key_jwt``), the ``acr`` values a
  sign-in must carry, and the audience of the provider's access tokens for this
  gateway's API (none: people of that partner use the workbench only).
- That partner's own operators link a person (the provider's ``sub``) to a principal.
  Roles stay the gateway's: the provider only says who someone is.
- A person is stored only as ``person_key_of(iss, sub)``, the key ring's keyed HMAC, and
  that becomes the principal's person key: four-eyes sees one person behind every
  principal linked to the same ``sub``.

Refusals are audited like the rest of the registry's (``authority.guarded``).
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from enum import StrEnum
from urllib.parse import urlsplit

from joserfc.errors import JoseError
from joserfc.jwk import JWKRegistry
from sqlmodel import Session, col, select

from gateway import usecase
from gateway.audit.events import AuditEventType
from gateway.clock import Clock
from gateway.db import Database
from gateway.errors import ConflictError, InvalidInputError, NotFoundError
from gateway.identity import service
from gateway.identity.authority import Registrar, guarded
from gateway.identity.errors import ForeignPartnerError, OperatingRiecOnlyError
from gateway.identity.people import PersonKeyer
from gateway.identity.service import Actor, Caller
from gateway.keys import KeyRing
from gateway.models.oidc import OidcPerson, OidcProvider
from gateway.models.partners import Partner, Principal
from gateway.vocabulary import Role

CREDENTIALS_KEY_ID = "oidc-client-credentials"
"""The key ring key that seals providers' client secrets and private JWKs."""
_CREDENTIAL_FIELD = "client-credential"
_ACR_RE = re.compile(r"^[\x21-\x7e]{1,200}$")
MAX_ACR_VALUES = 10


class OidcClientAuth(StrEnum):
    """How the gateway authenticates to a partner's provider at its token endpoint."""

    CLIENT_SECRET_BASIC = "client_secret_basic"  # noqa: S105  (a method name, not a secret)
    PRIVATE_KEY_JWT = "private_key_jwt"


@dataclass(frozen=True, slots=True)
class ProviderSpec:
    """A provider registration as an operator gives it; ``credential`` is never shown again."""

    issuer: str
    client_id: str
    client_auth: OidcClientAuth
    credential: str
    acr_values: tuple[str, ...] = ()
    api_audience: str | None = None

    def __repr__(self) -> str:
        return f"ProviderSpec(issuer={self.issuer!r}, client_id={self.client_id!r}, <hidden>)"


def person_key_of(issuer: str, subject: str, keyer: PersonKeyer) -> str:
    """Return the person key of the provider's (``iss``, ``sub``).

    The keyed value holds spaces, which no normalised e-mail or employee number does,
    so it never equals the key of a person identified another way.
    """
    return keyer(json.dumps(["oidc", issuer, subject]))


def check_issuer(issuer: str, *, allow_http: bool) -> str:
    """Return ``issuer`` if it is an https URL without query or fragment (http: development)."""
    parts = urlsplit(issuer)
    schemes = {"https", "http"} if allow_http else {"https"}
    if (
        parts.scheme not in schemes
        or not parts.netloc
        or parts.query
        or parts.fragment
        or issuer.endswith("/")
        or len(issuer) > 255
        or any(c.isspace() for c in issuer)
    ):
        raise InvalidInputError(
            "an issuer is an https URL without query, fragment or trailing slash, exactly as "
            "the provider names itself",
            field="issuer",
        )
    return issuer


def _check_spec(spec: ProviderSpec, *, allow_http: bool) -> None:
    check_issuer(spec.issuer, allow_http=allow_http)
    if not 1 <= len(spec.client_id) <= 255 or any(c.isspace() for c in spec.client_id):
        raise InvalidInputError("a client id has 1-255 characters, no spaces", field="client_id")
    if not spec.credential or len(spec.credential) > 8000:
        raise InvalidInputError(
            "give the client secret (or, for private_key_jwt, the private JWK)",
            field="client_credential",
        )
    if spec.client_auth is OidcClientAuth.PRIVATE_KEY_JWT:
        try:
            key = JWKRegistry.import_key(json.loads(spec.credential))
        except (JoseError, ValueError, TypeError, KeyError) as exc:
            raise InvalidInputError(
                "for private_key_jwt, give the client's private key as a JWK (JSON)",
                field="client_credential",
            ) from exc
        if not key.is_private or key.key_type == "oct":
            raise InvalidInputError(
                "for private_key_jwt, the JWK must be an RSA, EC or OKP private key",
                field="client_credential",
            )
    if len(spec.acr_values) > MAX_ACR_VALUES or not all(
        _ACR_RE.fullmatch(v) for v in spec.acr_values
    ):
        raise InvalidInputError(
            f"at most {MAX_ACR_VALUES} acr values, each printable without spaces",
            field="acr_values",
        )
    if spec.api_audience is not None and not 1 <= len(spec.api_audience) <= 255:
        raise InvalidInputError("an API audience has 1-255 characters", field="api_audience")


def set_provider(
    db: Database,
    clock: Clock,
    registrar: Registrar,
    keys: KeyRing,
    partner_id: str,
    spec: ProviderSpec,
    *,
    allow_http: bool = False,
) -> OidcProvider:
    """Register or replace a partner's provider (operating RIEC's operators only).

    The credential is sealed by the key ring. Raises OperatingRiecOnlyError (audited),
    InvalidInputError, NotFoundError, ConflictError (issuer used by another partner).
    """
    with guarded(db, clock, registrar.caller, "oidc-provider:set", partner=partner_id) as session:
        if not registrar.is_operating:
            raise OperatingRiecOnlyError(
                "only the operators of the RIEC that runs this gateway register a partner's "
                "identity provider"
            )
        return store_provider(
            session, clock, Actor.of(registrar.caller), keys, partner_id, spec, allow_http
        )


def store_provider(
    session: Session,
    clock: Clock,
    actor: Actor,
    keys: KeyRing,
    partner_id: str,
    spec: ProviderSpec,
    allow_http: bool,
) -> OidcProvider:
    """Check and store a provider registration with its audit entry (the CLI calls this)."""
    partner = service.get_partner(session, partner_id)
    if not partner.active:
        raise ConflictError(f"partner {partner_id} is revoked", partner=partner_id)
    _check_spec(spec, allow_http=allow_http)
    taken = session.exec(select(OidcProvider).where(OidcProvider.issuer == spec.issuer)).first()
    if taken is not None and taken.partner_id != partner_id:
        raise ConflictError("another partner already signs in through this issuer")
    keys.create_case_key(CREDENTIALS_KEY_ID)
    sealed = keys.seal_field(
        CREDENTIALS_KEY_ID, partner_id, _CREDENTIAL_FIELD, spec.credential.encode("utf-8")
    )
    now = clock.now()
    row = session.get(OidcProvider, partner_id)
    if row is None:
        row = OidcProvider(
            partner_id=partner_id,
            issuer=spec.issuer,
            client_id=spec.client_id,
            client_auth=spec.client_auth.value,
            client_credential_sealed=sealed,
            acr_values=" ".join(spec.acr_values),
            api_audience=spec.api_audience,
            created_at=now,
            updated_at=now,
        )
    else:
        row.issuer, row.client_id = spec.issuer, spec.client_id
        row.client_auth, row.client_credential_sealed = spec.client_auth.value, sealed
        row.acr_values, row.api_audience = " ".join(spec.acr_values), spec.api_audience
        row.updated_at = now
    session.add(row)
    usecase.record_event(
        session,
        clock,
        actor,
        AuditEventType.OIDC_PROVIDER_SET,
        refs={
            "partner": partner_id,
            "issuer": spec.issuer,
            "client_auth": spec.client_auth.value,
            "acr_values": len(spec.acr_values),
            "api": spec.api_audience is not None,
        },
    )
    return row


def client_credential(keys: KeyRing, provider: OidcProvider) -> str:
    """Return the provider's client secret or private JWK (unsealed for one request)."""
    return keys.open_field(
        CREDENTIALS_KEY_ID,
        provider.partner_id,
        _CREDENTIAL_FIELD,
        provider.client_credential_sealed,
    ).decode("utf-8")


def get_provider(session: Session, partner_id: str) -> OidcProvider:
    """Return the partner's provider; NotFoundError when it has none."""
    row = session.get(OidcProvider, partner_id)
    if row is None:
        raise NotFoundError("this partner has no identity provider", field="partner_id")
    return row


def provider_by_issuer(session: Session, issuer: str) -> OidcProvider | None:
    """Return the provider whose issuer is ``issuer``, or None."""
    return session.exec(select(OidcProvider).where(OidcProvider.issuer == issuer)).first()


def sign_in_choices(session: Session) -> list[tuple[str, str]]:
    """Return (partner id, partner name) of every active partner with a provider."""
    rows = session.exec(
        select(Partner.id, Partner.name)
        .join(OidcProvider, col(OidcProvider.partner_id) == col(Partner.id))
        .where(col(Partner.active).is_(True))
        .order_by(col(Partner.name))
    ).all()
    return [(pid, name) for pid, name in rows]


def link_person(
    db: Database,
    clock: Clock,
    registrar: Registrar,
    keyer: PersonKeyer,
    principal_id: str,
    subject: str,
) -> OidcPerson:
    """Link the provider's person ``subject`` to a principal of the operator's own partner.

    The principal's person key becomes the person's (``person_key_of``). Raises
    ForeignPartnerError (audited), NotFoundError (no such principal, or its partner has
    no provider), ConflictError (already linked, inactive) or InvalidInputError.
    """
    with guarded(
        db, clock, registrar.caller, "oidc-person:link", principal=principal_id
    ) as session:
        principal = service.get_principal(session, principal_id)
        if principal.partner_id != registrar.caller.partner_id:
            raise ForeignPartnerError(
                "operators link people to principals of their own partner only"
            )
        return store_link(session, clock, Actor.of(registrar.caller), keyer, principal, subject)


def store_link(
    session: Session,
    clock: Clock,
    actor: Actor,
    keyer: PersonKeyer,
    principal: Principal,
    subject: str,
) -> OidcPerson:
    """Check and store a person link with its audit entry (the CLI calls this)."""
    if not 1 <= len(subject) <= 255 or not subject.isprintable():
        raise InvalidInputError("a subject (sub) has 1-255 printable characters", field="subject")
    if Role(principal.role) is Role.PARTNER_SYSTEM:
        raise InvalidInputError("a partner system is not a person", field="principal_id")
    if not principal.active:
        raise ConflictError("the principal is not active")
    provider = get_provider(session, principal.partner_id)
    if session.get(OidcPerson, principal.id) is not None:
        raise ConflictError(
            "this principal is already linked to a person; a new person needs a new principal"
        )
    key = person_key_of(provider.issuer, subject, keyer)
    replaced = principal.person_key is not None and principal.person_key != key
    principal.person_key = key
    session.add(principal)
    now = clock.now()
    link = OidcPerson(
        principal_id=principal.id, partner_id=principal.partner_id, person_key=key, created_at=now
    )
    session.add(link)
    usecase.record_event(
        session,
        clock,
        actor,
        AuditEventType.OIDC_PERSON_LINK,
        refs={"principal": principal.id, "partner": principal.partner_id, "replaced": replaced},
    )
    return link


def principals_of(
    session: Session, provider: OidcProvider, subject: str, keyer: PersonKeyer
) -> Sequence[Principal]:
    """Return the active principals of the provider's partner linked to the person ``subject``."""
    key = person_key_of(provider.issuer, subject, keyer)
    return session.exec(
        select(Principal)
        .join(OidcPerson, col(OidcPerson.principal_id) == col(Principal.id))
        .join(Partner, col(Partner.id) == col(Principal.partner_id))
        .where(
            OidcPerson.partner_id == provider.partner_id,
            OidcPerson.person_key == key,
            col(Principal.active).is_(True),
            col(Partner.active).is_(True),
        )
        .order_by(col(Principal.id))
    ).all()


def refuse_sign_in(db: Database, clock: Clock, provider: OidcProvider, reason: str) -> None:
    """Audit a refused sign-in through a provider (no person identifier is logged)."""
    with db.write() as session:
        usecase.record_event(
            session,
            clock,
            Actor(principal_id=f"oidc:{provider.partner_id}", partner_id=provider.partner_id),
            AuditEventType.WORKBENCH_SIGN_IN_REFUSE,
            refs={"partner": provider.partner_id, "reason": reason},
        )


def open_person_session_token(
    db: Database, clock: Clock, principal: Principal, ttl: timedelta
) -> Caller:
    """Issue the short-lived gateway token behind a person's workbench session; return its caller.

    The token's secret is discarded at once: the session, not the person, holds it, so
    it ends with the session or ``ttl`` (a person disabled at the provider is out then).
    """
    actor = Actor(principal_id=principal.id, partner_id=principal.partner_id)
    with db.write() as session:
        partner = service.get_partner(session, principal.partner_id)
        _new, token = service.issue_token(session, clock, actor, principal.id, ttl)
        return Caller(
            principal_id=principal.id,
            partner_id=partner.id,
            partner_kind=partner.kind,
            role=Role(principal.role),
            token_id=token.id,
        )
