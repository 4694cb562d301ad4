"""Fixtures for the audit log tests: a signing key, a filled log, and the CLI's environment."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import pytest

from gateway.app import build_context
from gateway.audit import log, sequencer
from gateway.audit.events import AuditEvent, AuditEventType
from gateway.clock import FixedClock
from gateway.config import Settings
from gateway.context import AppContext
from gateway.db import Database
from gateway.keys import KeyRing
from gateway.keys.signing import Ed25519Signer
from tests.conftest import POLICIES, START

ORIGIN = "audit.test.invalid/log"


@pytest.fixture(scope="session")
def signer(key_ring_template: Path) -> Ed25519Signer:
    """The checkpoint signing key of the tests' log: every test's key ring copy has it."""
    settings = Settings(
        mode="development",
        data_dir=key_ring_template.parent,
        keys_dir=key_ring_template,
        policies_dir=POLICIES,
    )
    return KeyRing.open(settings, clock=FixedClock(START)).signer()


@pytest.fixture
def deferred(database: Database) -> Iterator[sequencer.Integrator]:
    """Commits only wake this (thread-less) integrator: entries stay pending until asked."""
    integrator = sequencer.Integrator(database)
    integrator.attach()
    yield integrator
    integrator.stop()


def sample_event(i: int, **changes: object) -> AuditEvent:
    """Return a varied event number ``i``: some with details, subjects and parties."""
    fields: dict[str, object] = {
        "type": AuditEventType.PARTNER_ADD if i % 2 else AuditEventType.TOKEN_ISSUE,
        "at": START + timedelta(minutes=i),
        "actor_principal": f"p{i % 3}.analyst",
        "actor_partner": f"partner-{i % 3}",
        "case_id": f"case-{i % 2}",
        "subjects": (f"subject-{i % 4}",) if i % 2 == 0 else (),
        "parties": (f"partner-{(i + 1) % 3}",) if i % 3 == 0 else (),
        "refs": {"n": i},
        "details": {"note": f"detail {i}"} if i % 4 == 0 else None,
    }
    fields.update(changes)
    return AuditEvent(**fields)  # type: ignore[arg-type]


def fill(database: Database, count: int, start: int = 0) -> list[int]:
    """Append ``count`` sample events, one transaction each; return their indexes."""
    indexes = []
    for i in range(start, start + count):
        with database.write() as session:
            indexes.append(log.append(session, sample_event(i)))
    return indexes


@dataclass
class CliEnv:
    """The CLI's clock (tests move it) and a way to build the context the CLI uses."""

    clock: FixedClock
    context: Callable[[], AppContext]


@pytest.fixture
def cli_env(
    database: Database,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    key_ring_template: Path,
) -> CliEnv:
    """Point the ``gateway`` CLI at the test database, a copy of the test key ring, a clock."""
    for name in list(os.environ):
        if name.startswith("GATEWAY_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("GATEWAY_DATABASE_URL", database.url)
    monkeypatch.setenv("GATEWAY_DATA_DIR", str(tmp_path / "data"))
    keys = tmp_path / "keys"
    if not keys.exists():
        shutil.copytree(key_ring_template, keys)
    monkeypatch.setenv("GATEWAY_KEYS_DIR", str(keys))
    monkeypatch.setenv("GATEWAY_POLICIES_DIR", str(POLICIES))
    monkeypatch.setenv("GATEWAY_LOG_ORIGIN", ORIGIN)
    monkeypatch.chdir(tmp_path)
    clock = FixedClock(START + timedelta(days=1))

    def with_clock(settings: Settings, *, db: Database | None = None) -> AppContext:
        return build_context(settings, clock=clock, db=db)

    monkeypatch.setattr("gateway.cli.audit.build_context", with_clock)
    return CliEnv(clock, lambda: with_clock(Settings()))
