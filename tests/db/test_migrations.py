"""Migrations upgrade and downgrade on SQLite and PostgreSQL; the app refuses a stale schema."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import inspect

from gateway import db as dbmod
from gateway.app import create_app
from gateway.config import Settings
from gateway.db import Database
from gateway.preflight import PreflightError


def table_names(database: Database) -> set[str]:
    return set(inspect(database.engine).get_table_names()) - {"alembic_version"}


def test_downgrade_to_base_and_upgrade_again(database: Database) -> None:
    assert dbmod.current_revision(database) == dbmod.head_revision()
    assert {
        "partners",
        "principals",
        "api_tokens",
        "audit_entries",
        "audit_tree_head",
    } <= table_names(database)
    dbmod.downgrade(database, "base")
    assert table_names(database) == set()
    assert dbmod.current_revision(database) is None
    dbmod.upgrade(database)
    assert dbmod.current_revision(database) == dbmod.head_revision()


def test_every_revision_steps_down_and_up(database: Database) -> None:
    from alembic.script import ScriptDirectory

    script = ScriptDirectory.from_config(dbmod.alembic_config(database.url))
    revisions = [r.revision for r in script.walk_revisions()]  # newest first
    for revision in revisions:
        dbmod.downgrade(database, "-1")
        assert dbmod.current_revision(database) != revision
    for _ in revisions:
        dbmod.upgrade(database, "+1")
    assert dbmod.current_revision(database) == dbmod.head_revision()


def test_app_refuses_to_serve_on_a_stale_schema(settings: Settings, database: Database) -> None:
    dbmod.downgrade(database, "base")
    app = create_app(settings, db=database)
    with pytest.raises(PreflightError, match="run `gateway init`"), TestClient(app):
        pass


def test_the_migrations_build_exactly_the_tables_the_models_declare(database: Database) -> None:
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext
    from sqlmodel import SQLModel

    import gateway.models  # noqa: F401  (registers every table)

    with database.engine.connect() as conn:
        differences = compare_metadata(MigrationContext.configure(conn), SQLModel.metadata)
    # UtcDateTime is a Python-side decorator over DateTime(timezone=True): not a difference
    real = [d for d in differences if not (isinstance(d, list) and d and d[0][0] == "modify_type")]
    assert real == []
