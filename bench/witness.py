"""Witnessing benchmark: checkpoint + cosignatures from 3 witnesses, beside the append rate.

Run ``.venv/bin/python -m bench.witness`` (``--rounds``, ``--appends``). On SQLite, in one
run, with three real ``gateway witness serve`` processes on localhost ports:

* round trip: the log grows by a batch of entries, then one witnessing round signs a
  checkpoint, sends it with a consistency proof to the three witnesses and stores their
  cosignatures (``Witnessing.run_once``); min/median/max over the rounds, and as a share
  of the one-second interval at which a gateway process witnesses;
* appends: ``log.append`` transactions per second without witnessing, and while the
  witnessing loop runs every second in a thread of the same process, as a ratio.

Witnessing must never throttle appends: the ratio should stay near 1.
"""

from __future__ import annotations

import argparse
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, redirect_stdout
from io import StringIO
from pathlib import Path

import httpx

from bench.audit import event, sqlite_database
from gateway.audit import checkpoints, log
from gateway.audit.note import NoteVerifier
from gateway.audit.witness_client import parse_witness
from gateway.audit.witnessing import Witnessing
from gateway.cli import run
from gateway.clock import SystemClock
from gateway.db import Database
from gateway.keys.signing import Ed25519Signer
from gateway.models.audit import AuditCheckpoint

ORIGIN = "bench.riec-gateway.test/audit"
NAMES = ("witness.politie.test/bench", "witness.om.test/bench", "witness.fiod.test/bench")
GATEWAY = str(Path(sys.executable).with_name("gateway"))


def free_port() -> int:
    """Return a localhost port nothing listens on now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def witnesses(folder: Path, signer: Ed25519Signer) -> Iterator[list[str]]:
    """Start three witnesses of the bench's log; yield their ``GATEWAY_WITNESSES`` items."""
    vkey = NoteVerifier(ORIGIN, signer.public_key).vkey()
    procs: list[subprocess.Popen[bytes]] = []
    settings: list[str] = []
    try:
        for name in NAMES:
            home = folder / name.split("/")[0]
            out = StringIO()
            with redirect_stdout(out):
                code = run(["witness", "init", "--dir", str(home), "--name", name, "--log", vkey])
            if code != 0:
                raise SystemExit(f"witness init failed: {out.getvalue()}")
            port = free_port()
            procs.append(
                subprocess.Popen(
                    [
                        GATEWAY,
                        "witness",
                        "serve",
                        "--dir",
                        str(home),
                        "--bind",
                        f"127.0.0.1:{port}",
                    ],
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
            )
            settings.append(f"http://127.0.0.1:{port} {out.getvalue().strip()}")
        for item in settings:
            url = item.split()[0]
            deadline = time.monotonic() + 30
            while True:
                try:
                    if httpx.get(f"{url}/healthz", timeout=0.5).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                if time.monotonic() > deadline:
                    raise SystemExit(f"witness at {url} did not start")
                time.sleep(0.1)
        yield settings
    finally:
        for proc in procs:
            proc.terminate()
            proc.wait(timeout=10)


def witnessing_for(database: Database, signer: Ed25519Signer, settings: list[str]) -> Witnessing:
    """The log's witnessing over ``settings``, signing with ``signer`` at the current size."""
    clock = SystemClock()

    def sign() -> AuditCheckpoint:
        return checkpoints.create_checkpoint(database, clock, signer, ORIGIN)

    witnessing = Witnessing(
        database,
        clock,
        ORIGIN,
        lambda: checkpoints.log_verifiers(ORIGIN, signer),
        [parse_witness(s) for s in settings],
        timeout=5,
        sign=sign,
    )
    checkpoints.attach_witnesses(database, witnessing)
    return witnessing


def append(database: Database, start: int, count: int) -> float:
    """Append ``count`` events, one transaction each; return the seconds it took."""
    began = time.perf_counter()
    for i in range(start, start + count):
        with database.write() as session:
            log.append(session, event(i))
    return time.perf_counter() - began


def main() -> None:
    """Print the round-trip figures and the append rate with and without witnessing."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=20, help="witnessing rounds timed")
    parser.add_argument("--batch", type=int, default=50, help="entries appended per round")
    parser.add_argument("--appends", type=int, default=2000, help="appends per rate sample")
    args = parser.parse_args()
    signer = Ed25519Signer.generate()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        with witnesses(folder, signer) as settings, sqlite_database(folder, "bench.db") as db:
            witnessing = witnessing_for(db, signer, settings)
            try:
                rounds = []
                next_index = 0
                for _ in range(args.rounds):
                    append(db, next_index, args.batch)
                    next_index += args.batch
                    began = time.perf_counter()
                    witnessing.run_once()
                    rounds.append(time.perf_counter() - began)
                    if witnessing.problem:
                        raise SystemExit(f"witnessing failed: {witnessing.problem}")
                bare = append(db, next_index, args.appends)
                next_index += args.appends
                stop = threading.Event()

                def loop() -> None:
                    while not stop.wait(1.0):
                        witnessing.run_once()

                thread = threading.Thread(target=loop, daemon=True)
                thread.start()
                witnessed = append(db, next_index, args.appends)
                stop.set()
                thread.join(timeout=30)
            finally:
                checkpoints.attach_witnesses(db, None)
                witnessing.stop()
    ms = sorted(r * 1000 for r in rounds)
    print(
        f"witnessing round (sign + 3 cosignatures + store), {args.rounds} rounds of "
        f"{args.batch} new entries each:"
    )
    print(
        f"  min {ms[0]:.1f} ms, median {statistics.median(ms):.1f} ms, max {ms[-1]:.1f} ms "
        f"= {statistics.median(ms) / 10:.1f}% of the 1 s witnessing interval"
    )
    print(f"appends without witnessing: {args.appends / bare:,.0f}/s")
    print(
        f"appends while witnessing every second: {args.appends / witnessed:,.0f}/s "
        f"= {bare / witnessed:.2f} of the rate without"
    )


if __name__ == "__main__":
    main()
