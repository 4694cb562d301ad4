"""Inline integration under concurrent writers: batches are shared, nothing is left behind.

In ``inline`` mode a writer integrates right after its commit; when another thread of
the process is already integrating, it leaves its entries to that thread. Whatever the
interleaving, once every writer has returned, every entry has its index, without gaps.
"""

from __future__ import annotations

import threading

from sqlmodel import col, select

from gateway.audit import log
from gateway.audit.merkle import leaf_hash, root_from_leaf_hashes
from gateway.db import Database
from gateway.models.audit import AuditEntry, AuditPending
from tests.audit.conftest import sample_event

WRITERS = 6
EACH = 8


def test_concurrent_inline_writers_leave_nothing_pending_once_they_return(
    database: Database,
) -> None:
    failures: list[BaseException] = []

    def write(writer: int) -> None:
        try:
            for i in range(EACH):
                with database.write() as session:
                    log.append(session, sample_event(writer * 100 + i))
        except BaseException as exc:  # reported below, not swallowed
            failures.append(exc)

    threads = [threading.Thread(target=write, args=(w,)) for w in range(WRITERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert failures == []
    with database.read() as session:
        assert session.exec(select(AuditPending.entry_id)).all() == []
        rows = session.exec(select(AuditEntry).order_by(col(AuditEntry.leaf_index))).all()
        head = log.read_head(session)
    assert [r.leaf_index for r in rows] == list(range(WRITERS * EACH))
    assert head.size == WRITERS * EACH
    assert head.root == root_from_leaf_hashes([leaf_hash(r.leaf.encode()) for r in rows])
