"""Integration batches: pending entries made leaves, nodes and a new tree head, then stored.

``build_batch`` is pure: it needs only the tree head (size and stored frontier) and the
pending rows, so the integrator builds a batch before it takes the write lock, and
``write_batch`` stores it inside: one executemany per table (``DriverInsert``, the rows
already converted), the Logboek outbox lines, one delete of the pending rows and one
update of the head. See ``gateway.audit.sequencer`` for who integrates when.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import bindparam, delete, update
from sqlalchemy.engine import Dialect
from sqlmodel import Session

from gateway.audit import log
from gateway.audit.errors import AuditLogCorruptError
from gateway.audit.events import encode_parsed, parse_canonical, subject_links
from gateway.audit.merkle import frontier_append, frontier_root, leaf_hash
from gateway.audit.statements import DriverInsert, Params
from gateway.db import table_of
from gateway.logboek import outbox
from gateway.models.audit import (
    AuditDetail,
    AuditEntry,
    AuditNode,
    AuditParty,
    AuditPending,
    AuditSubject,
    AuditTreeHead,
)

_PENDING_TABLE = table_of(AuditPending)
_DELETE = delete(_PENDING_TABLE).where(
    _PENDING_TABLE.c.entry_id.in_(bindparam("ids", expanding=True))
)
_HEAD_TABLE = table_of(AuditTreeHead)
_UPDATE_HEAD = update(_HEAD_TABLE).where(_HEAD_TABLE.c.id == log.HEAD_ID)
_ENTRY_COLUMNS = (
    "leaf_index",
    "entry_id",
    "event_type",
    "occurred_at",
    "actor_partner_id",
    "actor_principal_id",
    "case_id",
    "trace_id",
    "leaf",
    "leaf_hash",
)
_INSERT_ENTRIES = DriverInsert(table_of(AuditEntry), _ENTRY_COLUMNS)
_INSERT_DETAILS = DriverInsert(
    table_of(AuditDetail), ("leaf_index", "salt", "body", "delete_after")
)
_INSERT_NODES = DriverInsert(table_of(AuditNode), ("level", "node_index", "hash"))
_INSERT_SUBJECTS = DriverInsert(
    table_of(AuditSubject), ("leaf_index", "subject_key", "person", "id_type", "delete_after")
)
_INSERT_PARTIES = DriverInsert(table_of(AuditParty), ("leaf_index", "partner_id"))


@dataclass(frozen=True, slots=True)
class Batch:
    """Pending entries made ready to integrate into the tree of ``size`` leaves.

    ``frontier`` is that tree's stored frontier, as read; ``rows`` the parameters of
    each table's insert, already converted for the driver (``DriverInsert.params``), so
    that writing the batch does little but run them.
    """

    size: int
    frontier: str
    ids: list[int]
    entries: list[dict[str, Any]]
    rows: list[tuple[DriverInsert, list[Params]]]
    head: dict[str, Any]


def build_batch(dialect: Dialect, size: int, frontier: str, pending: Sequence[Any]) -> Batch:
    """Give ``pending`` rows (in id order) the leaf indexes from ``size`` on; pure.

    Builds their leaves, leaf hashes, the subtree nodes they complete, their detail,
    subject and party rows and the new tree head, for the tree of ``size`` leaves whose
    stored frontier is ``frontier``.
    """
    hashes = [bytes.fromhex(h) for h in json.loads(frontier)]
    entries: list[dict[str, Any]] = []
    details: list[dict[str, Any]] = []
    nodes: list[dict[str, Any]] = []
    subjects: list[dict[str, Any]] = []
    parties: list[dict[str, Any]] = []
    index = size
    for row in pending:
        document = parse_canonical(row.document)  # written by canonical_json: no floats
        document["index"] = index
        leaf = encode_parsed(document)
        digest = leaf_hash(leaf)
        hashes, completed = frontier_append(index, hashes, digest)
        entries.append(
            {
                "leaf_index": index,
                "entry_id": row.entry_id,
                "event_type": row.event_type,
                "occurred_at": row.occurred_at,
                "actor_partner_id": row.actor_partner_id,
                "actor_principal_id": row.actor_principal_id,
                "case_id": row.case_id,
                "trace_id": document.get("trace"),
                "leaf": leaf.decode(),
                "leaf_hash": digest,
            }
        )
        if row.body is not None:
            details.append(
                {
                    "leaf_index": index,
                    "salt": row.salt,
                    "body": row.body,
                    "delete_after": row.delete_after,
                }
            )
        nodes.extend({"level": n.level, "node_index": n.index, "hash": n.hash} for n in completed)
        subjects.extend(subject_links(index, document))
        parties.extend({"leaf_index": index, "partner_id": p} for p in document["parties"])
        index += 1
    tables = (
        (_INSERT_ENTRIES, entries),
        (_INSERT_DETAILS, details),
        (_INSERT_NODES, nodes),
        (_INSERT_SUBJECTS, subjects),
        (_INSERT_PARTIES, parties),
    )
    return Batch(
        size=size,
        frontier=frontier,
        ids=[row.entry_id for row in pending],
        entries=entries,
        rows=[(table, table.params(dialect, values)) for table, values in tables if values],
        head={
            "size": index,
            "root": frontier_root(hashes),
            "frontier": json.dumps([h.hex() for h in hashes]),
            "updated_at": pending[-1].occurred_at if pending else None,
        },
    )


def write_batch(session: Session, batch: Batch) -> None:
    """Store ``batch`` in the session's transaction, which holds the tree head's lock.

    Raises AuditLogCorruptError if any of its pending entries is gone (only an
    integrator holding the lock deletes them, so the head would have moved).
    """
    conn = session.connection()
    for table, params in batch.rows:
        table.run(conn, params)
    # the lines for partners' Logboeken are queued with their entries, or neither
    outbox.enqueue(session, batch.entries, batch.head["updated_at"])
    deleted = conn.execute(_DELETE, {"ids": batch.ids}).rowcount
    if deleted != len(batch.ids):
        raise AuditLogCorruptError(
            f"{len(batch.ids) - deleted} pending entries vanished while being integrated"
        )
    conn.execute(_UPDATE_HEAD, batch.head)
    if session.identity_map:  # a head loaded earlier in this transaction keeps no stale size
        loaded = session.identity_map.get(session.identity_key(AuditTreeHead, log.HEAD_ID))
        if loaded is not None:
            session.expire(loaded)
