"""Who may manage which partner's principals and credentials, over HTTP.

The partner registry's use cases for an authenticated operator. The rules, in one place:

- Operators manage principals and credentials of their **own** partner only.
- Only the **operating RIEC** (the partner that runs this gateway,
  ``GATEWAY_OPERATING_PARTNER``) registers partners, revokes another partner or itself,
  and lists every partner's principals. It may also create a partner's **first**
  principal, and re-enrol that principal while nobody has enrolled at the partner yet;
  its credential is then a one-time enrolment code, never a token in its hands.
- An operator receives a usable bearer token only for an **operator** principal.
  Every other role (whose tokens read records or decide on policy) gets an enrolment
  code that the person or system itself redeems (``POST /v1/enrolments``).

A refusal is audited (``admin:registry:refuse``) in a transaction of its own, which
commits while the request fails; an allowed change commits with its audit entries.
The local CLI is the host's installer and root of trust; it uses ``service`` directly.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from sqlmodel import Session, col, func, select

from gateway import usecase
from gateway.audit.events import AuditEventType, RefValue
from gateway.clock import Clock
from gateway.db import Database
from gateway.errors import NotFoundError
from gateway.identity import service, tokens
from gateway.identity.errors import (
    EnrolmentRequiredError,
    ForeignPartnerError,
    OperatingRiecOnlyError,
    RegistryRefusedError,
)
from gateway.identity.service import Actor, Caller
from gateway.models.partners import ApiToken, EnrolmentCode, Partner, Principal
from gateway.vocabulary import IdentifierType, Role


class CredentialKind(StrEnum):
    """What a new principal's first credential is."""

    TOKEN = "token"  # noqa: S105  (a kind of credential, not a secret)
    ENROLMENT = "enrolment"


@dataclass(frozen=True, slots=True)
class Credential:
    """A credential shown once: a bearer token or a one-time enrolment code."""

    kind: CredentialKind
    new: tokens.NewToken
    expires_at: datetime


@dataclass(frozen=True, slots=True)
class Registrar:
    """An operator acting on the registry, and which partner operates this gateway."""

    caller: Caller
    operating_partner: str

    @property
    def is_operating(self) -> bool:
        """Return whether the operator belongs to the operating RIEC."""
        return self.caller.partner_id == self.operating_partner


@contextmanager
def _guarded(
    db: Database, clock: Clock, caller: Caller, action: str, **refs: RefValue
) -> Iterator[Session]:
    """Yield a write session; a RegistryRefusedError raised in it is audited, then re-raised.

    The refused transaction rolls back; the refusal's audit entry commits on its own.
    """
    try:
        with db.write() as session:
            yield session
    except RegistryRefusedError as exc:
        with db.write() as session:
            usecase.record(
                session,
                clock,
                Actor.of(caller),
                AuditEventType.REGISTRY_REFUSE,
                refs={"action": action, "reason": exc.code, **refs},
                decided=False,
            )
        raise


guarded = _guarded
"""The same guard, for the registry's other use cases (``identity.oidc``)."""


def _principal(session: Session, principal_id: str) -> Principal:
    return service.get_principal(session, principal_id)


def _principal_count(session: Session, partner_id: str) -> int:
    return session.exec(
        select(func.count()).select_from(Principal).where(Principal.partner_id == partner_id)
    ).one()


def _anyone_enrolled(session: Session, partner_id: str) -> bool:
    """Return whether any principal of the partner ever held a bearer token."""
    found = session.exec(
        select(ApiToken.id)
        .join(Principal, col(Principal.id) == col(ApiToken.principal_id))
        .where(Principal.partner_id == partner_id)
        .limit(1)
    ).first()
    return found is not None


def add_partner(
    db: Database,
    clock: Clock,
    registrar: Registrar,
    *,
    partner_id: str,
    kind: str,
    name: str,
    identifier_type: IdentifierType,
    identifier: str,
    known_kinds: Collection[str],
) -> Partner:
    """Register a partner: the operating RIEC's operators only (else OperatingRiecOnlyError)."""
    with _guarded(db, clock, registrar.caller, "partner:add", partner=partner_id) as session:
        if not registrar.is_operating:
            raise OperatingRiecOnlyError(
                "only the operators of the RIEC that runs this gateway register partners"
            )
        return service.add_partner(
            session,
            clock,
            Actor.of(registrar.caller),
            partner_id=partner_id,
            kind=kind,
            name=name,
            identifier_type=identifier_type,
            identifier=identifier,
            known_kinds=known_kinds,
        )


def revoke_partner(db: Database, clock: Clock, registrar: Registrar, partner_id: str) -> Partner:
    """Revoke a partner: one's own, or (operating RIEC only) any other or the RIEC itself."""
    with _guarded(db, clock, registrar.caller, "partner:revoke", partner=partner_id) as session:
        service.get_partner(session, partner_id)
        own = partner_id == registrar.caller.partner_id
        if not registrar.is_operating and (not own or partner_id == registrar.operating_partner):
            raise OperatingRiecOnlyError(
                "revoking another partner, or the operating RIEC itself, needs an operator "
                "of the RIEC that runs this gateway"
            )
        return service.revoke_partner(session, clock, Actor.of(registrar.caller), partner_id)


def list_principals(
    db: Database, clock: Clock, registrar: Registrar, partner_id: str
) -> Sequence[Principal]:
    """Return a partner's principals: one's own, or any partner's for the operating RIEC."""
    with _guarded(db, clock, registrar.caller, "principal:list", partner=partner_id) as session:
        found = service.list_principals(session, partner_id)
        if partner_id != registrar.caller.partner_id and not registrar.is_operating:
            raise ForeignPartnerError("operators list the principals of their own partner only")
        return found


def add_principal(
    db: Database,
    clock: Clock,
    registrar: Registrar,
    *,
    partner_id: str,
    role: Role,
    label: str,
    person_key: str | None,
    token_ttl: timedelta,
    enrolment_ttl: timedelta,
) -> tuple[Principal, Credential]:
    """Add a principal with its first credential (shown once).

    At one's own partner: a token for an operator, an enrolment code for any other
    role. At another partner: only the operating RIEC, only the partner's first
    principal, and always an enrolment code. Raises ForeignPartnerError,
    InvalidInputError, NotFoundError or ConflictError.
    """
    with _guarded(
        db, clock, registrar.caller, "principal:add", partner=partner_id, role=role.value
    ) as session:
        service.get_partner(session, partner_id)
        own = partner_id == registrar.caller.partner_id
        if not own:
            if not registrar.is_operating:
                raise ForeignPartnerError(
                    "operators add principals to their own partner only; a new partner's "
                    "first principal is enrolled by the operating RIEC"
                )
            if _principal_count(session, partner_id) > 0:
                raise ForeignPartnerError(
                    f"partner {partner_id} already has principals: its own operators add more"
                )
        actor = Actor.of(registrar.caller)
        principal = service.add_principal(
            session,
            clock,
            actor,
            partner_id=partner_id,
            role=role,
            label=label,
            person_key=person_key,
        )
        if own and role is Role.OPERATOR:
            new, token = service.issue_token(session, clock, actor, principal.id, token_ttl)
            return principal, Credential(CredentialKind.TOKEN, new, token.expires_at)
        new, code = service.issue_enrolment(session, clock, actor, principal.id, enrolment_ttl)
        return principal, Credential(CredentialKind.ENROLMENT, new, code.expires_at)


def issue_token(
    db: Database, clock: Clock, registrar: Registrar, principal_id: str, ttl: timedelta
) -> tuple[tokens.NewToken, ApiToken]:
    """Mint a token for an operator principal of one's own partner.

    Raises ForeignPartnerError (another partner's principal) or EnrolmentRequiredError
    (not an operator: use ``issue_enrolment``), both audited; NotFoundError, ConflictError.
    """
    with _guarded(db, clock, registrar.caller, "token:issue", principal=principal_id) as session:
        principal = _principal(session, principal_id)
        if principal.partner_id != registrar.caller.partner_id:
            raise ForeignPartnerError(
                "operators issue tokens only to principals of their own partner"
            )
        if principal.role != Role.OPERATOR.value:
            raise EnrolmentRequiredError(
                f"a {principal.role} token reads records or decides on policy, so an operator "
                "never holds one: issue a one-time enrolment code "
                f"(POST /v1/principals/{principal_id}/enrolments) for the principal to redeem"
            )
        return service.issue_token(session, clock, Actor.of(registrar.caller), principal_id, ttl)


def issue_enrolment(
    db: Database, clock: Clock, registrar: Registrar, principal_id: str, ttl: timedelta
) -> tuple[tokens.NewToken, EnrolmentCode]:
    """Issue a one-time enrolment code for a principal of one's own partner.

    The operating RIEC may also re-enrol the only principal of a partner where nobody
    has enrolled yet (its first code expired unused). Raises ForeignPartnerError
    (audited), NotFoundError, ConflictError.
    """
    with _guarded(
        db, clock, registrar.caller, "enrolment:issue", principal=principal_id
    ) as session:
        principal = _principal(session, principal_id)
        partner_id = principal.partner_id
        if partner_id != registrar.caller.partner_id and not (
            registrar.is_operating
            and _principal_count(session, partner_id) == 1
            and not _anyone_enrolled(session, partner_id)
        ):
            raise ForeignPartnerError("operators enrol only principals of their own partner")
        return service.issue_enrolment(
            session, clock, Actor.of(registrar.caller), principal_id, ttl
        )


def revoke_token(db: Database, clock: Clock, registrar: Registrar, token_id: str) -> ApiToken:
    """Revoke a token of one's own partner's principal; ForeignPartnerError otherwise."""
    with _guarded(db, clock, registrar.caller, "token:revoke", token=token_id) as session:
        token = session.get(ApiToken, token_id)
        if token is None:
            raise NotFoundError("no such token", field="token_id")
        principal = _principal(session, token.principal_id)
        if principal.partner_id != registrar.caller.partner_id:
            raise ForeignPartnerError(
                "operators revoke tokens of their own partner only (the operating RIEC "
                "can revoke a whole partner)"
            )
        return service.revoke_token(session, clock, Actor.of(registrar.caller), token_id)
