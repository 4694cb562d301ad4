"""Fixtures for key ring tests: a private copy of the template ring, with or without a database."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from gateway.clock import FixedClock
from gateway.config import Settings
from gateway.db import Database
from gateway.keys import KeyRing
from tests.conftest import POLICIES, START

OTHER_MASTER_KEY = "b3RoZXItbWFzdGVyLWtleS1mb3ItdGVzdHMtMzJieXQ="  # 32 bytes, tests only


@pytest.fixture
def keys_settings(tmp_path: Path, key_ring_template: Path) -> Settings:
    """Development settings with a private copy of the template key ring and no database."""
    keys = tmp_path / "keys"
    shutil.copytree(key_ring_template, keys)
    return Settings(mode="development", data_dir=tmp_path, keys_dir=keys, policies_dir=POLICIES)


@pytest.fixture
def ring(keys_settings: Settings) -> KeyRing:
    """The ring of ``keys_settings``, opened with the development master key."""
    return KeyRing.open(keys_settings, clock=FixedClock(START))


@pytest.fixture
def scratch_db(tmp_path: Path, sqlite_template: Path) -> Iterator[Database]:
    """A migrated SQLite database for tests whose subject is not the database backend."""
    path = tmp_path / "scratch.db"
    shutil.copyfile(sqlite_template, path)
    database = Database(f"sqlite:///{path}")
    yield database
    database.dispose()
