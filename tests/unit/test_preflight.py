"""Start-up refuses loose key files and, in production, demo partners."""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path

import pytest

from gateway import preflight
from gateway.clock import FixedClock
from gateway.config import Mode, Settings
from gateway.db import Database
from gateway.demo_partners import create_demo_partners
from gateway.keys import KeyRing
from gateway.policy.vocabulary import partner_kinds
from tests.conftest import POLICIES


def test_private_key_folder_passes(settings: Settings, database: Database) -> None:
    (settings.keys_dir / "README.md").write_text("readme")
    secret = settings.keys_dir / "ring.json"
    secret.write_text("{}")
    os.chmod(secret, 0o600)
    preflight.run(settings, database)


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604])
def test_key_file_readable_by_others_is_refused(
    settings: Settings, database: Database, mode: int
) -> None:
    loose = settings.keys_dir / "ring.json"
    loose.write_text("{}")
    os.chmod(loose, mode)
    with pytest.raises(preflight.PreflightError, match="chmod -R go-rwx"):
        preflight.run(settings, database)


def test_open_key_folder_is_refused(settings: Settings, database: Database) -> None:
    os.chmod(settings.keys_dir, 0o755)  # noqa: S103  (the loose mode under test)
    assert preflight.loose_key_files(settings.keys_dir) == [Path(settings.keys_dir)]


def test_production_refuses_a_database_with_demo_partners(
    settings: Settings, database: Database, clock: FixedClock
) -> None:
    production = settings.model_copy(update={"mode": Mode.PRODUCTION})
    preflight.run(production, database)
    create_demo_partners(
        database,
        clock,
        partner_kinds(POLICIES),
        timedelta(days=1),
        keyer=KeyRing.open(settings, clock=clock).person_key,
    )
    with pytest.raises(preflight.PreflightError, match="demo partners"):
        preflight.run(production, database)
