"""Concurrent write transactions of one process all commit, and take turns without polling."""

from __future__ import annotations

import multiprocessing
import shutil
import sqlite3
import threading
import time
from multiprocessing.synchronize import Barrier
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, event, func, select
from sqlalchemy.pool import NullPool
from sqlmodel import col

import gateway.db
from gateway.audit import log as audit_log
from gateway.audit.events import AuditEvent, AuditEventType
from gateway.audit.sequencer import integrate_pending
from gateway.db import Database, NestedWriteError, TurnLock, upgrade
from gateway.models.audit import AuditEntry, AuditPending
from tests.conftest import START

THREADS = 32
WRITES = 10


def _no_busy_waiting(database: Database) -> None:
    """Make SQLite fail at once, instead of waiting, when a writer finds the file locked."""

    @event.listens_for(database.engine, "connect")
    def _fail_fast(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.execute("PRAGMA busy_timeout=0")

    database.engine.dispose()


def _append_entries(database: Database, actor: str) -> None:
    """Append ``WRITES`` entries, each in a write transaction of its own."""
    for k in range(WRITES):
        with database.write() as session:
            audit_log.append(
                session,
                AuditEvent(
                    type=AuditEventType.PARTNER_ADD,
                    at=START,
                    actor_principal=actor,
                    actor_partner=None,
                    refs={"write": k},
                ),
            )


def _integrated_count(database: Database) -> int:
    """Integrate what is pending; return how many entries the log holds."""
    integrate_pending(database)
    with database.read() as session:
        return int(session.execute(select(func.count(col(AuditEntry.leaf_index)))).scalar_one())


def test_concurrent_writers_of_one_process_all_commit_without_lock_waits(
    database: Database,
) -> None:
    if database.is_sqlite:
        _no_busy_waiting(database)  # a writer meeting another would raise "database is locked"
    errors: list[BaseException] = []
    start = threading.Barrier(THREADS)

    def writer(n: int) -> None:
        try:
            start.wait()
            _append_entries(database, f"p-{n}")
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert errors == []
    assert _integrated_count(database) == THREADS * WRITES


def _process_writer(url: str, n: int, start: Barrier) -> None:
    """Append ``WRITES`` entries from a process of its own, failing on any lock wait."""
    database = Database(url)
    _no_busy_waiting(database)
    start.wait(60)
    _append_entries(database, f"process-{n}")
    database.dispose()


def test_sqlite_writers_of_several_processes_all_commit_without_lock_waits(
    tmp_path: Path, sqlite_template: Path
) -> None:
    path = tmp_path / "gateway.db"
    shutil.copyfile(sqlite_template, path)
    url = f"sqlite:///{path}"
    spawn = multiprocessing.get_context("spawn")
    start = spawn.Barrier(4)
    processes = [spawn.Process(target=_process_writer, args=(url, n, start)) for n in range(4)]
    for process in processes:
        process.start()
    for process in processes:
        process.join(120)
    assert [p.exitcode for p in processes] == [0, 0, 0, 0]  # no "database is locked"
    database = Database(url)
    try:
        assert _integrated_count(database) == 4 * WRITES
    finally:
        database.dispose()


def test_a_nested_write_on_sqlite_fails_at_once_instead_of_waiting_for_itself(
    tmp_path: Path,
) -> None:
    database = Database(f"sqlite:///{tmp_path / 'nested.db'}")
    try:
        with database.write(), pytest.raises(NestedWriteError), database.write():
            pass
        with database.write():  # the lock was given back
            pass
    finally:
        database.dispose()


def test_a_multi_row_insert_returns_each_rows_id_in_the_rows_order(database: Database) -> None:
    events = [
        AuditEvent(
            type=AuditEventType.PARTNER_ADD,
            at=START,
            actor_principal=f"order-{n}",
            actor_partner=None,
        )
        for n in (3, 1, 4, 1, 5, 9, 2, 6)
    ]
    with database.write() as session:
        ids = audit_log.append_many(session, events)
        stored = dict(
            session.execute(
                select(col(AuditPending.entry_id), col(AuditPending.actor_principal_id))
            ).all()
        )
    assert [stored[i] for i in ids] == [e.actor_principal for e in events]


def test_a_lookup_sees_every_commit_made_between_its_statements(database: Database) -> None:
    # A look-up holds no transaction between statements (a read session would keep its
    # first snapshot on SQLite): a token revoked a moment ago is refused at the next one.
    count = select(func.count(col(AuditEntry.leaf_index)))
    with database.lookup() as conn:
        before = int(conn.execute(count).scalar_one())
        _append_entries(database, "lookup-test")
        integrate_pending(database)
        after = int(conn.execute(count).scalar_one())
    assert after == before + WRITES


def test_a_read_session_on_sqlite_reads_one_snapshot(tmp_path: Path) -> None:
    # Its statements see the state of its first one, so what a session reads in several
    # statements cannot straddle a commit (PostgreSQL's default reads commit by commit).
    database = Database(f"sqlite:///{tmp_path / 'snapshot.db'}")
    upgrade(database)
    count = select(func.count(col(AuditEntry.leaf_index)))
    try:
        with database.read() as session:
            before = int(session.connection().execute(count).scalar_one())
            _append_entries(database, "snapshot-test")
            during = int(session.connection().execute(count).scalar_one())
        integrate_pending(database)
        with database.read() as session:
            after = int(session.connection().execute(count).scalar_one())
    finally:
        database.dispose()
    assert (during, after) == (before, before + WRITES)


def test_a_write_session_on_sqlite_holds_the_write_lock_from_its_start(tmp_path: Path) -> None:
    # BEGIN IMMEDIATE: a write that so far only read already keeps other writers out,
    # so it can never fail half-way on a lock another writer took after it began.
    path = tmp_path / "immediate.db"
    database = Database(f"sqlite:///{path}")
    upgrade(database)
    other = sqlite3.connect(path, timeout=0, isolation_level=None)
    try:
        with database.write() as session:
            session.connection().execute(select(func.count(col(AuditPending.entry_id))))
            with pytest.raises(sqlite3.OperationalError, match="locked"):
                other.execute("BEGIN IMMEDIATE")
        other.execute("BEGIN IMMEDIATE")  # free once the write committed
        other.execute("ROLLBACK")
    finally:
        other.close()
        database.dispose()


def test_writers_of_one_process_get_the_write_lock_in_the_order_they_asked() -> None:
    # threading.Lock lets a late thread overtake: under load one writer could wait behind
    # dozens that came after it. Each writer here queues only once the one before it has.
    lock = TurnLock()
    order: list[int] = []

    def writer(n: int) -> None:
        with lock:
            order.append(n)

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(12)]
    with lock:
        for n, thread in enumerate(threads):
            thread.start()
            deadline = time.monotonic() + 10
            while lock.waiting() < n + 1 and time.monotonic() < deadline:
                time.sleep(0.001)
    for thread in threads:
        thread.join(10)
    assert order == list(range(12))
    with lock:  # free again
        pass


def _backend_pid(database: Database) -> int:
    with database.lookup() as conn:
        return int(conn.execute(select(func.pg_backend_pid())).scalar_one())


@pytest.mark.parametrize("backend", ["postgresql"], indirect=True)
def test_a_pooled_postgresql_connection_is_pinged_only_after_sitting_idle(
    database: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    # pool_pre_ping cost a round trip per request and session. A connection the server
    # dropped while it sat idle in the pool is still replaced before anyone uses it.
    pings: list[object] = []
    dialect = database.engine.dialect
    real_ping = dialect.do_ping

    def counted_ping(conn: Any) -> bool:
        pings.append(conn)
        return real_ping(conn)

    monkeypatch.setattr(dialect, "do_ping", counted_ping)
    database.engine.dispose()
    first = _backend_pid(database)
    for _ in range(5):  # handed out again at once: no pings, the same server process
        assert _backend_pid(database) == first
    assert pings == []
    admin = create_engine(database.engine.url, poolclass=NullPool)
    with admin.connect() as conn:  # the server drops the idle pooled connection
        assert conn.execute(select(func.pg_terminate_backend(first))).scalar_one()
    admin.dispose()
    monkeypatch.setattr(gateway.db, "PING_AFTER_IDLE_SECONDS", 0.0)
    replaced = _backend_pid(database)  # pinged, found dead and replaced: no error
    assert replaced != first
    assert len(pings) >= 1
