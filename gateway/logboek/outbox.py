"""The Logboek outbox: lines waiting for partners' Logboeken, queued with their audit entry.

``enqueue`` runs inside the integrator's transaction (``gateway.audit.sequencer``), so a
line is queued exactly when its audit entry gets its leaf index, or neither: one row
per line per destination partner (the actor's partner and the entry's parties, those of
them that named a Logboek endpoint), in one bulk insert.

An exporter ``claim``s a batch of one partner's rows (a lease: ``SELECT ... FOR UPDATE
SKIP LOCKED`` on PostgreSQL, the write lock on SQLite, then a lease token and expiry on
the rows), sends it outside any transaction, and then either ``acknowledge``s it (the
rows are deleted) or ``postpone``s it (the partner's rows wait, with exponential backoff,
before the next attempt). A lease that expires (the exporter died mid-send) makes its
rows claimable again, so no row is ever lost; the cost is that a batch the endpoint did
receive just before the exporter died is sent a second time, with the same span ids.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, and_, delete, func, insert, or_, update
from sqlmodel import Session, col, select

from gateway.clock import as_utc
from gateway.db import table_of
from gateway.logboek.lines import encode, lines_for
from gateway.models.audit import AuditEntry
from gateway.models.logboek import LogboekEndpoint, LogboekOutboxRow

ERROR_LENGTH = 200


_ENDPOINT_PARTNERS = select(table_of(LogboekEndpoint).c.partner_id)
"""The partners with an endpoint, as a Core query: every integrated batch asks it."""


def enqueue(session: Session, entries: Sequence[Mapping[str, Any]], at: datetime) -> int:
    """Queue the lines of ``entries`` (``audit_entries`` rows being inserted) for their
    partners' Logboeken; return the rows added.

    Nothing is queued for a partner without an endpoint; with no endpoint at all this
    costs one small query.
    """
    configured = set(session.connection().execute(_ENDPOINT_PARTNERS).scalars())
    if not configured:
        return 0
    # imported here: the register's history reaches the sequencer, which imports this module
    from gateway.policy.register_history import RegisterHistory

    rows: list[dict[str, object]] = []
    history = RegisterHistory(session)
    for values in entries:
        entry = AuditEntry.model_construct(**values)  # validated columns: skip validation
        parties = json.loads(entry.leaf).get("parties") or []
        targets = sorted(({entry.actor_partner_id, *parties} - {None}) & configured)
        if not targets:
            continue
        for line in lines_for(session, entry, history):
            stored = encode(line)
            rows.extend(
                {
                    "partner_id": partner,
                    "leaf_index": entry.leaf_index,
                    "span_id": line.span_id,
                    "line": stored,
                    "created_at": at,
                    "attempts": 0,
                }
                for partner in targets
            )
    if rows:
        session.execute(insert(LogboekOutboxRow), rows)
    return len(rows)


@dataclass(frozen=True, slots=True)
class Batch:
    """Rows of one partner leased to one exporter: ids, stored lines and where to send them."""

    token: str
    partner_id: str
    endpoint: LogboekEndpoint
    ids: tuple[int, ...]
    lines: tuple[str, ...]


def _free(now: datetime) -> ColumnElement[bool]:
    until = col(LogboekOutboxRow.lease_until)
    return or_(until.is_(None), until <= now)


def _due(now: datetime) -> ColumnElement[bool]:
    """Free rows of partners none of whose rows waits for a later attempt."""
    waiting = select(LogboekOutboxRow.partner_id).where(col(LogboekOutboxRow.next_attempt_at) > now)
    return and_(_free(now), col(LogboekOutboxRow.partner_id).not_in(waiting))


_WITH_ENDPOINT = col(LogboekEndpoint.partner_id) == col(LogboekOutboxRow.partner_id)


def has_due(session: Session, now: datetime) -> bool:
    """Whether any row may be claimed now (a read, so idle exporters take no write lock)."""
    query = select(LogboekOutboxRow.id).join(LogboekEndpoint, _WITH_ENDPOINT).where(_due(now))
    return session.execute(query.limit(1)).first() is not None


def claim(
    session: Session, now: datetime, *, lease: timedelta, limit: int, is_postgres: bool
) -> list[Batch]:
    """Lease at most ``limit`` of the oldest free rows of each partner that is due; return them.

    A partner is due when none of its rows waits for a later attempt (so a Logboek that
    is down is not tried again before its backoff ends). Rows of partners whose endpoint
    was removed stay queued until one is set again.
    """
    due = (
        select(LogboekOutboxRow.partner_id, LogboekEndpoint)
        .join(LogboekEndpoint, _WITH_ENDPOINT)
        .where(_due(now))
        .distinct()
    )
    batches = []
    for partner_id, endpoint in session.execute(due).all():
        query = (
            select(LogboekOutboxRow.id, LogboekOutboxRow.line)
            .where(col(LogboekOutboxRow.partner_id) == partner_id, _free(now))
            .order_by(col(LogboekOutboxRow.id))
            .limit(limit)
        )
        if is_postgres:  # another replica's exporter skips what this one is taking
            query = query.with_for_update(skip_locked=True)
        rows = session.execute(query).all()
        if not rows:
            continue
        token = secrets.token_hex(16)
        ids = tuple(int(row[0]) for row in rows)
        session.execute(
            update(LogboekOutboxRow)
            .where(col(LogboekOutboxRow.id).in_(ids))
            .values(lease_token=token, lease_until=now + lease)
        )
        batches.append(Batch(token, partner_id, endpoint, ids, tuple(row[1] for row in rows)))
    return batches


def acknowledge(session: Session, batch: Batch) -> None:
    """Delete the rows of ``batch``: its Logboek acknowledged them."""
    session.execute(delete(LogboekOutboxRow).where(col(LogboekOutboxRow.id).in_(batch.ids)))


def postpone(
    session: Session,
    batch: Batch,
    now: datetime,
    error: str,
    *,
    first_delay: timedelta,
    max_delay: timedelta,
) -> timedelta:
    """Record a failed attempt of ``batch``; hold the partner's rows back; return for how long.

    The delay doubles with every failed attempt of the partner's oldest row, up to
    ``max_delay``. ``error`` must not contain personal data (it is shown by ``status``).
    """
    rows = col(LogboekOutboxRow.id).in_(batch.ids)
    session.execute(
        update(LogboekOutboxRow)
        .where(rows, col(LogboekOutboxRow.lease_token) == batch.token)
        .values(
            attempts=col(LogboekOutboxRow.attempts) + 1,
            last_error=error[:ERROR_LENGTH],
            lease_token=None,
            lease_until=None,
        )
    )
    attempts = session.execute(
        select(func.max(LogboekOutboxRow.attempts)).where(rows)
    ).scalar_one_or_none()
    delay: timedelta = min(max_delay, first_delay * 2 ** max(0, int(attempts or 1) - 1))
    session.execute(
        update(LogboekOutboxRow)
        .where(col(LogboekOutboxRow.partner_id) == batch.partner_id)
        .values(next_attempt_at=now + delay)
    )
    return delay


@dataclass(frozen=True, slots=True)
class PartnerStatus:
    """A partner's Logboek: its endpoint and the lines waiting for it."""

    partner_id: str
    url: str | None
    protocol: str | None
    pending: int
    failed: int
    """Waiting lines that at least one attempt failed to deliver."""
    oldest: datetime | None
    next_attempt_at: datetime | None
    last_error: str | None


def status(session: Session) -> list[PartnerStatus]:
    """Return, per partner with an endpoint or waiting lines, what waits and why."""
    counts = session.execute(
        select(  # type: ignore[call-overload]  # five columns: more than select's overloads
            col(LogboekOutboxRow.partner_id),
            func.count(),
            func.count().filter(col(LogboekOutboxRow.attempts) > 0),
            func.min(LogboekOutboxRow.created_at),
            func.max(LogboekOutboxRow.next_attempt_at),
        ).group_by(col(LogboekOutboxRow.partner_id))
    ).all()
    waiting = {row[0]: row for row in counts}
    errors = dict(
        session.execute(
            select(LogboekOutboxRow.partner_id, LogboekOutboxRow.last_error)
            .where(col(LogboekOutboxRow.last_error).is_not(None))
            .order_by(col(LogboekOutboxRow.id))
        ).all()
    )
    endpoints = {e.partner_id: e for e in session.exec(select(LogboekEndpoint)).all()}
    result = []
    for partner_id in sorted(waiting.keys() | endpoints.keys()):
        endpoint = endpoints.get(partner_id)
        row = waiting.get(partner_id)
        result.append(
            PartnerStatus(
                partner_id=partner_id,
                url=None if endpoint is None else endpoint.url,
                protocol=None if endpoint is None else endpoint.protocol,
                pending=0 if row is None else int(row[1]),
                failed=0 if row is None else int(row[2]),
                oldest=None if row is None or row[3] is None else as_utc(row[3]),
                next_attempt_at=None if row is None or row[4] is None else as_utc(row[4]),
                last_error=errors.get(partner_id),
            )
        )
    return result
