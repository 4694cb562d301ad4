"""The per-process PostgreSQL test database: emptied between tests, demo rows restored from a copy.

TRUNCATE gives every table new files and costs 0.5-1 s per test on a loaded machine;
DELETE on the few tables a test filled takes ~10 ms and leaves the same rows. Creating the
demo partners costs ~0.35-1.5 s per test; copying their rows back from a snapshot schema,
made once per process with ``create_demo_partners``, takes ~20 ms and leaves the same rows.
"""

from __future__ import annotations

import functools
import inspect
from dataclasses import dataclass
from types import ModuleType

from sqlalchemy import text
from sqlalchemy.engine import Connection

from gateway import db as dbmod
from gateway.audit.merkle import EMPTY_ROOT
from gateway.db import Database

SNAPSHOT_SCHEMA = "demo_snapshot"
# What a test module names when it reads the database's files (tests/rawbytes.py and alike).
RAW_FILE_READERS = ("raw_database_bytes", "pg_relation_filepath")


def _public_tables(conn: Connection) -> list[str]:
    return list(
        conn.execute(
            text(
                "SELECT tablename FROM pg_tables WHERE schemaname = 'public' "
                "AND tablename <> 'alembic_version' ORDER BY tablename"
            )
        )
        .scalars()
        .all()
    )


def filled_tables(conn: Connection) -> list[str]:
    """Return the tables of the public schema, Alembic's aside, that hold at least one row."""
    tables = _public_tables(conn)
    if not tables:
        return []
    probes = " UNION ALL ".join(
        f"(SELECT '{t}' WHERE EXISTS (SELECT 1 FROM \"{t}\"))" for t in tables
    )
    return sorted(conn.execute(text(probes)).scalars().all())


@functools.cache
def _names_raw_files(source_file: str) -> bool:
    with open(source_file, encoding="utf-8") as handle:
        source = handle.read()
    return any(name in source for name in RAW_FILE_READERS)


def reads_raw_files(module: ModuleType | None) -> bool:
    """Return whether ``module`` reads the database's files, so leftovers must not be there."""
    source_file = inspect.getsourcefile(module) if module is not None else None
    return source_file is not None and _names_raw_files(source_file)


# The migrations shipped do not change during a run; Alembic reads them anew per call (~30 ms).
head_revision = functools.cache(dbmod.head_revision)


def revision(conn: Connection) -> str | None:
    """Return the revision Alembic recorded in the database, None if none (as
    ``gateway.db.current_revision``, read with one statement instead of Alembic's context)."""
    if conn.execute(text("SELECT to_regclass('public.alembic_version')")).scalar() is None:
        return None
    found = conn.execute(text("SELECT version_num FROM alembic_version")).scalar()
    return None if found is None else str(found)


def reset(database: Database, *, fresh_files: bool = False) -> None:
    """Bring the schema to head, empty every table but Alembic's, reseed what migrations seed.

    With ``fresh_files`` every table is truncated (new, empty files: no deleted row of an
    earlier test is left in them); otherwise the filled tables are emptied with DELETE,
    with foreign-key triggers off for the transaction. Sequences are left alone either way.
    """
    with database.engine.connect() as conn:
        current = revision(conn)
    if current != head_revision():
        dbmod.upgrade(database)  # an earlier test downgraded it
    with database.engine.begin() as conn:
        if fresh_files:
            tables = _public_tables(conn)
            if tables:
                conn.execute(text("TRUNCATE " + ", ".join(f'"{t}"' for t in tables) + " CASCADE"))
        else:
            conn.execute(text("SET LOCAL session_replication_role = replica"))
            for table in filled_tables(conn):
                conn.execute(text(f'DELETE FROM "{table}"'))
        conn.execute(
            text(
                "INSERT INTO audit_tree_head (id, size, root, frontier) VALUES (1, 0, :root, '[]')"
            ),
            {"root": EMPTY_ROOT},
        )


def _is_reset(conn: Connection) -> bool:
    """Return whether the database holds nothing but what ``reset`` seeds."""
    if filled_tables(conn) != ["audit_tree_head"]:
        return False
    sizes = conn.execute(text("SELECT size FROM audit_tree_head")).scalars().all()
    return list(sizes) == [0]


@dataclass(frozen=True)
class Snapshot:
    """The rows of the filled tables, copied into ``SNAPSHOT_SCHEMA`` of the same database."""

    url: str
    columns: dict[str, tuple[str, ...]]  # table -> its columns, in the snapshot
    sequences: dict[str, int]  # sequence -> the value it had reached


def take_snapshot(database: Database) -> Snapshot:
    """Copy every filled table of ``database`` into ``SNAPSHOT_SCHEMA`` (made anew)."""
    with database.engine.begin() as conn:
        conn.execute(text(f'DROP SCHEMA IF EXISTS "{SNAPSHOT_SCHEMA}" CASCADE'))
        conn.execute(text(f'CREATE SCHEMA "{SNAPSHOT_SCHEMA}"'))
        columns: dict[str, tuple[str, ...]] = {}
        for table in filled_tables(conn):
            conn.execute(
                text(f'CREATE TABLE "{SNAPSHOT_SCHEMA}"."{table}" AS TABLE public."{table}"')
            )
            names = conn.execute(
                text(
                    "SELECT column_name FROM information_schema.columns "
                    "WHERE table_schema = :schema AND table_name = :table "
                    "ORDER BY ordinal_position"
                ),
                {"schema": SNAPSHOT_SCHEMA, "table": table},
            )
            columns[table] = tuple(names.scalars().all())
        used = conn.execute(
            text(
                "SELECT schemaname || '.' || sequencename, last_value FROM pg_sequences "
                "WHERE schemaname = 'public' AND last_value IS NOT NULL"
            )
        ).all()
    sequences = {str(name): int(value) for name, value in used}
    return Snapshot(database.url, columns, sequences)


def restore_snapshot(database: Database, snapshot: Snapshot) -> bool:
    """Copy the snapshot's rows into a just-reset ``database``; False (nothing done) otherwise.

    A sequence behind where it was in the snapshot (the schema was dropped and made again
    since) is moved there, so the next id is new, as after ``create_demo_partners``.
    """
    if database.url != snapshot.url:
        return False
    with database.engine.begin() as conn:
        if not _is_reset(conn):
            return False
        conn.execute(text("SET LOCAL session_replication_role = replica"))
        conn.execute(text("DELETE FROM audit_tree_head"))
        for table, names in snapshot.columns.items():
            listed = ", ".join(f'"{name}"' for name in names)
            conn.execute(
                text(
                    f'INSERT INTO public."{table}" ({listed}) '
                    f'SELECT {listed} FROM "{SNAPSHOT_SCHEMA}"."{table}"'
                )
            )
        for sequence, value in snapshot.sequences.items():
            conn.execute(
                text(
                    "SELECT setval(CAST(:seq AS regclass), :value) WHERE :value > "
                    "coalesce(pg_sequence_last_value(CAST(:seq AS regclass)), 0)"
                ),
                {"seq": sequence, "value": value},
            )
    return True
