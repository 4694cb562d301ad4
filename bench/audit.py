"""Audit log benchmark: appends per second, and proof time as the log grows to a million.

Run ``.venv/bin/python -m bench.audit`` (``--quick`` for a smaller run). Every figure is
printed beside a baseline measured in the same run:

* appends: ``log.append`` in its own write transaction (tree head locked, frontier,
  nodes, root updated) against a bare insert of the same entry row in its own
  transaction, on SQLite and, if the local server answers, PostgreSQL;
* proofs: inclusion and consistency proofs read from the store at 10^4, 10^5 and 10^6
  entries on SQLite (10^4 and 10^5 on PostgreSQL) against one SHA-256 of a leaf and one
  primary-key read of a stored hash. The big trees are bulk-inserted (precomputed
  leaves and nodes), as ``log.append`` would have stored them; proof time should grow
  with log n, not with n. A full ``audit verify`` is timed up to 10^5 entries.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import random
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, insert, text
from sqlalchemy.engine import make_url
from sqlmodel import col, select

from gateway import db as dbmod
from gateway.audit import log
from gateway.audit.events import AuditEvent, AuditEventType, canonical_json, leaf_document
from gateway.audit.merkle import frontier_root, leaf_hash, node_hash, perfect_cover
from gateway.audit.verify import verify_log
from gateway.db import Database
from gateway.models.audit import AuditEntry, AuditNode, AuditTreeHead

START = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
PG_URL = os.environ.get("GATEWAY_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


def event(i: int) -> AuditEvent:
    """A typical event: ids, a purpose, two subjects, a party, refs; no details."""
    return AuditEvent(
        type=AuditEventType.TOKEN_ISSUE,
        at=START + timedelta(milliseconds=i),
        actor_principal="politie-noord-nederland.partner-system",
        actor_partner="politie-noord-nederland",
        case_id="case-2026-0042",
        step=3,
        purpose="integrale-aanpak-ondermijning",
        legal_basis="wpg-art-20",
        policy_version="2026.11.1",
        subjects=("subject-1", "subject-2"),
        parties=("gemeente-smallingerland",),
        refs={"record": f"rec-{i}", "decision": "allow"},
    )


def per_second(count: int, seconds: float) -> str:
    return f"{count / seconds:10.0f}/s"


def micro(seconds: float) -> str:
    return f"{seconds * 1e6:9.1f} µs"


@contextmanager
def sqlite_database(folder: Path, name: str) -> Iterator[Database]:
    database = Database(f"sqlite:///{folder / name}")
    dbmod.upgrade(database)
    try:
        yield database
    finally:
        database.dispose()


@contextmanager
def postgres_database() -> Iterator[Database | None]:
    """Yield a fresh, migrated PostgreSQL database, or None when no server answers."""
    admin = create_engine(PG_URL, isolation_level="AUTOCOMMIT")
    name = f"gw_bench_{uuid.uuid4().hex[:8]}"
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    except Exception:  # no server: the PostgreSQL figures are skipped, said so in the output
        admin.dispose()
        yield None
        return
    database = Database(make_url(PG_URL).set(database=name).render_as_string(hide_password=False))
    try:
        dbmod.upgrade(database)
        yield database
    finally:
        database.dispose()
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
        admin.dispose()


def bench_appends(database: Database, count: int) -> tuple[float, float]:
    """Return seconds for ``count`` bare row inserts and for ``count`` log appends."""
    rows = []
    for i in range(count):
        leaf = canonical_json(leaf_document(event(i), 10_000_000 + i, None))
        rows.append((i, leaf))
    started = time.perf_counter()
    for i, leaf in rows:
        with database.write() as session:
            session.add(
                AuditEntry(
                    leaf_index=10_000_000 + i,  # far from the log's own indexes
                    event_type=str(AuditEventType.TOKEN_ISSUE),
                    occurred_at=START,
                    actor_partner_id="politie-noord-nederland",
                    actor_principal_id="politie-noord-nederland.partner-system",
                    case_id="case-2026-0042",
                    leaf=leaf.decode(),
                    leaf_hash=leaf_hash(leaf),
                )
            )
    bare = time.perf_counter() - started
    with database.write() as session:
        session.execute(text("DELETE FROM audit_entries WHERE leaf_index >= 10000000"))
    started = time.perf_counter()
    for i in range(count):
        with database.write() as session:
            log.append(session, event(i))
    appended = time.perf_counter() - started
    return bare, appended


class BulkTree:
    """Grows a stored tree by bulk inserts of precomputed leaves and completed nodes."""

    def __init__(self, database: Database) -> None:
        self.database = database
        self.levels: list[bytearray] = [bytearray()]  # every stored hash, per level
        # Without subjects and parties, so the bulk rows need no link rows to verify.
        plain = replace(event(0), subjects=(), parties=())
        template = canonical_json(leaf_document(plain, 0, None)).decode()
        self.prefix, self.suffix = template.split('"index":0,')
        doc = json.loads(template)
        self.columns = {
            "event_type": doc["type"],
            "actor_partner_id": doc["actor"]["partner"],
            "actor_principal_id": doc["actor"]["principal"],
            "case_id": doc["case"],
        }

    @property
    def size(self) -> int:
        return len(self.levels[0]) // 32

    def grow_to(self, target: int, batch: int = 20_000) -> None:
        with self.database.write() as session:
            while self.size < target:
                start = self.size
                end = min(target, start + batch)
                entries = []
                nodes: list[dict[str, Any]] = []
                for i in range(start, end):
                    leaf = f'{self.prefix}"index":{i},{self.suffix}'
                    digest = leaf_hash(leaf.encode())
                    self._add(0, digest, nodes)
                    entries.append(
                        {
                            "leaf_index": i,
                            "occurred_at": START,
                            "leaf": leaf,
                            "leaf_hash": digest,
                            **self.columns,
                        }
                    )
                session.execute(insert(AuditEntry), entries)
                if nodes:
                    session.execute(insert(AuditNode), nodes)
            frontier = [self._hash(lv, i) for lv, i in perfect_cover(0, self.size)]
            head = session.get(AuditTreeHead, log.HEAD_ID)
            assert head is not None
            head.size = self.size
            head.root = frontier_root(frontier)
            head.frontier = json.dumps([h.hex() for h in frontier])
            session.add(head)

    def _hash(self, level: int, index: int) -> bytes:
        return bytes(self.levels[level][index * 32 : (index + 1) * 32])

    def _add(self, level: int, digest: bytes, nodes: list[dict[str, Any]]) -> None:
        if len(self.levels) == level:
            self.levels.append(bytearray())
        row = self.levels[level]
        row += digest
        index = len(row) // 32 - 1
        if level:
            nodes.append({"level": level, "node_index": index, "hash": digest})
        if index % 2 == 1:
            self._add(level + 1, node_hash(self._hash(level, index - 1), digest), nodes)


def timed(fn: Callable[[], object], repeat: int) -> float:
    started = time.perf_counter()
    for _ in range(repeat):
        fn()
    return (time.perf_counter() - started) / repeat


def bench_proofs(database: Database, sizes: list[int], samples: int, verify_up_to: int) -> None:
    tree = BulkTree(database)
    rng = random.Random(6962)
    leaf = canonical_json(leaf_document(event(1), 1, None))
    print()
    print(
        f"{'entries':>9} {'log2 n':>6} {'bulk build':>11} | {'inclusion':>12} {'hashes':>6} "
        f"{'x sha256':>9} {'x pk read':>9} | {'consistency':>12} {'x pk read':>9}"
    )
    rows: list[tuple[int, float, float, float]] = []  # size, hashes, inclusion, pk read
    for size in sizes:
        started = time.perf_counter()
        tree.grow_to(size)
        build = time.perf_counter() - started
        sha = timed(lambda: hashlib.sha256(b"\x00" + leaf).digest(), 20_000)
        with database.read() as session:
            keys = [rng.randrange(size) for _ in range(samples)]
            started = time.perf_counter()
            for k in keys:
                session.exec(
                    select(AuditEntry.leaf_hash).where(col(AuditEntry.leaf_index) == k)
                ).one()
            pk_read = (time.perf_counter() - started) / samples
            pairs = [(rng.randrange(size), size) for _ in range(samples)]
            started = time.perf_counter()
            lengths = [len(log.inclusion_proof(session, i, s).hashes) for i, s in pairs]
            inclusion = (time.perf_counter() - started) / samples
            firsts = [rng.randrange(1, size) for _ in range(samples)]
            started = time.perf_counter()
            for m in firsts:
                log.consistency_proof(session, m, size)
            consistency = (time.perf_counter() - started) / samples
        ratio = inclusion / pk_read
        rows.append((size, statistics.mean(lengths), inclusion, pk_read))
        print(
            f"{size:>9} {math.log2(size):6.1f} {build:10.1f}s | {micro(inclusion)} "
            f"{statistics.mean(lengths):6.1f} {inclusion / sha:8.0f}x {ratio:8.1f}x | "
            f"{micro(consistency)} {consistency / pk_read:8.1f}x"
        )
        if size <= verify_up_to:
            started = time.perf_counter()
            report = verify_log(database, [], "bench.localhost/audit", START)
            seconds = time.perf_counter() - started
            assert report.ok, report.problem
            print(
                f"{'':>9} full `audit verify` of {size} entries: {seconds:.1f}s "
                f"({micro(seconds / size)} per entry)"
            )
    print(
        f"(sha256 of one leaf: {micro(sha)}; one primary-key read: {micro(pk_read)} "
        f"at {sizes[-1]} entries)"
    )
    (n0, h0, t0, r0), (n1, h1, t1, r1) = rows[0], rows[-1]
    print(
        f"from {n0} to {n1} entries (x{n1 // n0}): log2 n x{math.log2(n1) / math.log2(n0):.2f}, "
        f"proof hashes x{h1 / h0:.2f}, inclusion time x{t1 / t0:.2f}, "
        f"one primary-key read x{r1 / r0:.2f}"
    )


def main() -> None:
    """Run the benchmark and print its figures."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="smaller run (to 10^5 entries)")
    parser.add_argument("--no-postgres", action="store_true", help="skip PostgreSQL")
    args = parser.parse_args()
    appends = 500 if args.quick else 2000
    sizes = [10_000, 100_000] if args.quick else [10_000, 100_000, 1_000_000]
    samples = 200 if args.quick else 500

    print(f"audit log appends, {appends} each, one write transaction per append")
    print(f"{'backend':>10} {'bare insert':>13} {'log.append':>13} {'append/bare':>12}")
    with tempfile.TemporaryDirectory() as tmp:
        with sqlite_database(Path(tmp), "appends.db") as database:
            bare, appended = bench_appends(database, appends)
        print(
            f"{'sqlite':>10} {per_second(appends, bare):>13} {per_second(appends, appended):>13} "
            f"{appended / bare:11.2f}x"
        )
        if not args.no_postgres:
            with postgres_database() as pg:
                if pg is None:
                    print(f"{'postgresql':>10}  skipped: no server at {make_url(PG_URL).host}")
                else:
                    bare, appended = bench_appends(pg, appends)
                    print(
                        f"{'postgresql':>10} {per_second(appends, bare):>13} "
                        f"{per_second(appends, appended):>13} {appended / bare:11.2f}x"
                    )
        print("\nproofs from the store (SQLite), mean of random indexes against the whole tree")
        with sqlite_database(Path(tmp), "proofs.db") as database:
            bench_proofs(database, sizes, samples, verify_up_to=100_000)
    if not args.no_postgres:
        with postgres_database() as pg:
            if pg is not None:
                print("\nproofs from the store (PostgreSQL, same measurements, to 10^5)")
                bench_proofs(pg, sizes[:2], samples, verify_up_to=0)


if __name__ == "__main__":
    main()
