"""The suite's PostgreSQL database: a reset empties it, a restored snapshot is the demo partners.

``tests/helpers/postgres.py`` replaces TRUNCATE with DELETE and ``create_demo_partners``
with a copy of its rows; these tests hold both to what they replace.
"""

from __future__ import annotations

import importlib
import shutil
from datetime import timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import text

from gateway import db as dbmod
from gateway.audit.merkle import EMPTY_ROOT
from gateway.clock import FixedClock
from gateway.config import Settings
from gateway.db import Database
from gateway.demo_partners import create_demo_partners
from gateway.keys import KeyRing
from gateway.policy.vocabulary import partner_kinds
from tests.conftest import POLICIES, START, Gateway, PgDemo
from tests.helpers import postgres


def _rows(database: Database, table: str, *columns: str) -> list[tuple[Any, ...]]:
    listed = ", ".join(columns)
    with database.engine.connect() as conn:
        return [tuple(r) for r in conn.execute(text(f"SELECT {listed} FROM {table} ORDER BY 1"))]


def _filled(database: Database) -> list[str]:
    with database.engine.connect() as conn:
        return postgres.filled_tables(conn)


def test_a_reset_after_a_gateway_test_leaves_only_the_seeded_tree_head(pg_demo: PgDemo) -> None:
    database = Database(pg_demo.snapshot.url)
    try:
        postgres.reset(database)
        assert postgres.restore_snapshot(database, pg_demo.snapshot)
        assert set(_filled(database)) == set(pg_demo.snapshot.columns) != {"audit_tree_head"}
        for fresh_files in (False, True):
            postgres.reset(database, fresh_files=fresh_files)
            assert _filled(database) == ["audit_tree_head"]
            assert _rows(database, "audit_tree_head", "id", "size", "root", "frontier") == [
                (1, 0, EMPTY_ROOT, "[]")
            ]
    finally:
        database.dispose()


def test_the_revision_read_by_the_reset_is_alembics(pg_demo: PgDemo) -> None:
    database = Database(pg_demo.snapshot.url)
    try:
        for step in ("head", "-1", "base"):  # at head, one behind, nothing applied
            if step == "head":
                postgres.reset(database)
            else:
                dbmod.downgrade(database, step)
            with database.engine.connect() as conn:
                assert postgres.revision(conn) == dbmod.current_revision(database)
        assert postgres.head_revision() == dbmod.head_revision()
        postgres.reset(database)  # migrates back to head
        assert dbmod.current_revision(database) == dbmod.head_revision()
    finally:
        database.dispose()


def test_the_snapshot_holds_the_rows_create_demo_partners_writes(
    pg_demo: PgDemo, tmp_path: Path, key_ring_template: Path
) -> None:
    shutil.copytree(key_ring_template, tmp_path / "keys")
    settings = Settings(
        mode="development", data_dir=tmp_path, keys_dir=tmp_path / "keys", policies_dir=POLICIES
    )
    database = Database(pg_demo.snapshot.url)
    try:
        postgres.reset(database)
        keyer = KeyRing.open(settings, clock=FixedClock(START)).person_key
        created = create_demo_partners(
            database,
            FixedClock(START),
            partner_kinds(POLICIES),
            timedelta(days=settings.token_ttl_days),
            keyer=keyer,
        )
        made = {t: _rows(database, t, "count(*)") for t in pg_demo.snapshot.columns}
        partners = _rows(database, "partners", "*")
        principals = _rows(database, "principals", "*")
        assert not postgres.restore_snapshot(database, pg_demo.snapshot)  # not empty: refused
        postgres.reset(database)
        assert postgres.restore_snapshot(database, pg_demo.snapshot)
        assert {t: _rows(database, t, "count(*)") for t in pg_demo.snapshot.columns} == made
        assert _rows(database, "partners", "*") == partners
        assert _rows(database, "principals", "*") == principals
        assert sorted(pg_demo.tokens) == sorted(pid for pid, _token in created)
    finally:
        database.dispose()


def test_every_demo_token_names_its_principal(gateway: Gateway) -> None:
    assert len(gateway.tokens) > 30
    for principal in gateway.tokens:
        response = gateway.client.get("/v1/me", headers=gateway.auth(principal))
        assert response.status_code == 200, (principal, response.text)
        assert response.json()["principal_id"] == principal


def test_the_modules_that_read_the_raw_files_get_fresh_files() -> None:
    readers = [
        importlib.import_module(name)
        for name in (
            "tests.keys.test_raw_bytes",
            "tests.workflow.test_encrypted_at_rest",
            "tests.research_api.test_intake",
        )
    ]
    assert all(postgres.reads_raw_files(module) for module in readers)
    assert not postgres.reads_raw_files(importlib.import_module("tests.api.test_robust"))
