"""Appending events to the Merkle log, inside the caller's transaction, and proving them.

An append inserts a pending entry (``audit_pending``) in the caller's transaction and
locks nothing shared. The integrator (``gateway.audit.sequencer``, one at a time: it
locks the single tree-head row) takes committed pending entries in id order, gives them
the next leaf indexes, and updates the frontier, the root and the completed subtree
hashes in one batch. The leaf index is never a database sequence, so concurrent writers
cannot leave gaps or fork the tree.

Proofs for any tree size up to the current one are read from the stored hashes: every
perfect subtree is stored (level 0 in ``audit_entries.leaf_hash``, higher levels in
``audit_nodes``), so a proof needs O(log n) rows, fetched in two queries, and never
rehashes old leaves.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import timedelta
from functools import lru_cache
from typing import Any

from sqlalchemy import and_, bindparam, or_
from sqlmodel import Session, col, select

from gateway.audit.errors import AuditLogCorruptError
from gateway.audit.events import (
    AuditEvent,
    canonical_json,
    details_commitment,
    leaf_document,
)
from gateway.audit.merkle import (
    NodeId,
    ProofError,
    consistency_ranges,
    frontier_root,
    inclusion_ranges,
    perfect_cover,
)
from gateway.audit.statements import DriverInsert
from gateway.db import AUDIT_PENDING, insert_ids, table_of
from gateway.errors import InvalidInputError, NotFoundError
from gateway.logging import current_foreign_operation, current_trace_id
from gateway.models.audit import AuditEntry, AuditNode, AuditPending, AuditTreeHead

HEAD_ID = 1
# OM data (Wjsg art. 39j) must be logged for at least four years; details and subject
# index rows are kept that long by default (the pack's retention.yaml sets it per data
# category) and may be deleted afterwards while the tree stays verifiable.
DETAILS_RETENTION = timedelta(days=4 * 365 + 1)


def lock_head(session: Session) -> AuditTreeHead:
    """Return the tree head row, locked for this transaction."""
    head = session.exec(
        select(AuditTreeHead).where(AuditTreeHead.id == HEAD_ID).with_for_update()
    ).one_or_none()
    if head is None:
        raise AuditLogCorruptError("audit tree head missing; run migrations")
    return head


def read_head(session: Session) -> AuditTreeHead:
    """Return the tree head row without locking it."""
    head = session.get(AuditTreeHead, HEAD_ID)
    if head is None:
        raise AuditLogCorruptError("audit tree head missing; run migrations")
    return head


_PENDING_TABLE = table_of(AuditPending)
_PENDING_COLUMNS = (
    "event_type",
    "occurred_at",
    "actor_partner_id",
    "actor_principal_id",
    "case_id",
    "document",
    "salt",
    "body",
    "delete_after",
)
_INSERT_PENDING = DriverInsert(_PENDING_TABLE, _PENDING_COLUMNS, returning="entry_id")


def pending_values(
    event: AuditEvent, *, retention: timedelta = DETAILS_RETENTION
) -> dict[str, Any]:
    """Return the ``audit_pending`` row of ``event``: its leaf document less the index.

    ``retention`` is how long its details and its data-subject index rows are kept (the
    retention of the data categories it concerns, ``gateway.policy.retention``); the leaf
    commits to both ends (``details_until``, ``subjects_until``), so ``audit verify``
    accepts their deletion afterwards and nothing earlier. Pure but for the details'
    random salt, so a caller can build its rows before it takes any lock. Without a
    ``trace_id`` the event takes the current request's, and without a ``foreign``
    operation the current request's caller trace context (if any).
    """
    commitment: str | None = None
    details_until = None
    salt: bytes | None = None
    body: bytes | None = None
    if event.details is not None:
        salt = secrets.token_bytes(16)
        body = canonical_json(event.details)
        commitment = details_commitment(salt, body)
        details_until = event.at + retention
    subjects_until = event.at + retention if event.subjects else None
    document = leaf_document(
        event,
        0,
        commitment,
        details_until,
        subjects_until,
        trace_id=None if event.trace_id is not None else current_trace_id(),
        foreign=None if event.foreign is not None else current_foreign_operation(),
    )
    del document["index"]  # given by the integrator
    return {
        "event_type": str(event.type),
        "occurred_at": event.at,
        "actor_partner_id": event.actor_partner,
        "actor_principal_id": event.actor_principal,
        "case_id": event.case_id,
        "document": canonical_json(document).decode(),
        "salt": salt,
        "body": None if body is None else body.decode(),
        "delete_after": details_until,
    }


def append(session: Session, event: AuditEvent, *, retention: timedelta = DETAILS_RETENTION) -> int:
    """Log ``event`` in the session's transaction as a pending entry; return its entry id.

    Insert-only: no shared row is locked, so concurrent writers do not queue here. The
    integrator (``gateway.audit.sequencer``) gives committed pending entries their leaf
    indexes in order; ``sequencer.index_of`` maps the id to the index once it has. Nothing
    is committed here: the caller commits the change and its audit entry together, or
    neither. ``retention`` as ``pending_values``.
    """
    return append_values(session, pending_values(event, retention=retention))


def append_values(session: Session, values: dict[str, Any]) -> int:
    """Insert one row built by ``pending_values``; return its entry id (as ``append``)."""
    # at the driver: a Core insert's per-statement work cost more than SQLite's insert
    entry_id = _INSERT_PENDING.insert_one(session.connection(), values)
    session.info[AUDIT_PENDING] = True  # Database.write integrates after commit
    return entry_id


def append_many(session: Session, events: Iterable[AuditEvent]) -> list[int]:
    """Log ``events`` as pending entries in one insert; return their entry ids in order.

    As ``append`` for each, in one statement instead of one per event.
    """
    rows = [pending_values(event) for event in events]
    if len(rows) <= 1:
        return [append_values(session, row) for row in rows]
    ids = insert_ids(session.connection(), _PENDING_TABLE, "entry_id", rows)
    session.info[AUDIT_PENDING] = True
    return ids


# --- reading hashes back ---------------------------------------------------------------


_LEAVES = select(AuditEntry.leaf_index, AuditEntry.leaf_hash).where(
    col(AuditEntry.leaf_index).in_(bindparam("indexes", expanding=True))
)


@lru_cache(maxsize=256)
def _nodes_query(count: int) -> Any:
    """The query for ``count`` (level, index) pairs, built once per count.

    An OR of equalities, because both engines answer it from the primary key (SQLite
    scans the table for a row-value IN list), and cached, because building the
    expression costs more than running it.
    """
    return select(AuditNode.level, AuditNode.node_index, AuditNode.hash).where(
        or_(
            *(
                and_(
                    col(AuditNode.level) == bindparam(f"l{k}"),
                    col(AuditNode.node_index) == bindparam(f"i{k}"),
                )
                for k in range(count)
            )
        )
    )


def fetch_nodes(session: Session, wanted: Iterable[NodeId]) -> dict[NodeId, bytes]:
    """Return the stored hashes of perfect subtrees (level 0 = leaves) in two queries.

    Raises AuditLogCorruptError if any is missing: every node asked for must be complete.
    """
    wanted = set(wanted)
    found: dict[NodeId, bytes] = {}
    conn = session.connection()  # Core reads: the ORM's per-statement work is most of their cost
    leaves = sorted(i for level, i in wanted if level == 0)
    if leaves:
        leaf_rows = conn.execute(_LEAVES, {"indexes": leaves}).all()
        found.update(((0, i), h) for i, h in leaf_rows)
    inner = sorted(node for node in wanted if node[0])
    if inner:
        params: dict[str, int] = {}
        for k, (level, index) in enumerate(inner):
            params[f"l{k}"], params[f"i{k}"] = level, index
        rows = conn.execute(_nodes_query(len(inner)), params).all()
        found.update(((level, i), h) for level, i, h in rows)
    missing = wanted - found.keys()
    if missing:
        raise AuditLogCorruptError(
            f"{len(missing)} stored tree node(s) missing, e.g. {min(missing)}"
        )
    return found


def _range_hash(nodes: dict[NodeId, bytes], start: int, end: int) -> bytes:
    return frontier_root([nodes[n] for n in perfect_cover(start, end)])


_HEAD_TABLE = table_of(AuditTreeHead)
_HEAD_SIZE = select(_HEAD_TABLE.c.size).where(_HEAD_TABLE.c.id == HEAD_ID)


def head_size(session: Session) -> int:
    """Return the tree size (a Core read of one column: cheaper than ``read_head``).

    Raises AuditLogCorruptError if the tree head row is missing.
    """
    size = session.connection().execute(_HEAD_SIZE).scalar_one_or_none()
    if size is None:
        raise AuditLogCorruptError("audit tree head missing; run migrations")
    return int(size)


def _checked_size(session: Session, size: int | None) -> int:
    current = head_size(session)
    if size is None:
        return current
    if not 0 <= size <= current:
        raise InvalidInputError(f"tree size {size} is not between 0 and the log's size {current}")
    return size


def root_at(session: Session, size: int) -> bytes:
    """Return the root hash of the tree at ``size`` (at most the current size).

    Raises InvalidInputError for a size the log has not reached.
    """
    size = _checked_size(session, size)
    if size == 0:
        return frontier_root([])
    nodes = fetch_nodes(session, perfect_cover(0, size))
    return _range_hash(nodes, 0, size)


@dataclass(frozen=True, slots=True)
class InclusionProof:
    """Entry ``index`` (leaf hash ``leaf_hash``) is in the tree of ``size`` with ``root``."""

    index: int
    size: int
    leaf_hash: bytes
    hashes: tuple[bytes, ...]
    root: bytes


@dataclass(frozen=True, slots=True)
class ConsistencyProof:
    """The tree of size ``first`` (``first_root``) is a prefix of ``second`` (``second_root``)."""

    first: int
    second: int
    hashes: tuple[bytes, ...]
    first_root: bytes
    second_root: bytes


def inclusion_proof(session: Session, index: int, size: int | None = None) -> InclusionProof:
    """Return the inclusion proof of entry ``index`` in the tree of ``size`` (default: now).

    Raises InvalidInputError for a size the log has not reached, NotFoundError for an
    index outside the tree of that size.
    """
    size = _checked_size(session, size)
    try:
        ranges = inclusion_ranges(index, size)
    except ProofError as exc:
        raise NotFoundError(f"no entry {index} in the log at size {size}") from exc
    wanted = {(0, index), *perfect_cover(0, size)}
    for start, end in ranges:
        wanted.update(perfect_cover(start, end))
    nodes = fetch_nodes(session, wanted)
    return InclusionProof(
        index=index,
        size=size,
        leaf_hash=nodes[(0, index)],
        hashes=tuple(_range_hash(nodes, a, b) for a, b in ranges),
        root=_range_hash(nodes, 0, size),
    )


def consistency_proof(session: Session, first: int, second: int | None = None) -> ConsistencyProof:
    """Return the proof that the tree of size ``first`` is a prefix of ``second`` (default: now).

    Raises InvalidInputError unless ``0 < first <= second <= current size``.
    """
    second = _checked_size(session, second)
    try:
        ranges = consistency_ranges(first, second)
    except ProofError as exc:
        raise InvalidInputError(
            f"a consistency proof needs 0 < first <= second; got {first} and {second}"
        ) from exc
    wanted = {*perfect_cover(0, first), *perfect_cover(0, second)}
    for start, end in ranges:
        wanted.update(perfect_cover(start, end))
    nodes = fetch_nodes(session, wanted)
    return ConsistencyProof(
        first=first,
        second=second,
        hashes=tuple(_range_hash(nodes, a, b) for a, b in ranges),
        first_root=_range_hash(nodes, 0, first),
        second_root=_range_hash(nodes, 0, second),
    )
