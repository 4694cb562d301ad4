"""Appends from several OS processes at once: no gap, no fork, unique indexes, honest root."""

from __future__ import annotations

import multiprocessing
import queue
from typing import Any

from sqlmodel import Session, col, select

from gateway.audit import log, sequencer
from gateway.audit.merkle import leaf_hash, root_from_leaf_hashes
from gateway.audit.verify import verify_log
from gateway.db import Database
from gateway.models.audit import AuditEntry
from tests.audit.conftest import ORIGIN
from tests.audit.workers import append_many
from tests.conftest import START

WORKERS = 4
PER_WORKER = 30


def index_in_tree(session: Session, entry_id: int) -> int:
    index = sequencer.index_of(session, entry_id)
    assert index is not None, f"entry {entry_id} was never integrated"
    return index


def test_concurrent_appends_from_processes_never_gap_or_fork(database: Database) -> None:
    ctx = multiprocessing.get_context("spawn")
    barrier = ctx.Barrier(WORKERS)
    results: Any = ctx.Queue()
    processes = [
        ctx.Process(target=append_many, args=(database.url, w, PER_WORKER, barrier, results))
        for w in range(WORKERS)
    ]
    for p in processes:
        p.start()
    got: dict[int, Any] = {}
    try:
        for _ in processes:
            worker, outcome = results.get(timeout=240)
            got[worker] = outcome
    except queue.Empty:
        pass
    for p in processes:
        p.join(timeout=30)
        if p.is_alive():
            p.kill()
    assert sorted(got) == list(range(WORKERS)), f"workers did not all finish: {got}"
    failures = {w: o for w, o in got.items() if isinstance(o, str)}
    assert not failures, failures

    total = WORKERS * PER_WORKER
    sequencer.catch_up(database)
    with database.read() as session:  # append returns entry ids; the integrator gave indexes
        placed = {w: [index_in_tree(session, e) for e in ids] for w, ids in got.items()}
    indexes = sorted(i for outcome in placed.values() for i in outcome)
    assert indexes == list(range(total))  # every entry placed, unique, and no gap
    for outcome in placed.values():
        assert outcome == sorted(outcome)  # each writer's appends in its own order

    with database.read() as session:
        rows = session.exec(select(AuditEntry).order_by(col(AuditEntry.leaf_index))).all()
        leaves = [leaf_hash(r.leaf.encode()) for r in rows]
        head = log.read_head(session)
        assert [r.leaf_index for r in rows] == list(range(total))
        assert [r.leaf_hash for r in rows] == leaves
        assert head.size == total
        assert head.root == root_from_leaf_hashes(leaves)  # no fork: one tree over all
    report = verify_log(database, [], ORIGIN, START)
    assert report.ok, report.problem
