"""Workbench sessions: server-side rows, random ids stored hashed, CSRF tokens bound to them.

Signing in takes a privacy officer's bearer token once; the browser then holds only a
random 256-bit session id in a ``__Host-`` cookie (``HttpOnly; Secure; SameSite=Strict;
Path=/``). The database keeps the id's SHA-256, the principal and the token it was
opened with. A session ends at sign-out, after ``workbench_idle_minutes`` without a
request, ``workbench_session_hours`` after sign-in, or as soon as its token is revoked
or expires or its principal or partner is deactivated.

The CSRF synchronizer token of a session is HMAC-SHA256(session secret, session id): it
is bound to the session, never stored, and useless without the secret.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta

from sqlalchemy import delete, update
from sqlmodel import Session, col, select

from gateway import usecase
from gateway.audit.events import AuditEventType
from gateway.clock import Clock, as_utc
from gateway.config import Settings
from gateway.db import Database
from gateway.identity.service import Caller
from gateway.keys.hmacs import hmac_sha256_hex
from gateway.models.partners import ApiToken, Partner, Principal
from gateway.models.web_sessions import WorkbenchSession
from gateway.vocabulary import Role

COOKIE = "__Host-gw_session"
SIGN_IN_COOKIE = "__Host-gw_sign_in"
TOUCH_EVERY = timedelta(seconds=60)
"""How stale ``last_seen_at`` may get before a request writes it (saves a write per page)."""


def _digest(raw: str) -> str:
    return hashlib.sha256(raw.encode("ascii", "replace")).hexdigest()


def _mac(settings: Settings, purpose: str, value: str) -> str:
    key = settings.session_secret.get_secret_value().encode()
    return hmac_sha256_hex(key, f"{purpose}\0{value}".encode())


def csrf_token(settings: Settings, raw: str) -> str:
    """Return the CSRF token of the session whose cookie value is ``raw``."""
    return _mac(settings, "csrf", raw)


def new_sign_in_nonce() -> str:
    """Return a random value for the sign-in form's pre-session CSRF cookie."""
    return secrets.token_urlsafe(32)


def sign_in_csrf(settings: Settings, nonce: str) -> str:
    """Return the sign-in form's CSRF token for the nonce in its cookie."""
    return _mac(settings, "sign-in", nonce)


def _caller(session: Session, token_id: str, principal_id: str, clock: Clock) -> Caller | None:
    row = session.exec(
        select(ApiToken, Principal, Partner)
        .join(Principal, col(Principal.id) == col(ApiToken.principal_id))
        .join(Partner, col(Partner.id) == col(Principal.partner_id))
        .where(ApiToken.id == token_id)
    ).one_or_none()
    if row is None:
        return None
    token, principal, partner = row
    if (
        principal.id != principal_id
        or token.revoked_at is not None
        or as_utc(token.expires_at) <= clock.now()
        or not principal.active
        or not partner.active
    ):
        return None
    return Caller(
        principal_id=principal.id,
        partner_id=partner.id,
        partner_kind=partner.kind,
        role=Role(principal.role),
        token_id=token.id,
    )


def open_session(db: Database, clock: Clock, settings: Settings, caller: Caller) -> str:
    """Open a session for an authenticated caller; return the cookie value (shown once).

    Expired sessions of everyone are removed on the way.
    """
    raw = secrets.token_urlsafe(32)
    now = clock.now()
    with db.write() as session:
        token = session.get(ApiToken, caller.token_id)
        assert token is not None
        expires = min(
            now + timedelta(hours=settings.workbench_session_hours), as_utc(token.expires_at)
        )
        session.execute(delete(WorkbenchSession).where(col(WorkbenchSession.expires_at) <= now))
        session.add(
            WorkbenchSession(
                id_sha256=_digest(raw),
                principal_id=caller.principal_id,
                token_id=caller.token_id,
                created_at=now,
                last_seen_at=now,
                expires_at=expires,
            )
        )
        usecase.record_event(
            session,
            clock,
            caller,
            AuditEventType.WORKBENCH_SIGN_IN,
            refs={"token": caller.token_id},
        )
    return raw


def resume(db: Database, clock: Clock, settings: Settings, raw: str) -> Caller | None:
    """Return the caller of a live session, or None (unknown, idle, expired, token invalid).

    A dead session is deleted; a live one has its last-seen time refreshed at most once
    a minute.
    """
    key = _digest(raw)
    now = clock.now()
    idle = timedelta(minutes=settings.workbench_idle_minutes)
    with db.read() as session:
        row = session.get(WorkbenchSession, key)
        if row is None:
            return None
        last_seen = as_utc(row.last_seen_at)
        alive = as_utc(row.expires_at) > now and now - last_seen < idle
        caller = _caller(session, row.token_id, row.principal_id, clock) if alive else None
    if caller is None:
        with db.write() as session:
            session.execute(delete(WorkbenchSession).where(col(WorkbenchSession.id_sha256) == key))
        return None
    if now - last_seen >= TOUCH_EVERY:
        with db.write() as session:
            session.execute(
                update(WorkbenchSession)
                .where(col(WorkbenchSession.id_sha256) == key)
                .values(last_seen_at=now)
            )
    return caller


def end_session(db: Database, clock: Clock, raw: str) -> None:
    """Delete the session whose cookie value is ``raw`` (audited if it was live)."""
    key = _digest(raw)
    with db.write() as session:
        row = session.get(WorkbenchSession, key)
        if row is None:
            return
        caller = _caller(session, row.token_id, row.principal_id, clock)
        session.delete(row)
        if caller is not None:
            usecase.record_event(
                session,
                clock,
                caller,
                AuditEventType.WORKBENCH_SIGN_OUT,
                refs={"token": caller.token_id},
            )
