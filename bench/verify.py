"""Full ``audit verify`` against a bare Python recompute of the tree, same stored leaves.

Run ``.venv/bin/python -m bench.verify`` (``--size 1000000`` for the issue's target).
The log is bulk-inserted (``bench.audit.BulkTree``) on SQLite and, if the local server
answers, PostgreSQL. The baseline reads every stored leaf in key order from the same
database through a streaming cursor, hashes it (RFC 9162 leaf hash, ``hashlib``) and
folds the hashes into the root; verify does that and checks every row, link, detail,
stored node, the head and the checkpoints. Prints seconds (min/median/max of runs) and
the ratio (target: at most 5).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from hashlib import sha256
from pathlib import Path

from sqlalchemy import text

from bench.audit import START, BulkTree, postgres_database, sqlite_database
from gateway.audit.verify import verify_log
from gateway.db import Database


def bare_root(database: Database) -> bytes:
    """Stream the stored leaves in key order and recompute the RFC 9162 root."""
    stack: list[tuple[int, bytes]] = []  # (height, hash) of perfect subtrees, left to right
    with database.engine.connect() as conn:
        rows = conn.execution_options(stream_results=True, yield_per=20_000).execute(
            text("SELECT leaf FROM audit_entries ORDER BY leaf_index")
        )
        for (leaf,) in rows:
            node = sha256(b"\x00" + leaf.encode()).digest()
            height = 0
            while stack and stack[-1][0] == height:
                node = sha256(b"\x01" + stack.pop()[1] + node).digest()
                height += 1
            stack.append((height, node))
    if not stack:
        return sha256(b"").digest()
    root = stack.pop()[1]
    while stack:
        root = sha256(b"\x01" + stack.pop()[1] + root).digest()
    return root


def spread(values: list[float]) -> str:
    return f"{min(values):.2f}/{statistics.median(values):.2f}/{max(values):.2f}"


def bench(label: str, database: Database, size: int, runs: int) -> None:
    BulkTree(database).grow_to(size)
    verify_times: list[float] = []
    bare_times: list[float] = []
    for _ in range(runs):
        started = time.perf_counter()
        root = bare_root(database)
        bare_times.append(time.perf_counter() - started)
        started = time.perf_counter()
        report = verify_log(database, [], "bench", START)
        verify_times.append(time.perf_counter() - started)
        assert report.ok and report.root == root, report.problem
    ratios = [v / b for v, b in zip(verify_times, bare_times, strict=True)]
    print(
        f"{label:<10} {size:>9} entries  verify {spread(verify_times)} s"
        f" ({min(verify_times) / size * 1e6:.1f} µs/entry)  bare recompute"
        f" {spread(bare_times)} s  ratio {spread(ratios)}",
        flush=True,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    print("figures: min/median/max over runs")
    with tempfile.TemporaryDirectory() as tmp, sqlite_database(Path(tmp), "verify.db") as db:
        bench("sqlite", db, args.size, args.runs)
    with postgres_database() as pg:
        if pg is None:
            print("postgresql: no server answered; skipped")
        else:
            bench("postgresql", pg, args.size, args.runs)


if __name__ == "__main__":
    main()
