"""Batches built outside the write lock: stored only on the head they were built on."""

from __future__ import annotations

import pytest
from sqlalchemy import text
from sqlmodel import col, select

from gateway.audit import log, sequencer
from gateway.audit.errors import AuditLogCorruptError
from gateway.audit.merkle import leaf_hash, root_from_leaf_hashes
from gateway.audit.verify import verify_log
from gateway.db import Database
from gateway.models.audit import AuditEntry
from tests.audit.conftest import ORIGIN, sample_event
from tests.conftest import START


def append(database: Database, numbers: range) -> list[int]:
    ids = []
    for i in numbers:
        with database.write() as session:
            ids.append(log.append(session, sample_event(i)))
    return ids


def tree(database: Database) -> list[tuple[int, int | None]]:
    """Return (leaf index, entry id) of every entry, checking the head's size and root."""
    with database.read() as session:
        rows = session.exec(select(AuditEntry).order_by(col(AuditEntry.leaf_index))).all()
        head = log.read_head(session)
        assert not sequencer.has_pending(session)
    assert head.size == len(rows)
    assert head.root == root_from_leaf_hashes([leaf_hash(r.leaf.encode()) for r in rows])
    assert verify_log(database, [], ORIGIN, START).ok
    return [(r.leaf_index, r.entry_id) for r in rows]


def test_entries_committed_while_a_batch_is_built_follow_it_in_commit_order(
    database: Database, deferred: sequencer.Integrator
) -> None:
    first = append(database, range(3))
    batch = sequencer.prepare_batch(database)
    assert batch is not None and batch.ids == first
    later = append(database, range(3, 5))  # commits between the build and the store

    assert sequencer.store_batch(database, batch) == 3  # the head had not moved: stored as built
    with database.read() as session:
        assert log.read_head(session).size == 3
        assert all(sequencer.is_pending(session, e) for e in later)
    assert sequencer.integrate_pending(database) == 2
    assert tree(database) == list(enumerate(first + later))


def test_a_batch_whose_head_moved_meanwhile_is_rebuilt_under_the_lock(
    database: Database, deferred: sequencer.Integrator
) -> None:
    ids = append(database, range(4))
    stale = sequencer.prepare_batch(database)
    assert stale is not None and stale.ids == ids
    with database.write() as session:  # another integrator takes the first two
        assert sequencer.integrate_batch(session, limit=2) == 2
    ids += append(database, range(4, 6))

    # not stored as built (it would place entries 1 and 2 twice): rebuilt on the new head
    assert sequencer.store_batch(database, stale) == 4
    assert tree(database) == list(enumerate(ids))


def test_a_batch_missing_a_pending_entry_stores_nothing(
    database: Database, deferred: sequencer.Integrator
) -> None:
    ids = append(database, range(3))
    batch = sequencer.prepare_batch(database)
    assert batch is not None
    with database.write() as session:  # not an integrator: the head stays where it was
        session.execute(text("DELETE FROM audit_pending WHERE entry_id = :i"), {"i": ids[1]})

    with pytest.raises(AuditLogCorruptError, match="1 pending entries vanished"):
        sequencer.store_batch(database, batch)
    with database.read() as session:
        assert log.read_head(session).size == 0
        assert session.exec(select(AuditEntry)).all() == []
        assert sequencer.is_pending(session, ids[0]) and sequencer.is_pending(session, ids[2])


def test_nothing_pending_builds_no_batch(
    database: Database, deferred: sequencer.Integrator
) -> None:
    assert sequencer.prepare_batch(database) is None
    assert sequencer.integrate_prepared(database) == 0


def test_batches_built_outside_and_under_the_lock_store_the_same_tree(
    database: Database, deferred: sequencer.Integrator
) -> None:
    ids = append(database, range(9))
    assert sequencer.integrate_pending(database, limit=4) == 9  # built outside the lock
    outside = tree(database)
    with database.read() as session:
        leaves = [
            r.leaf for r in session.exec(select(AuditEntry).order_by(col(AuditEntry.leaf_index)))
        ]
    ids += append(database, range(9, 18))
    with database.write() as session:  # built under the lock, as sequence() does
        assert sequencer.integrate_batch(session, limit=20) == 9
    assert tree(database)[:9] == outside
    assert tree(database) == list(enumerate(ids))
    with database.read() as session:
        stored = session.exec(select(AuditEntry).order_by(col(AuditEntry.leaf_index))).all()
    assert [r.leaf for r in stored[:9]] == leaves
