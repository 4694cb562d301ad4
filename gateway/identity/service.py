"""Use cases for the partner registry: add, list, revoke partners; principals; tokens.

Every change is written with its audit entry in the caller's transaction.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Collection, Sequence
from datetime import timedelta

from sqlalchemy import bindparam
from sqlalchemy import select as columns
from sqlalchemy.engine import Connection
from sqlmodel import Session, col, select

from gateway import usecase
from gateway.audit.events import AuditEventType
from gateway.clock import Clock, as_utc
from gateway.errors import AuthenticationError, ConflictError, InvalidInputError, NotFoundError
from gateway.identity import tokens
from gateway.identity.actors import CLI_ACTOR as CLI_ACTOR
from gateway.identity.actors import SYSTEM_ACTOR as SYSTEM_ACTOR
from gateway.identity.actors import Actor as Actor
from gateway.identity.actors import Caller as Caller
from gateway.identity.errors import EnrolmentCodeInvalidError
from gateway.identity.people import check_person
from gateway.models.partners import ApiToken, EnrolmentCode, Partner, Principal
from gateway.vocabulary import IdentifierType, Role

_ID_RE = re.compile(r"^[a-z0-9][a-z0-9-]{1,62}[a-z0-9]$")
_IDENTIFIER_RE = {
    IdentifierType.OIN: re.compile(r"^\d{20}$"),
    IdentifierType.KVK: re.compile(r"^\d{8}$"),
}


# One statement built once, returning plain columns: the token lookup runs on every
# request, and building ORM objects for three rows cost more than the query itself.
_TOKEN_LOOKUP = (
    columns(
        col(ApiToken.id),
        col(ApiToken.secret_sha256),
        col(ApiToken.revoked_at),
        col(ApiToken.expires_at),
        col(Principal.id),
        col(Principal.role),
        col(Principal.active),
        col(Partner.id),
        col(Partner.kind),
        col(Partner.active),
    )
    .join(Principal, col(Principal.id) == col(ApiToken.principal_id))
    .join(Partner, col(Partner.id) == col(Principal.partner_id))
    .where(col(ApiToken.id) == bindparam("token_id"))
)


def authenticate(session: Session | Connection, presented: str, clock: Clock) -> Caller:
    """Return the caller a bearer token belongs to (one statement on ``session``).

    Raises AuthenticationError when the token is malformed, unknown, wrong, expired,
    revoked, or belongs to an inactive principal or partner. The secret is checked
    before anything about the token's state is revealed.
    """
    token_id, secret = tokens.parse(presented)
    row = session.execute(_TOKEN_LOOKUP, {"token_id": token_id}).one_or_none()
    if row is None:
        tokens.secret_matches(secret, "0" * 64)  # same work as a real comparison
        raise AuthenticationError("the bearer token is not valid", reason="unknown")
    (
        found_id,
        secret_sha256,
        revoked_at,
        expires_at,
        principal_id,
        role,
        principal_active,
        partner_id,
        partner_kind,
        partner_active,
    ) = row
    if not tokens.secret_matches(secret, secret_sha256):
        raise AuthenticationError("the bearer token is not valid", reason="unknown")
    if revoked_at is not None:
        raise AuthenticationError("the bearer token has been revoked", reason="revoked")
    if as_utc(expires_at) <= clock.now():
        raise AuthenticationError("the bearer token has expired", reason="expired")
    if not principal_active or not partner_active:
        raise AuthenticationError("the principal or its partner is not active", reason="inactive")
    return Caller(
        principal_id=principal_id,
        partner_id=partner_id,
        partner_kind=partner_kind,
        role=Role(role),
        token_id=found_id,
    )


def add_partner(
    session: Session,
    clock: Clock,
    actor: Actor,
    *,
    partner_id: str,
    kind: str,
    name: str,
    identifier_type: IdentifierType,
    identifier: str,
    known_kinds: Collection[str],
    is_demo: bool = False,
) -> Partner:
    """Register a partner organisation; raise InvalidInputError or ConflictError."""
    if not _ID_RE.fullmatch(partner_id):
        raise InvalidInputError(
            "partner id must be 3-64 lowercase letters, digits or hyphens", field="id"
        )
    if kind not in known_kinds:
        raise InvalidInputError(
            f"unknown partner kind; known kinds: {', '.join(sorted(known_kinds))}",
            field="kind",
        )
    if not _IDENTIFIER_RE[identifier_type].fullmatch(identifier):
        digits = 20 if identifier_type is IdentifierType.OIN else 8
        raise InvalidInputError(
            f"a {identifier_type.value.upper()} number has {digits} digits", field="identifier"
        )
    if not name.strip():
        raise InvalidInputError("partner name must not be empty", field="name")
    if session.get(Partner, partner_id) is not None:
        raise ConflictError(f"partner {partner_id} already exists", partner=partner_id)
    if session.exec(select(Partner).where(Partner.identifier == identifier)).first() is not None:
        raise ConflictError(
            f"another partner already has this {identifier_type.value.upper()} number"
        )
    now = clock.now()
    partner = Partner(
        id=partner_id,
        kind=kind,
        name=name.strip(),
        identifier_type=identifier_type.value,
        identifier=identifier,
        active=True,
        is_demo=is_demo,
        created_at=now,
    )
    session.add(partner)
    usecase.record(
        session,
        clock,
        actor,
        AuditEventType.PARTNER_ADD,
        refs={"partner": partner_id, "kind": kind},
        decided=False,
    )
    return partner


def list_partners(session: Session) -> Sequence[Partner]:
    """Return all partners, active or not, ordered by id."""
    return session.exec(select(Partner).order_by(col(Partner.id))).all()


def get_partner(session: Session, partner_id: str) -> Partner:
    """Return one partner or raise NotFoundError."""
    partner = session.get(Partner, partner_id)
    if partner is None:
        raise NotFoundError("no such partner", field="partner_id")
    return partner


def revoke_partner(session: Session, clock: Clock, actor: Actor, partner_id: str) -> Partner:
    """Deactivate a partner and revoke every token of its principals."""
    partner = get_partner(session, partner_id)
    now = clock.now()
    partner.active = False
    session.add(partner)
    revoked = 0
    for token in session.exec(
        select(ApiToken)
        .join(Principal, col(Principal.id) == col(ApiToken.principal_id))
        .where(Principal.partner_id == partner_id, col(ApiToken.revoked_at).is_(None))
    ).all():
        token.revoked_at = now
        session.add(token)
        revoked += 1
    usecase.record(
        session,
        clock,
        actor,
        AuditEventType.PARTNER_REVOKE,
        refs={"partner": partner_id, "tokens": revoked},
        decided=False,
    )
    return partner


def add_principal(
    session: Session,
    clock: Clock,
    actor: Actor,
    *,
    partner_id: str,
    role: Role,
    label: str,
    principal_id: str | None = None,
    person_key: str | None = None,
) -> Principal:
    """Add a principal acting for an active partner, with one role.

    ``person_key`` is the keyed HMAC of the person a people role stands for
    (``people.person_key``); a privacy officer must have one, a system must not.
    Raises InvalidInputError, NotFoundError or ConflictError.
    """
    partner = get_partner(session, partner_id)
    if not partner.active:
        raise ConflictError(f"partner {partner_id} is revoked", partner=partner_id)
    if role is Role.RESEARCHER and partner.kind != "science":
        raise InvalidInputError("only a science partner can have researchers", field="role")
    if role is Role.RIEC_ANALYST and partner.kind != "riec":
        raise InvalidInputError("only the RIEC can have riec-analysts", field="role")
    if not label.strip():
        raise InvalidInputError("principal label must not be empty", field="label")
    check_person(role, person_key)
    pid = principal_id or f"{partner_id}.{role.value}.{secrets.token_hex(3)}"
    if not _ID_RE.fullmatch(pid.replace(".", "-")):
        raise InvalidInputError("principal id must be lowercase letters, digits, '-' or '.'")
    if session.get(Principal, pid) is not None:
        raise ConflictError(f"principal {pid} already exists")
    principal = Principal(
        id=pid,
        partner_id=partner_id,
        role=role.value,
        label=label.strip(),
        active=True,
        created_at=clock.now(),
        person_key=person_key,
    )
    session.add(principal)
    usecase.record(
        session,
        clock,
        actor,
        AuditEventType.PRINCIPAL_ADD,
        refs={
            "principal": pid,
            "partner": partner_id,
            "role": role.value,
            "person": person_key is not None,
        },
        details={"label": principal.label},
        decided=False,
    )
    return principal


def name_person(
    session: Session, clock: Clock, actor: Actor, principal_id: str, person_key: str
) -> Principal:
    """Record the person of a principal that names none yet (one made before person keys).

    A person, once named, never changes: a new person means a new principal. Raises
    NotFoundError, ConflictError (already named) or InvalidInputError (a system).
    """
    principal = get_principal(session, principal_id)
    check_person(Role(principal.role), person_key)
    if principal.person_key is not None:
        raise ConflictError(
            f"principal {principal_id} already names its person; add a new principal instead"
        )
    principal.person_key = person_key
    session.add(principal)
    usecase.record(
        session,
        clock,
        actor,
        AuditEventType.PRINCIPAL_PERSON,
        refs={"principal": principal_id, "person": True},
        decided=False,
    )
    return principal


def list_principals(session: Session, partner_id: str) -> Sequence[Principal]:
    """Return the principals of one partner."""
    get_partner(session, partner_id)
    return session.exec(
        select(Principal).where(Principal.partner_id == partner_id).order_by(col(Principal.id))
    ).all()


def get_principal(session: Session, principal_id: str) -> Principal:
    """Return one principal or raise NotFoundError (naming the field, never the id sent)."""
    principal = session.get(Principal, principal_id)
    if principal is None:
        raise NotFoundError("no such principal", field="principal_id")
    return principal


def issue_token(
    session: Session, clock: Clock, actor: Actor, principal_id: str, ttl: timedelta
) -> tuple[tokens.NewToken, ApiToken]:
    """Mint a token for an active principal; return its plaintext (shown once) and its row."""
    principal = get_principal(session, principal_id)
    partner = get_partner(session, principal.partner_id)
    if not principal.active or not partner.active:
        raise ConflictError("cannot issue a token to an inactive principal or partner")
    new = tokens.mint()
    now = clock.now()
    row = ApiToken(
        id=new.token_id,
        principal_id=principal_id,
        secret_sha256=new.secret_sha256,
        created_at=now,
        expires_at=now + ttl,
    )
    session.add(row)
    usecase.record(
        session,
        clock,
        actor,
        AuditEventType.TOKEN_ISSUE,
        refs={"token": new.token_id, "principal": principal_id, "expires": (now + ttl).isoformat()},
        decided=False,
    )
    return new, row


def issue_enrolment(
    session: Session, clock: Clock, actor: Actor, principal_id: str, ttl: timedelta
) -> tuple[tokens.NewToken, EnrolmentCode]:
    """Create a one-time enrolment code for an active principal; return it (shown once).

    Earlier unused codes of the principal stop working. Raises NotFoundError or
    ConflictError (inactive principal or partner).
    """
    principal = get_principal(session, principal_id)
    partner = get_partner(session, principal.partner_id)
    if not principal.active or not partner.active:
        raise ConflictError("cannot enrol an inactive principal or partner")
    now = clock.now()
    superseded = 0
    for old in session.exec(
        select(EnrolmentCode).where(
            EnrolmentCode.principal_id == principal_id, col(EnrolmentCode.used_at).is_(None)
        )
    ).all():
        old.used_at = now
        session.add(old)
        superseded += 1
    new = tokens.mint_enrolment()
    row = EnrolmentCode(
        id=new.token_id,
        principal_id=principal_id,
        secret_sha256=new.secret_sha256,
        created_at=now,
        expires_at=now + ttl,
    )
    session.add(row)
    usecase.record(
        session,
        clock,
        actor,
        AuditEventType.ENROLMENT_ISSUE,
        refs={
            "enrolment": new.token_id,
            "principal": principal_id,
            "partner": principal.partner_id,
            "expires": (now + ttl).isoformat(),
            "superseded": superseded,
        },
        decided=False,
    )
    return new, row


def redeem_enrolment(
    session: Session, clock: Clock, presented: str, ttl: timedelta
) -> tuple[tokens.NewToken, ApiToken]:
    """Exchange a one-time enrolment code for a new bearer token of its principal.

    The code is used up in the same transaction as the token is issued and both are
    audited, with the principal itself as the actor. Raises EnrolmentCodeInvalidError for
    every kind of bad code, without saying which.
    """
    parsed = tokens.parse_enrolment(presented)
    code_id, secret = parsed if parsed is not None else ("", "")
    row = (
        session.exec(
            select(EnrolmentCode)
            .where(EnrolmentCode.id == code_id)
            .with_for_update()
            .execution_options(populate_existing=True)
        ).one_or_none()
        if parsed is not None
        else None
    )
    # Same work whether or not the code exists, so timing does not tell either.
    matches = tokens.secret_matches(secret, row.secret_sha256 if row else "0" * 64)
    now = clock.now()
    if row is None or not matches or row.used_at is not None or as_utc(row.expires_at) <= now:
        raise EnrolmentCodeInvalidError()
    principal = session.get(Principal, row.principal_id)
    partner = get_partner(session, principal.partner_id) if principal else None
    if principal is None or partner is None or not principal.active or not partner.active:
        raise EnrolmentCodeInvalidError()
    row.used_at = now
    session.add(row)
    new = tokens.mint()
    token = ApiToken(
        id=new.token_id,
        principal_id=principal.id,
        secret_sha256=new.secret_sha256,
        created_at=now,
        expires_at=now + ttl,
    )
    session.add(token)
    usecase.record(
        session,
        clock,
        Actor(principal_id=principal.id, partner_id=principal.partner_id),
        AuditEventType.ENROLMENT_REDEEM,
        refs={
            "enrolment": row.id,
            "token": new.token_id,
            "principal": principal.id,
            "expires": (now + ttl).isoformat(),
        },
        decided=False,
    )
    return new, token


def revoke_token(session: Session, clock: Clock, actor: Actor, token_id: str) -> ApiToken:
    """Revoke one token; revoking an already revoked token is a ConflictError."""
    token = session.get(ApiToken, token_id)
    if token is None:
        raise NotFoundError("no such token", field="token_id")
    if token.revoked_at is not None:
        raise ConflictError("the token is already revoked")
    token.revoked_at = clock.now()
    session.add(token)
    usecase.record(
        session, clock, actor, AuditEventType.TOKEN_REVOKE, refs={"token": token_id}, decided=False
    )
    return token
