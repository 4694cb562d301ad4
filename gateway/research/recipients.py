"""Researchers' age recipients: enrol, confirm, revoke, and the list a release encrypts to.

A researcher makes an age identity on their own machine and registers only its public
recipient here; a privacy officer of the researcher's science partner (never the same
person) confirms it. Releases are encrypted to the confirmed recipients and to nothing
else: the agreement file's ``recipient`` lines serve only database-less releases
(``gateway extract demo-run``). Registering a new key replaces the researcher's earlier
one for every later release (a lost key is replaced this way); an officer or the
researcher can also revoke a key. Every change is one transaction with its audit entry;
rows are never deleted, so the table is the versioned history of who added whom, when.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from sqlalchemy import func
from sqlmodel import Session, col, select

from gateway import usecase
from gateway.audit import log as audit_log
from gateway.audit.events import AuditEventType
from gateway.context import AppContext
from gateway.errors import ConflictError, NotFoundError
from gateway.identity.service import Actor, Caller
from gateway.keys.age import check_recipient
from gateway.models.partners import Principal
from gateway.models.research import ResearchRecipient
from gateway.research.agreements import Agreement
from gateway.research.errors import NoConfirmedRecipientError, NotEnrollableError
from gateway.vocabulary import Role

RECIPIENT_EVENT = AuditEventType.RESEARCH_RECIPIENT_CHANGE
"""The audit type of recipient changes; ``refs.recipient_change`` says which (register,
confirm, revoke)."""


class RecipientStatus(StrEnum):
    """Where a registered recipient stands."""

    PENDING = "pending"
    CONFIRMED = "confirmed"
    REVOKED = "revoked"


class RecipientChange(StrEnum):
    """What an audited recipient change did."""

    REGISTER = "register"
    CONFIRM = "confirm"
    REVOKE = "revoke"


@dataclass(frozen=True)
class RecipientView:
    """One recipient version as researchers and privacy officers see it."""

    id: str
    agreement_id: str
    version: int
    partner_id: str
    principal_id: str
    recipient: str
    status: RecipientStatus
    added_by: str
    added_at: datetime
    confirmed_by: str | None
    confirmed_at: datetime | None
    revoked_by: str | None
    revoked_at: datetime | None
    replaced_by: str | None


def recipient_view(row: ResearchRecipient) -> RecipientView:
    """Return the public view of a stored recipient version."""
    return RecipientView(
        id=row.id,
        agreement_id=row.agreement_id,
        version=row.version,
        partner_id=row.partner_id,
        principal_id=row.principal_id,
        recipient=row.recipient,
        status=RecipientStatus(row.status),
        added_by=row.added_by,
        added_at=row.added_at,
        confirmed_by=row.confirmed_by,
        confirmed_at=row.confirmed_at,
        revoked_by=row.revoked_by,
        revoked_at=row.revoked_at,
        replaced_by=row.replaced_by,
    )


def confirmed_recipients(session: Session, agreement: Agreement) -> list[str]:
    """Return the agreement's confirmed age recipients, oldest registration first.

    Only keys of researchers the agreement (as loaded now) still entitles count: a key
    confirmed under an earlier version that named its owner is not released to.
    """
    rows = session.exec(
        select(ResearchRecipient)
        .where(
            ResearchRecipient.agreement_id == agreement.id,
            ResearchRecipient.status == RecipientStatus.CONFIRMED.value,
        )
        .order_by(col(ResearchRecipient.version))
    ).all()
    entitled = (r.recipient for r in rows if agreement.may_enrol(r.principal_id, r.partner_id))
    return list(dict.fromkeys(entitled))


def require_confirmed_recipients(session: Session, agreement: Agreement) -> list[str]:
    """Return the confirmed recipients; raise NoConfirmedRecipientError when there are none."""
    found = confirmed_recipients(session, agreement)
    if not found:
        raise NoConfirmedRecipientError(
            f"agreement {agreement.id} has no confirmed researcher key: a researcher registers "
            "an age recipient and a privacy officer of their science partner confirms it "
            "before anything is released",
            agreement=agreement.id,
        )
    return found


def _same_person(session: Session, one: str, other: str) -> bool:
    """Return True if two principals are the same person (equal, non-empty person keys)."""
    a, b = session.get(Principal, one), session.get(Principal, other)
    return bool(a and b and a.person_key and a.person_key == b.person_key)


class Recipients:
    """The enrolment use cases of researchers' age recipients, bound to one context."""

    def __init__(self, ctx: AppContext) -> None:
        self.ctx = ctx

    def _record(
        self,
        session: Session,
        caller: Caller,
        agreement: Agreement,
        row: ResearchRecipient,
        change: RecipientChange,
    ) -> None:
        """Add the audit entry of one recipient change to the caller's transaction."""
        usecase.record(
            session,
            self.ctx.clock,
            Actor.of(caller),
            RECIPIENT_EVENT,
            purpose=agreement.purpose,
            legal_basis=agreement.legal_basis,
            parties=[row.partner_id],
            refs={
                "agreement": agreement.id,
                "agreement_version": agreement.version,
                "recipient_change": change.value,
                "recipient_id": row.id,
                "recipient_version": row.version,
                "recipient": row.recipient,
                "researcher": row.principal_id,
            },
        )

    def list(self, caller: Caller, agreement: Agreement) -> list[RecipientView]:
        """Return every recipient version of the agreement, newest first.

        Researchers and privacy officers of the agreement's science partners see them;
        anyone else gets NotEnrollableError.
        """
        science = {p.partner for p in agreement.science_partners}
        if caller.role not in (Role.RESEARCHER, Role.PRIVACY_OFFICER) or (
            caller.partner_id not in science
        ):
            raise NotEnrollableError(
                "only researchers and privacy officers of the agreement's science partners "
                "see its researchers' keys",
                agreement=agreement.id,
            )
        with self.ctx.db.read() as session:
            rows = session.exec(
                select(ResearchRecipient)
                .where(ResearchRecipient.agreement_id == agreement.id)
                .order_by(col(ResearchRecipient.version).desc())
            ).all()
        return [recipient_view(r) for r in rows]

    def register(self, caller: Caller, agreement: Agreement, recipient: str) -> RecipientView:
        """Register the caller's own age recipient (pending); revoke the caller's earlier one.

        Raises NotEnrollableError unless the caller is a researcher the agreement entitles
        (``researchers_are``), InvalidInputError for a value that is not an age recipient,
        ConflictError if that recipient is already registered and not revoked.
        """
        if caller.role is not Role.RESEARCHER or not agreement.may_enrol(
            caller.principal_id, caller.partner_id
        ):
            raise NotEnrollableError(
                "only a researcher the agreement entitles registers a key, and only their own",
                agreement=agreement.id,
            )
        check_recipient(recipient)
        now = self.ctx.clock.now()
        with self.ctx.db.write() as session:
            audit_log.lock_head(session)  # serialises version numbers and replacements
            live = session.exec(
                select(ResearchRecipient).where(
                    ResearchRecipient.agreement_id == agreement.id,
                    col(ResearchRecipient.status).in_(
                        [RecipientStatus.PENDING.value, RecipientStatus.CONFIRMED.value]
                    ),
                )
            ).all()
            if any(r.recipient == recipient for r in live):
                raise ConflictError(
                    "this key is already registered under the agreement", agreement=agreement.id
                )
            version = (
                session.exec(
                    select(func.max(ResearchRecipient.version)).where(
                        ResearchRecipient.agreement_id == agreement.id
                    )
                ).one()
                or 0
            ) + 1
            row = ResearchRecipient(
                id=f"rcp-{secrets.token_hex(8)}",
                agreement_id=agreement.id,
                version=version,
                partner_id=caller.partner_id,
                principal_id=caller.principal_id,
                recipient=recipient,
                status=RecipientStatus.PENDING.value,
                added_by=caller.principal_id,
                added_at=now,
            )
            session.add(row)
            self._record(session, caller, agreement, row, RecipientChange.REGISTER)
            for old in live:
                if old.principal_id == caller.principal_id:
                    self._revoke(session, caller, agreement, old, now, replaced_by=row.id)
            session.flush()
            view = recipient_view(row)
        return view

    def _revoke(
        self,
        session: Session,
        caller: Caller,
        agreement: Agreement,
        row: ResearchRecipient,
        now: datetime,
        *,
        replaced_by: str | None = None,
    ) -> None:
        row.status = RecipientStatus.REVOKED.value
        row.revoked_by = caller.principal_id
        row.revoked_at = now
        row.replaced_by = replaced_by
        session.add(row)
        self._record(session, caller, agreement, row, RecipientChange.REVOKE)

    def _row(self, session: Session, agreement: Agreement, recipient_id: str) -> ResearchRecipient:
        row = session.get(ResearchRecipient, recipient_id)
        if row is None or row.agreement_id != agreement.id:
            raise NotFoundError("no such recipient under this agreement", field="recipient_id")
        return row

    def confirm(self, caller: Caller, agreement: Agreement, recipient_id: str) -> RecipientView:
        """Confirm a pending recipient (a privacy officer of its partner, not its owner).

        Raises NotFoundError, NotEnrollableError, or ConflictError when it is not pending.
        """
        return self._change(caller, agreement, recipient_id, RecipientChange.CONFIRM)

    def revoke(self, caller: Caller, agreement: Agreement, recipient_id: str) -> RecipientView:
        """Revoke a recipient for every later release (its partner's officer or its owner).

        Raises NotFoundError, NotEnrollableError, or ConflictError when already revoked.
        """
        return self._change(caller, agreement, recipient_id, RecipientChange.REVOKE)

    def _change(
        self, caller: Caller, agreement: Agreement, recipient_id: str, change: RecipientChange
    ) -> RecipientView:
        now = self.ctx.clock.now()
        with self.ctx.db.write() as session:
            audit_log.lock_head(session)
            row = self._row(session, agreement, recipient_id)
            officer = caller.role is Role.PRIVACY_OFFICER and caller.partner_id == row.partner_id
            own = caller.principal_id in (row.principal_id, row.added_by) or _same_person(
                session, caller.principal_id, row.principal_id
            )
            if change is RecipientChange.CONFIRM:
                if not officer or own:
                    raise NotEnrollableError(
                        "a privacy officer of the researcher's science partner confirms a key, "
                        "never the person who registered it",
                        agreement=agreement.id,
                    )
                if row.status != RecipientStatus.PENDING.value:
                    raise ConflictError(
                        f"this key is {row.status}; only a pending key is confirmed",
                        agreement=agreement.id,
                    )
                row.status = RecipientStatus.CONFIRMED.value
                row.confirmed_by = caller.principal_id
                row.confirmed_at = now
                session.add(row)
                self._record(session, caller, agreement, row, change)
            else:
                if not (officer or (own and caller.role is Role.RESEARCHER)):
                    raise NotEnrollableError(
                        "a key is revoked by its researcher or a privacy officer of their "
                        "science partner",
                        agreement=agreement.id,
                    )
                if row.status == RecipientStatus.REVOKED.value:
                    raise ConflictError("this key is already revoked", agreement=agreement.id)
                self._revoke(session, caller, agreement, row, now)
            session.flush()
            view = recipient_view(row)
        return view


def pending(views: Sequence[RecipientView]) -> list[RecipientView]:
    """Return the pending recipients among ``views``."""
    return [v for v in views if v.status is RecipientStatus.PENDING]
