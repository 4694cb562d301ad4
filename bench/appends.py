"""Audit appends from 1 and 8 writer processes against bare single-row inserts, same run.

Run ``.venv/bin/python -m bench.appends`` (``--quick`` for fewer transactions). Each
writer commits one transaction per event: either ``log.append`` (a pending entry; the
commit only wakes the integrator, which here is one background ``Integrator`` in the
parent process, as in a server with ``GATEWAY_AUDIT_INTEGRATION=background``), or a
bare insert of an equally large row into a plain table. Prints transactions/s, the
ratio to bare inserts, how long after the last commit the integrator had placed every
entry in the tree, and CPU time (less sensitive than throughput to other work on the
machine): each writer's per transaction, and the integrator's (the parent process's
while the writers append) per entry. SQLite and, if the local server answers,
PostgreSQL (``--backends`` to pick).
"""

from __future__ import annotations

import argparse
import multiprocessing
import statistics
import tempfile
import time
from multiprocessing.queues import Queue
from multiprocessing.synchronize import Barrier
from pathlib import Path
from typing import Any

from sqlalchemy import text

from bench.audit import event, postgres_database, sqlite_database
from gateway.audit import log, sequencer
from gateway.audit.events import canonical_json, leaf_document
from gateway.audit.merkle import leaf_hash
from gateway.audit.verify import verify_log
from gateway.db import Database

_BARE = text(
    "INSERT INTO bench_bare (n, event_type, occurred_at, actor, case_id, leaf, leaf_hash) "
    "VALUES (:n, :event_type, :at, :actor, :case, :leaf, :hash)"
)


def writer(
    url: str, kind: str, worker: int, count: int, barrier: Barrier, results: Queue[Any]
) -> None:
    database = Database(url)
    if kind == "append":
        sequencer.Integrator(database).attach()  # commits wake; the parent integrates
    leaf = canonical_json(leaf_document(event(0), 0, None))
    row = {
        "event_type": "admin:token:issue",
        "at": event(0).at,
        "actor": "politie-noord-nederland",
        "case": "case-2026-0042",
        "leaf": leaf.decode(),
        "hash": leaf_hash(leaf),
    }
    barrier.wait(60)
    started, cpu = time.perf_counter(), time.process_time()
    for i in range(count):
        with database.write() as session:
            if kind == "append":
                log.append(session, event(worker * count + i))
            else:
                session.execute(_BARE, {**row, "n": worker * count + i})
    results.put((time.perf_counter() - started, time.process_time() - cpu))
    database.dispose()


def run(url: str, kind: str, writers: int, count: int) -> tuple[float, float]:
    """Return transactions per second of ``writers`` processes committing ``count`` each,
    and their CPU seconds per transaction."""
    ctx = multiprocessing.get_context("spawn")
    barrier = ctx.Barrier(writers)
    results: Any = ctx.Queue()
    processes = [
        ctx.Process(target=writer, args=(url, kind, w, count, barrier, results))
        for w in range(writers)
    ]
    for p in processes:
        p.start()
    times = [results.get(timeout=600) for _ in processes]
    for p in processes:
        p.join(60)
    total = writers * count
    return total / max(t for t, _ in times), sum(c for _, c in times) / total


def bench(label: str, database: Database, args: argparse.Namespace) -> None:
    with database.write() as session:
        session.execute(
            text(
                "CREATE TABLE bench_bare (n BIGINT PRIMARY KEY, event_type VARCHAR(64), "
                "occurred_at TIMESTAMP, actor VARCHAR(64), case_id VARCHAR(64), leaf TEXT, "
                "leaf_hash BYTEA)".replace("BYTEA", "BLOB" if database.is_sqlite else "BYTEA")
            )
        )
    integrator = sequencer.Integrator(database, poll=0.02)
    integrator.start()
    try:
        for writers in args.writers:
            bare: list[float] = []
            appended: list[float] = []
            lag: list[float] = []
            cpu: dict[str, list[float]] = {"bare": [], "append": [], "integrate": []}
            for _ in range(args.runs):
                with database.write() as session:
                    session.execute(text("DELETE FROM bench_bare"))
                rate, per_tx = run(database.url, "bare", writers, args.count)
                bare.append(rate)
                cpu["bare"].append(per_tx * 1e6)
                before = time.process_time()  # the parent only integrates meanwhile
                rate, per_tx = run(database.url, "append", writers, args.count)
                appended.append(rate)
                cpu["append"].append(per_tx * 1e6)
                done = time.perf_counter()
                while True:
                    with database.read() as session:
                        if not sequencer.has_pending(session):
                            break
                    time.sleep(0.005)
                lag.append((time.perf_counter() - done) * 1000)
                spent = time.process_time() - before
                cpu["integrate"].append(spent / (writers * args.count) * 1e6)
            ratios = [a / b for a, b in zip(appended, bare, strict=True)]
            print(
                f"{label:<10} writers={writers}  append {spread(appended):>24} tx/s"
                f"  bare {spread(bare):>24} tx/s  ratio {spread(ratios, 2):>16}"
                f"  integrated {spread(lag):>20} ms after the last commit",
                flush=True,
            )
            print(
                f"{label:<10} writers={writers}  CPU µs: per append {spread(cpu['append'])}"
                f"  per bare insert {spread(cpu['bare'])}"
                f"  integrator per entry {spread(cpu['integrate'])}",
                flush=True,
            )
    finally:
        integrator.stop()
    with database.read() as session:
        size = log.read_head(session).size
    report = verify_log(database, [], "bench", event(0).at)
    print(f"{label:<10} log of {size} entries verifies: {report.ok}")


def spread(values: list[float], digits: int = 0) -> str:
    if len(values) == 1:
        return f"{values[0]:.{digits}f}"
    middle = statistics.median(values)
    return f"{min(values):.{digits}f}/{middle:.{digits}f}/{max(values):.{digits}f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="200 transactions per writer, 1 run")
    parser.add_argument("--count", type=int, default=1000, help="transactions per writer")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--writers", type=int, nargs="+", default=[1, 8])
    parser.add_argument(
        "--backends", nargs="+", choices=["sqlite", "postgresql"], default=["sqlite", "postgresql"]
    )
    args = parser.parse_args()
    if args.quick:
        args.count, args.runs = 200, 1
    print("figures: min/median/max over runs")
    if "sqlite" in args.backends:
        with tempfile.TemporaryDirectory() as tmp, sqlite_database(Path(tmp), "appends.db") as db:
            bench("sqlite", db, args)
    if "postgresql" not in args.backends:
        return
    with postgres_database() as pg:
        if pg is None:
            print("postgresql: no server answered; skipped")
        else:
            bench("postgresql", pg, args)


if __name__ == "__main__":
    main()
