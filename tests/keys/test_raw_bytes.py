"""Sealed fields leave no trace of a BSN or a name in the raw SQLite file or PostgreSQL heap.

A throwaway table stands in for record storage (which a later issue builds); the scan is
checked against a plaintext control row in the same table, so it can fail.
"""

from __future__ import annotations

from sqlalchemy import LargeBinary, text

from gateway.clock import FixedClock
from gateway.config import Settings
from gateway.db import Database
from gateway.keys import KeyRing
from tests.rawbytes import raw_database_bytes

BSN = "123456782"
NAME = "Jantje Zwartbroek"
CONTROL = "plaintext-control-8d1f"


def test_sealed_bsn_and_name_are_not_in_the_raw_database_bytes(
    settings: Settings, database: Database, clock: FixedClock
) -> None:
    ring = KeyRing.open(settings, clock=clock)
    ring.create_case_key("case-1")
    binary = LargeBinary().compile(dialect=database.engine.dialect)
    with database.engine.begin() as conn:
        conn.exec_driver_sql(
            f"CREATE TABLE keys_scan_probe (id VARCHAR(40) PRIMARY KEY, "
            f"bsn {binary}, name {binary}, note VARCHAR(80))"
        )
    try:
        with database.engine.begin() as conn:
            for record_id in ("rec-1", "rec-2"):
                conn.execute(
                    text("INSERT INTO keys_scan_probe VALUES (:id, :bsn, :name, :note)"),
                    {
                        "id": record_id,
                        "bsn": ring.seal_field("case-1", record_id, "bsn", BSN.encode()),
                        "name": ring.seal_field("case-1", record_id, "name", NAME.encode()),
                        "note": CONTROL,
                    },
                )
        raw = raw_database_bytes(database)
        assert CONTROL.encode() in raw  # the scan sees plaintext where there is some
        for secret in (BSN, NAME, NAME.upper(), NAME.lower()):
            assert secret.encode() not in raw
            assert secret.encode("utf-16-le") not in raw
        with database.engine.connect() as conn:
            stored = conn.execute(
                text("SELECT name FROM keys_scan_probe WHERE id = 'rec-2'")
            ).scalar_one()
        assert ring.open_field("case-1", "rec-2", "name", bytes(stored)).decode() == NAME
    finally:
        with database.engine.begin() as conn:
            conn.exec_driver_sql("DROP TABLE keys_scan_probe")
