"""Sequencing: appends only insert pending entries; one integrator at a time gives indexes."""

from __future__ import annotations

import threading
import time

import pytest
from sqlalchemy import text
from sqlmodel import col, select

from gateway.audit import log, sequencer
from gateway.audit.merkle import leaf_hash, root_from_leaf_hashes
from gateway.audit.verify import verify_log
from gateway.db import Database
from gateway.models.audit import AuditEntry, AuditPending
from tests.audit.conftest import ORIGIN, sample_event
from tests.conftest import START


def pending_ids(database: Database) -> list[int]:
    with database.read() as session:
        ids = session.exec(select(AuditPending.entry_id).order_by(col(AuditPending.entry_id)))
        return [int(i) for i in ids.all() if i is not None]


def test_an_append_is_pending_until_integrated_then_has_the_next_index(
    database: Database, deferred: sequencer.Integrator
) -> None:
    ids = []
    for i in range(5):
        with database.write() as session:
            ids.append(log.append(session, sample_event(i)))
    assert pending_ids(database) == ids
    with database.read() as session:
        assert log.read_head(session).size == 0
        assert [sequencer.index_of(session, e) for e in ids] == [None] * 5
        assert all(sequencer.is_pending(session, e) for e in ids)

    assert sequencer.integrate_pending(database, limit=2) == 5  # three batches
    assert pending_ids(database) == []
    with database.read() as session:
        assert [sequencer.index_of(session, e) for e in ids] == [0, 1, 2, 3, 4]
        rows = session.exec(select(AuditEntry).order_by(col(AuditEntry.leaf_index))).all()
        head = log.read_head(session)
    leaves = [leaf_hash(r.leaf.encode()) for r in rows]
    assert head.size == 5
    assert head.root == root_from_leaf_hashes(leaves)
    assert verify_log(database, [], ORIGIN, START).ok


def test_a_rolled_back_append_leaves_nothing_pending(
    database: Database, deferred: sequencer.Integrator
) -> None:
    def failing_change() -> None:
        with database.write() as session:
            log.append(session, sample_event(0))
            raise RuntimeError("the change failed")

    with pytest.raises(RuntimeError):
        failing_change()
    assert pending_ids(database) == []
    assert sequencer.integrate_pending(database) == 0


def test_without_an_integrator_the_commit_integrates_at_once(database: Database) -> None:
    with database.write() as session:
        entry = log.append(session, sample_event(0))
    with database.read() as session:
        assert sequencer.index_of(session, entry) == 0
    assert pending_ids(database) == []


@pytest.mark.parametrize("backend", ["postgresql"], indirect=True)
def test_an_append_does_not_wait_for_the_tree_head(database: Database) -> None:
    """The head row is the integrator's; a request holding nothing shared commits at once."""
    holder = database.engine.connect()
    holder.execute(text("SELECT size FROM audit_tree_head WHERE id = 1 FOR UPDATE"))
    done = threading.Event()

    def write() -> None:
        with database.write() as session:
            log.append(session, sample_event(0))
            session.info.pop("gateway_audit_pending")  # integrate below, not here
        done.set()

    thread = threading.Thread(target=write)
    thread.start()
    try:
        assert done.wait(10), "the append waited for the tree-head lock"
    finally:
        holder.rollback()
        holder.close()
        thread.join(10)
    assert sequencer.integrate_pending(database) == 1


@pytest.mark.parametrize("backend", ["postgresql"], indirect=True)
def test_one_integrator_leads_and_another_takes_over(database: Database) -> None:
    replicas = [Database(database.url), Database(database.url)]
    integrators = [sequencer.Integrator(r, poll=0.05) for r in replicas]
    try:
        for integrator in integrators:
            integrator.start()
        deadline = time.monotonic() + 10
        while not any(i.is_leader for i in integrators) and time.monotonic() < deadline:
            time.sleep(0.02)
        leaders = [i for i in integrators if i.is_leader]
        assert len(leaders) == 1
        for n, replica in enumerate(replicas * 5):
            with replica.write() as session:
                log.append(session, sample_event(n))
        leader = leaders[0]
        follower = next(i for i in integrators if i is not leader)
        leader.stop()  # gives up the lock, as a killed process's server session would
        deadline = time.monotonic() + 5
        while not follower.is_leader and time.monotonic() < deadline:
            time.sleep(0.02)
        assert follower.is_leader
        with replicas[1].write() as session:
            log.append(session, sample_event(10))
        deadline = time.monotonic() + 5
        while pending_ids(database) and time.monotonic() < deadline:
            time.sleep(0.02)
        assert pending_ids(database) == []
        with database.read() as session:
            assert log.read_head(session).size == 11
        assert verify_log(database, [], ORIGIN, START).ok
    finally:
        for integrator in integrators:
            integrator.stop()
        for replica in replicas:
            replica.dispose()


def test_append_sequenced_names_the_index_inside_the_transaction(
    database: Database, deferred: sequencer.Integrator
) -> None:
    with database.write() as session:
        first = log.append(session, sample_event(0))  # committed, still pending
    with database.write() as session:
        index = sequencer.append_sequenced(session, sample_event(1))
        assert index == 1  # after the pending entry committed before it
        assert sequencer.index_of(session, first) == 0
    assert pending_ids(database) == []
    with database.read() as session:
        assert log.read_head(session).size == 2
    assert verify_log(database, [], ORIGIN, START).ok


def test_a_head_read_earlier_in_the_transaction_shows_the_size_after_sequencing(
    database: Database, deferred: sequencer.Integrator
) -> None:
    with database.write() as session:
        log.append(session, sample_event(0))  # committed, still pending
    with database.write() as session:
        head = log.lock_head(session)  # held: the session's identity map keeps it
        assert head.size == 0
        index = sequencer.append_sequenced(session, sample_event(1))
        assert index == 1
        assert log.read_head(session).size == 2
        assert head.size == 2


def test_a_background_integrator_places_each_commit_within_the_retry_after(
    database: Database,
) -> None:
    """What ``Retry-After`` tells a client polling for its entry holds, linger and all."""
    integrator = sequencer.Integrator(database)
    integrator.start()
    waits = []
    try:
        for n in range(40):
            with database.write() as session:
                entry = log.append(session, sample_event(n))
            committed = time.monotonic()
            while True:
                with database.read() as session:
                    if sequencer.index_of(session, entry) is not None:
                        break
                time.sleep(0.002)
            waits.append(time.monotonic() - committed)
    finally:
        integrator.stop()
    assert sorted(waits)[len(waits) // 2] * 1000 < sequencer.RETRY_AFTER_MS
    assert integrator.integrated == 40
    assert pending_ids(database) == []
