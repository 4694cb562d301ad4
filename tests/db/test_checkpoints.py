"""SQLite's log is copied into the database by a thread of its own, never inside a commit."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

import pytest
from sqlalchemy import text

from gateway import wal
from gateway.db import Database


def _writes(database: Database, n: int) -> None:
    for i in range(n):
        with database.write() as session:
            session.connection().execute(
                text("INSERT INTO t (body) VALUES (:body)"), {"body": f"{i:04d}" * 800}
            )


def _wal_pages(path: Path) -> float:
    return Path(f"{path}-wal").stat().st_size / (4096 + 24)


def test_commits_leave_checkpoints_to_the_checkpointer_and_the_log_stays_small(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(wal, "CHECKPOINT_PAGES", 40)
    monkeypatch.setattr(wal, "BACKSTOP_PAGES", 160)
    monkeypatch.setattr(wal, "SIZE_LIMIT_BYTES", 0)
    monkeypatch.setattr(wal, "MIN_INTERVAL_SECONDS", 0)
    path = tmp_path / "g.db"
    database = Database(f"sqlite:///{path}")
    with database.engine.begin() as conn:
        conn.execute(text("CREATE TABLE t (id INTEGER PRIMARY KEY, body TEXT NOT NULL)"))
    with database.lookup() as conn:  # a commit does not checkpoint before the backstop
        autocheckpoint = conn.execute(text("PRAGMA wal_autocheckpoint")).scalar_one()
    assert autocheckpoint == wal.BACKSTOP_PAGES == 160
    try:
        for _ in range(10):  # 10 x 30 transactions of one page each: 300 pages in all
            _writes(database, 30)
            time.sleep(0.05)  # the checkpointer's turn; writers never wait for it
        deadline = time.monotonic() + 5
        while database.checkpoints() < 3 and time.monotonic() < deadline:
            time.sleep(0.01)
        # the checkpointer runs about once per 40 pages (a commit writes one or two), not
        # once per commit; while one has not caught up, the next commits wake it again, so
        # how many run depends on thread scheduling (62 once in the suite beside the other
        # worker)
        assert 3 <= database.checkpoints() <= 300 / 2
        # the log restarts after a checkpoint that caught up: it never held all the pages
        # (how far under depends on when the checkpointer's thread is scheduled: 18-177
        # pages in five runs beside a benchmark, 228 once in the suite beside a benchmark)
        assert _wal_pages(path) < 300
    finally:
        database.dispose()
    with sqlite3.connect(path) as conn:  # and every row made it into the database
        assert conn.execute("SELECT count(*) FROM t").fetchone() == (300,)


def test_an_in_memory_database_has_no_checkpointer() -> None:
    database = Database("sqlite://")
    assert database.checkpoints() == 0
    database.dispose()
