"""Driver-level inserts store exactly what a Core insert of the same rows stores."""

from __future__ import annotations

import random
from datetime import UTC, timedelta, timezone

from sqlalchemy import insert, text

from gateway.audit.statements import DriverInsert
from gateway.db import Database, table_of
from gateway.models.audit import AuditDetail, AuditPending, AuditSubject
from tests.conftest import START


def raw(database: Database, table: str, key: str) -> list[tuple[object, ...]]:
    """Every row as the database stores it (SQLite: timestamps as their stored text)."""
    with database.read() as session:
        return [tuple(r) for r in session.execute(text(f"SELECT * FROM {table} ORDER BY {key}"))]


def test_driver_and_core_inserts_store_the_same_values(database: Database) -> None:
    rng = random.Random(17)
    east = timezone(timedelta(hours=2))

    def when() -> object:
        at = START + timedelta(microseconds=rng.randrange(10**12))
        return rng.choice([None, at, at.astimezone(east), at.astimezone(UTC)])

    details = [
        {
            "salt": rng.randbytes(16),
            "body": rng.choice(["", "é ü", '{"a":1}']),
            "delete_after": when() or START,
        }
        for _ in range(20)
    ]
    subjects = [
        {
            "subject_key": f"k{i}",
            "person": rng.choice([None, "p1"]),
            "id_type": rng.choice([None, "bsn"]),
            "delete_after": when(),
        }
        for i in range(20)
    ]
    statements = (
        (AuditDetail, ("leaf_index", "salt", "body", "delete_after"), details),
        (
            AuditSubject,
            ("leaf_index", "subject_key", "person", "id_type", "delete_after"),
            subjects,
        ),
    )
    for model, columns, rows in statements:
        core = [{"leaf_index": i, **row} for i, row in enumerate(rows)]
        driver = [{"leaf_index": 1000 + i, **row} for i, row in enumerate(rows)]
        statement = DriverInsert(table_of(model), columns)
        with database.write() as session:
            session.connection().execute(insert(table_of(model)), core)
            conn = session.connection()
            statement.run(conn, statement.params(conn.dialect, driver))
        stored = raw(database, table_of(model).name, "leaf_index")
        assert len(stored) == 2 * len(rows)
        assert [r[1:] for r in stored[: len(rows)]] == [r[1:] for r in stored[len(rows) :]]


def test_insert_one_returns_the_assigned_key(database: Database) -> None:
    statement = DriverInsert(
        table_of(AuditPending),
        ("event_type", "occurred_at", "document", "salt", "body", "delete_after"),
        returning="entry_id",
    )
    row = {
        "event_type": "t",
        "occurred_at": START,
        "document": "{}",
        "salt": None,
        "body": None,
        "delete_after": None,
    }
    with database.write() as session:
        first = statement.insert_one(session.connection(), row)
        core = session.connection().execute(insert(table_of(AuditPending)), row)
        second = statement.insert_one(session.connection(), row)
    assert core.inserted_primary_key is not None
    assert first < int(core.inserted_primary_key[0]) < second
    stored = raw(database, "audit_pending", "entry_id")
    assert [r[0] for r in stored] == [first, core.inserted_primary_key[0], second]
    assert stored[0][1:] == stored[1][1:] == stored[2][1:]
