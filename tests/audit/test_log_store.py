"""Proofs read from the store: equal to the reference, for every size, in a few small queries."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from sqlalchemy import event
from sqlmodel import Session, col, select

from gateway.audit import log
from gateway.audit.events import canonical_json
from gateway.audit.merkle import (
    consistency_proof,
    inclusion_proof,
    leaf_hash,
    root_from_leaf_hashes,
    verify_consistency,
    verify_inclusion,
)
from gateway.audit.verify import verify_log
from gateway.db import Database
from gateway.errors import InvalidInputError, NotFoundError
from gateway.models.audit import AuditEntry, AuditNode, AuditParty, AuditSubject
from tests.audit.conftest import ORIGIN, fill, sample_event
from tests.conftest import START


def stored_leaves(session: Session) -> list[bytes]:
    rows = session.exec(select(AuditEntry).order_by(col(AuditEntry.leaf_index))).all()
    return [leaf_hash(r.leaf.encode()) for r in rows]


@contextmanager
def statements(database: Database) -> Iterator[list[tuple[str, Any]]]:
    seen: list[tuple[str, Any]] = []

    def record(_conn: Any, _cursor: Any, sql: str, params: Any, _ctx: Any, _many: bool) -> None:
        seen.append((sql, params))

    event.listen(database.root_engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(database.root_engine, "before_cursor_execute", record)


def test_store_proofs_equal_the_reference_for_every_size(database: Database) -> None:
    fill(database, 21)
    with database.read() as session:
        leaves = stored_leaves(session)
        assert log.read_head(session).root == root_from_leaf_hashes(leaves)
        for size in range(1, 22):
            root = root_from_leaf_hashes(leaves[:size])
            assert log.root_at(session, size) == root
            for index in range(size):
                proof = log.inclusion_proof(session, index, size)
                assert list(proof.hashes) == inclusion_proof(index, leaves[:size])
                assert proof.root == root and proof.leaf_hash == leaves[index]
                verify_inclusion(index, size, leaves[index], proof.hashes, root)
            for first in range(1, size + 1):
                cproof = log.consistency_proof(session, first, size)
                assert list(cproof.hashes) == (
                    consistency_proof(first, leaves[:size]) if first < size else []
                )
                verify_consistency(first, size, cproof.first_root, root, cproof.hashes)


def test_a_proof_is_three_queries_over_log_n_rows_and_never_reads_events(
    database: Database,
) -> None:
    fill(database, 300)
    with database.read() as session, statements(database) as inclusion_sql:
        proof = log.inclusion_proof(session, 123, 299)
    with database.read() as session, statements(database) as consistency_sql:
        cproof = log.consistency_proof(session, 77, 300)
    seen = [(sql, p) for sql, p in inclusion_sql + consistency_sql if sql.startswith("SELECT")]
    assert len(seen) == 6  # each: the head, the leaves, the nodes
    for sql, params in seen:
        assert "audit_entries.leaf," not in sql and "audit_entries.leaf " not in sql
        values = params.values() if isinstance(params, dict) else params
        flat = [v for p in values for v in (p if isinstance(p, list | tuple) else [p])]
        assert len(flat) <= 4 * 9 + 4  # a few hashes per level of a 300-leaf tree
    assert len(proof.hashes) == 9 and len(cproof.hashes) <= 10


def test_proof_arguments_are_checked(database: Database) -> None:
    fill(database, 5)
    with database.read() as session:
        with pytest.raises(NotFoundError):
            log.inclusion_proof(session, 5)
        with pytest.raises(InvalidInputError):
            log.inclusion_proof(session, 0, 6)
        with pytest.raises(InvalidInputError):
            log.consistency_proof(session, 0, 5)
        with pytest.raises(InvalidInputError):
            log.consistency_proof(session, 3, 2)
        assert log.consistency_proof(session, 5).hashes == ()


def test_append_stores_parties_subjects_and_an_honest_leaf(database: Database) -> None:
    fill(database, 4)
    with database.read() as session:
        entry = session.get(AuditEntry, 3)
        assert entry is not None
        doc = json.loads(entry.leaf)
        assert canonical_json(doc) == entry.leaf.encode()
        assert doc["parties"] == ["partner-1"] and doc["index"] == 3
        parties = session.exec(select(AuditParty.leaf_index, AuditParty.partner_id)).all()
        assert sorted(parties) == [(0, "partner-1"), (3, "partner-1")]
        subjects = session.exec(select(AuditSubject.leaf_index)).all()
        assert sorted(subjects) == [0, 2]
        levels = session.exec(select(AuditNode.level, AuditNode.node_index)).all()
        assert sorted(levels) == [(1, 0), (1, 1), (2, 0)]
        first = session.get(AuditEntry, 0)
        assert first is not None
        assert json.loads(first.leaf)["details_until"] is not None
        assert "detail 0" not in first.leaf  # details stay beside the leaf


def test_a_failed_transaction_leaves_no_trace_in_the_tree(database: Database) -> None:
    fill(database, 3)

    def failing_change() -> None:
        with database.write() as session:
            log.append(session, sample_event(3))
            raise RuntimeError("the change it recorded failed")

    with pytest.raises(RuntimeError):
        failing_change()
    fill(database, 1, start=3)
    with database.read() as session:
        head = log.read_head(session)
        assert head.size == 4
        assert head.root == root_from_leaf_hashes(stored_leaves(session))


def test_verify_reads_one_snapshot_while_others_append(database: Database) -> None:
    fill(database, 30)
    appended: list[int] = []

    def append_meanwhile(done: int, total: int) -> None:
        if len(appended) < 15:
            appended.extend(fill(database, 3, start=100 + len(appended)))

    report = verify_log(database, [], ORIGIN, START, batch=7, progress=append_meanwhile)
    assert report.ok, report.problem
    assert report.entries == 30 and len(appended) == 15
    assert verify_log(database, [], ORIGIN, START).entries == 45
