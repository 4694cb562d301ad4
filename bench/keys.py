"""Key ring throughput: seal/open per field, blind indexes, and pseudonyms against bare HMAC.

Run ``.venv/bin/python -m bench.keys [--rows N]``. It builds a throwaway ring in a
temporary folder (development master key), then prints operations per second, each the
best of five runs, and the pseudonymiser's cost as a ratio to a bare
``hmac.new(key, value, sha256).hexdigest()`` loop over the same values, measured in the
same run.
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from gateway.clock import SystemClock
from gateway.config import Settings
from gateway.db import Database, upgrade
from gateway.identity.service import CLI_ACTOR
from gateway.keys import KeyRing


def best(loop: Callable[[], object], runs: int = 5) -> float:
    """Return the fastest of ``runs`` timings of ``loop`` in seconds."""
    fastest = float("inf")
    for _ in range(runs):
        start = time.perf_counter()
        loop()
        fastest = min(fastest, time.perf_counter() - start)
    return fastest


def main() -> None:
    """Build a scratch ring, time the operations, print rates and the pseudonym ratio."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=200_000, help="values per timed loop")
    rows = parser.parse_args().rows
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        database = Database(f"sqlite:///{root / 'bench.db'}")
        upgrade(database)
        settings = Settings(mode="development", data_dir=root, keys_dir=root / "keys")
        with database.write() as session:
            ring = KeyRing.create(settings, session, clock=SystemClock(), actor=CLI_ACTOR)
        database.dispose()
        ring.create_case_key("bench-case")

        bsns = [str(100_000_000 + 7 * i) for i in range(rows)]
        short = [b.encode() for b in bsns]
        long_value = b"x" * 1024
        records = [f"rec-{i}" for i in range(rows)]
        sealed = [
            ring.seal_field("bench-case", r, "bsn", v) for r, v in zip(records, short, strict=True)
        ]
        sealed_long = [ring.seal_field("bench-case", r, "note", long_value) for r in records]

        def seal_short() -> None:
            for r, v in zip(records, short, strict=True):
                ring.seal_field("bench-case", r, "bsn", v)

        def open_short() -> None:
            for r, blob in zip(records, sealed, strict=True):
                ring.open_field("bench-case", r, "bsn", blob)

        def seal_long() -> None:
            for r in records:
                ring.seal_field("bench-case", r, "note", long_value)

        def open_long() -> None:
            for r, blob in zip(records, sealed_long, strict=True):
                ring.open_field("bench-case", r, "note", blob)

        def index() -> None:
            for v in bsns:
                ring.blind_index("bsn", v)

        pseudonymiser = ring.pseudonymiser("bench-project")
        key = hashlib.sha256(b"bench").digest()

        def bare_hmac() -> None:
            for v in short:
                hmac.new(key, v, hashlib.sha256).hexdigest()

        def pseudonymise() -> None:
            for v in bsns:
                pseudonymiser("bsn", v)

        print(f"key ring throughput, {rows} values per loop, best of 5")
        for name, loop in (
            ("seal_field, 9-byte BSN", seal_short),
            ("open_field, 9-byte BSN", open_short),
            ("seal_field, 1 KiB text", seal_long),
            ("open_field, 1 KiB text", open_long),
            ("blind_index(bsn)", index),
        ):
            print(f"  {name:<40} {rows / best(loop):>12,.0f} /s")
        bare = best(bare_hmac)
        pseudo = best(pseudonymise)
        for name, seconds in (
            ("bare hmac.new(k, v, sha256).hexdigest()", bare),
            ("Pseudonymiser('bsn', v)", pseudo),
        ):
            print(f"  {name:<40} {rows / seconds:>12,.0f} /s")
        print(f"  pseudonymiser / bare HMAC time ratio: {pseudo / bare:.2f} (must stay below 3)")


if __name__ == "__main__":
    main()
