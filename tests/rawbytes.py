"""What an attacker holding the database files (or a backup) would see: their raw bytes."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import text

from gateway.db import Database


def raw_database_bytes(database: Database) -> bytes:
    """Return every byte an attacker holding the database files (or a backup) would see."""
    with database.engine.connect() as conn:
        if database.is_sqlite:
            conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
            path = Path(database.engine.url.database or "")
            return b"".join(p.read_bytes() for p in (path, Path(f"{path}-wal")) if p.exists())
        conn.exec_driver_sql("CHECKPOINT")
        files = (
            conn.execute(
                text(
                    "SELECT pg_relation_filepath(c.oid) FROM pg_class c "
                    "JOIN pg_namespace n ON n.oid = c.relnamespace "
                    "WHERE n.nspname IN ('public', 'pg_toast') AND c.relkind IN ('r', 't', 'i') "
                    "AND pg_relation_filepath(c.oid) IS NOT NULL"
                )
            )
            .scalars()
            .all()
        )
        chunks = []
        for path in files:
            size = conn.execute(
                text("SELECT (pg_stat_file(:p, true)).size"), {"p": path}
            ).scalar_one()
            if size:
                chunks.append(
                    bytes(
                        conn.execute(
                            text("SELECT pg_read_binary_file(:p)"), {"p": path}
                        ).scalar_one()
                    )
                )
        return b"".join(chunks)
