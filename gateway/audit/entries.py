"""Reading audit entries: who may see which, filters, pagination, and purging old details.

Visibility follows the case, not the partner kind: every reader sees the entries in which
its own partner acted or which name it as a party. A RIEC's riec-analysts and privacy
officers also see every entry of the cases that RIEC runs (``cases.riec_partner_id``),
and the gateway-wide administration, key and policy events that are about nobody; a
case another RIEC (or the LIEC) runs they see only as any participant does. Operators
see only administration and key events. Entries are returned as their canonical leaf
documents; details never leave the store through here.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, and_, delete, exists, false, or_
from sqlalchemy.orm import aliased
from sqlmodel import Session, col, select

from gateway.audit import log
from gateway.audit.events import AuditEvent, AuditEventType
from gateway.clock import Clock
from gateway.errors import InvalidInputError, NotFoundError
from gateway.identity.service import Actor, Caller
from gateway.models.audit import AuditDetail, AuditEntry, AuditParty, AuditSubject
from gateway.models.cases import Case
from gateway.vocabulary import Role

OPERATOR_EVENT_PREFIXES = ("admin:", "keys:")
# Events about the gateway itself that a RIEC oversees, when bound to no case and no person.
GATEWAY_EVENT_PREFIXES = ("admin:", "keys:", "audit:", "policy:version:", "policy:proposal:")
MAX_PAGE = 500


@dataclass(frozen=True, slots=True)
class EntryScope:
    """Which entries a reader may see.

    ``partner_id``: those its partner acted in or is a party to; with ``runs_cases`` also
    every entry of the cases that partner runs as their RIEC. ``type_prefixes``: events
    of these types; with ``partner_id`` set, only those bound to no case and no person.
    A scope with none of these sees nothing.
    """

    partner_id: str | None = None
    type_prefixes: tuple[str, ...] = ()
    runs_cases: bool = False


def scope_for(caller: Caller) -> EntryScope:
    """Return the entries ``caller`` may see, by role and partner (never by kind alone)."""
    if caller.partner_kind == "riec" and caller.role in (Role.RIEC_ANALYST, Role.PRIVACY_OFFICER):
        return EntryScope(
            partner_id=caller.partner_id, runs_cases=True, type_prefixes=GATEWAY_EVENT_PREFIXES
        )
    if caller.role is Role.OPERATOR:
        return EntryScope(type_prefixes=OPERATOR_EVENT_PREFIXES)
    return EntryScope(partner_id=caller.partner_id)


@dataclass(frozen=True, slots=True)
class EntryFilter:
    """Optional filters on a listing; ``after`` is the last index of the previous page.

    With ``newest_first`` the page runs backwards and ``before`` is the cursor instead.
    """

    case_id: str | None = None
    partner_id: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    after: int = -1
    limit: int = 100
    newest_first: bool = False
    before: int | None = None


def _concerns(partner_id: str) -> ColumnElement[bool]:
    return or_(
        col(AuditEntry.actor_partner_id) == partner_id,
        col(AuditEntry.leaf_index).in_(
            select(AuditParty.leaf_index).where(AuditParty.partner_id == partner_id)
        ),
    )


def _about_nobody() -> ColumnElement[bool]:
    """Entries bound to no case and naming no data subject."""
    named = aliased(AuditSubject)  # its own alias: callers may join audit_subjects themselves
    return and_(
        col(AuditEntry.case_id).is_(None),
        ~exists(
            select(named.leaf_index).where(named.leaf_index == col(AuditEntry.leaf_index))
        ).correlate(AuditEntry),
    )


def visible_condition(scope: EntryScope) -> ColumnElement[bool]:
    """Return the SQL condition selecting the entries ``scope`` may see."""
    allowed: list[ColumnElement[bool]] = []
    if scope.partner_id is not None:
        allowed.append(_concerns(scope.partner_id))
        if scope.runs_cases:
            allowed.append(
                col(AuditEntry.case_id).in_(
                    select(Case.id).where(Case.riec_partner_id == scope.partner_id)
                )
            )
    if scope.type_prefixes:
        types = or_(*(col(AuditEntry.event_type).startswith(p) for p in scope.type_prefixes))
        allowed.append(types if scope.partner_id is None else and_(types, _about_nobody()))
    return or_(*allowed) if allowed else false()


def list_entries(
    session: Session, scope: EntryScope, flt: EntryFilter
) -> tuple[Sequence[AuditEntry], int | None]:
    """Return one page of visible entries in log order, and the cursor of the next page.

    Raises InvalidInputError for a bad page size or time range.
    """
    if not 1 <= flt.limit <= MAX_PAGE:
        raise InvalidInputError(f"limit must be between 1 and {MAX_PAGE}", field="limit")
    if flt.since is not None and flt.until is not None and flt.since > flt.until:
        raise InvalidInputError("since must not be after until", field="since")
    conditions: list[Any] = [visible_condition(scope), col(AuditEntry.leaf_index) > flt.after]
    if flt.before is not None:
        conditions.append(col(AuditEntry.leaf_index) < flt.before)
    if flt.case_id is not None:
        conditions.append(col(AuditEntry.case_id) == flt.case_id)
    if flt.partner_id is not None:
        conditions.append(_concerns(flt.partner_id))
    if flt.since is not None:
        conditions.append(col(AuditEntry.occurred_at) >= flt.since)
    if flt.until is not None:
        conditions.append(col(AuditEntry.occurred_at) < flt.until)
    rows = session.exec(
        select(AuditEntry)
        .where(*conditions)
        .order_by(
            col(AuditEntry.leaf_index).desc() if flt.newest_first else col(AuditEntry.leaf_index)
        )
        .limit(flt.limit + 1)
    ).all()
    page = rows[: flt.limit]
    next_after = page[-1].leaf_index if len(rows) > flt.limit else None
    return page, next_after


def visible_entry(session: Session, scope: EntryScope, index: int) -> AuditEntry:
    """Return entry ``index`` if the scope may see it; NotFoundError otherwise (also if absent)."""
    row = session.exec(
        select(AuditEntry).where(col(AuditEntry.leaf_index) == index, visible_condition(scope))
    ).first()
    if row is None:
        raise NotFoundError(f"no audit entry {index} that you may see")
    return row


def purge_details(session: Session, clock: Clock, actor: Actor) -> int:
    """Delete the details and data-subject index rows whose retention has ended.

    Returns how many entries lost details or subject rows. Each entry's retention is
    the one its leaf commits to (its data categories', ``gateway.policy.retention``);
    subject rows integrated before that have the default four years from the entry's
    time. The leaves stay with their salted commitments, so the tree stays verifiable,
    and an art. 15 lookup no longer finds the entry. The purge itself is logged
    (without details) in the same transaction.
    """
    log.lock_head(session)  # one purge at a time, ordered with the appends
    now = clock.now()
    expired = set(
        session.exec(
            select(AuditDetail.leaf_index).where(col(AuditDetail.delete_after) <= now)
        ).all()
    )
    due_subjects = or_(
        col(AuditSubject.delete_after) <= now,
        and_(
            col(AuditSubject.delete_after).is_(None),
            col(AuditSubject.leaf_index).in_(
                select(AuditEntry.leaf_index).where(
                    col(AuditEntry.occurred_at) <= now - log.DETAILS_RETENTION
                )
            ),
        ),
    )
    unlinked = set(session.exec(select(AuditSubject.leaf_index).where(due_subjects)).all())
    if not expired and not unlinked:
        return 0
    session.execute(delete(AuditDetail).where(col(AuditDetail.delete_after) <= now))
    session.execute(delete(AuditSubject).where(due_subjects))
    purged = expired | unlinked
    log.append(
        session,
        AuditEvent(
            type=AuditEventType.AUDIT_DETAILS_PURGE,
            at=now,
            actor_principal=actor.principal_id,
            actor_partner=actor.partner_id,
            refs={
                "count": len(expired),
                "subject_entries": len(unlinked),
                "first": min(purged),
                "last": max(purged),
            },
        ),
    )
    return len(purged)
