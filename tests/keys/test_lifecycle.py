"""Rotation keeps old material usable; shredding is final, clear, audited, seen by every process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading

import pytest
from sqlmodel import col, select

from gateway.audit.events import AuditEventType
from gateway.clock import FixedClock
from gateway.config import Settings
from gateway.db import Database
from gateway.errors import IntegrityCheckFailed, KeyShreddedError
from gateway.identity.service import CLI_ACTOR, Actor
from gateway.keys import KeyRing, verify
from gateway.keys.fields import blob_version
from gateway.models.audit import AuditEntry

OPERATOR = Actor(principal_id="riec-noord-nederland.operator", partner_id="riec-noord-nederland")


class Ticker:
    """A monotonic clock for the ring's re-check interval that only moves when told."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def leaves(database: Database, *types: AuditEventType) -> list[dict[str, object]]:
    with database.read() as session:
        rows = session.exec(
            select(AuditEntry)
            .where(col(AuditEntry.event_type).in_([str(t) for t in types]))
            .order_by(col(AuditEntry.leaf_index))
        ).all()
    return [json.loads(row.leaf) for row in rows]


def test_case_key_rotation_keeps_old_ciphertexts_readable(
    settings: Settings, database: Database, clock: FixedClock
) -> None:
    ring = KeyRing.open(settings, clock=clock)
    ring.create_case_key("case-1")
    old = ring.seal_field("case-1", "rec-1", "bsn", b"123456782")
    with database.write() as session:
        assert ring.rotate_case_key(session, "case-1", actor=OPERATOR) == 2
    new = ring.seal_field("case-1", "rec-1", "bsn", b"123456782")
    assert (blob_version(old), blob_version(new)) == (1, 2)
    assert ring.case_key_version("case-1") == 2
    assert ring.open_field("case-1", "rec-1", "bsn", old) == b"123456782"
    assert ring.open_field("case-1", "rec-1", "bsn", new) == b"123456782"
    resealed = ring.reseal_field("case-1", "rec-1", "bsn", old)
    assert blob_version(resealed) == 2
    # the version is bound too: relabelling a v1 ciphertext as v2 fails
    forged = old[:1] + (2).to_bytes(4, "big") + old[5:]
    with pytest.raises(IntegrityCheckFailed):
        ring.open_field("case-1", "rec-1", "bsn", forged)
    [leaf] = leaves(database, AuditEventType.KEY_ROTATE)
    assert leaf["case"] == "case-1"
    assert leaf["actor"] == {"principal": OPERATOR.principal_id, "partner": OPERATOR.partner_id}
    assert leaf["refs"] == {"key_kind": "case", "key_id": "case-1", "version": 2, "active": True}


def test_other_processes_write_with_the_new_version_after_the_recheck(
    settings: Settings, database: Database, clock: FixedClock
) -> None:
    ticker = Ticker()
    ring = KeyRing.open(settings, clock=clock)
    other = KeyRing.open(settings, clock=clock, monotonic=ticker)
    ring.create_case_key("case-1")
    assert blob_version(other.seal_field("case-1", "r", "f", b"x")) == 1
    with database.write() as session:
        ring.rotate_case_key(session, "case-1", actor=OPERATOR)
    ticker.now += 0.5
    assert blob_version(other.seal_field("case-1", "r", "f", b"x")) == 1
    ticker.now += 0.6
    assert blob_version(other.seal_field("case-1", "r", "f", b"x")) == 2


def test_old_signatures_verify_after_signing_key_rotation(
    settings: Settings, database: Database, clock: FixedClock
) -> None:
    ring = KeyRing.open(settings, clock=clock)
    old_signer = ring.signer()
    old_signature = old_signer.sign(b"checkpoint 1")
    with database.write() as session:
        assert ring.rotate_signing_key(session, actor=CLI_ACTOR) == 2
    new_signer = ring.signer()
    assert new_signer.public_key != old_signer.public_key
    keys = ring.signing_public_keys()
    assert [(k.version, k.active) for k in keys] == [(1, False), (2, True)]
    assert keys[0].public_key == old_signer.public_key
    keys[0].verify(b"checkpoint 1", old_signature)
    verify(keys[1].public_key, b"checkpoint 2", new_signer.sign(b"checkpoint 2"))
    with pytest.raises(IntegrityCheckFailed):
        keys[1].verify(b"checkpoint 1", old_signature)
    # the key is persistent: another process signs with the same active key
    again = KeyRing.open(settings, clock=clock)
    assert again.signer().public_key == new_signer.public_key


def test_every_signing_key_rotation_names_the_new_keys_fingerprint_in_the_audit_log(
    settings: Settings, database: Database, clock: FixedClock
) -> None:
    # researchers pin a signing key by its fingerprint: the log says which key was made when
    ring = KeyRing.open(settings, clock=clock)
    with database.write() as session:
        ring.rotate_signing_key(session, actor=CLI_ACTOR)
    with database.write() as session:
        ring.rotate_signing_key(session, actor=CLI_ACTOR)
    rotations = leaves(database, AuditEventType.KEY_ROTATE)
    named = [r["refs"] for r in rotations]
    expected = [f"sha256:{k.fingerprint}" for k in ring.signing_public_keys()[1:]]
    assert [n["signing_key"] for n in named] == expected  # type: ignore[index]
    with database.write() as session:
        ring.rotate_index_key(session, actor=CLI_ACTOR)
    index = leaves(database, AuditEventType.KEY_ROTATE)[-1]
    assert "signing_key" not in index["refs"]  # type: ignore[operator]


def test_a_shredded_case_says_so_clearly_in_every_process(
    settings: Settings, database: Database, clock: FixedClock
) -> None:
    ticker = Ticker()
    ring = KeyRing.open(settings, clock=clock)
    cached_elsewhere = KeyRing.open(settings, clock=clock, monotonic=ticker)
    immediate = KeyRing.open(settings, clock=clock, recheck_seconds=0)
    ring.create_case_key("case-1")
    blob = ring.seal_field("case-1", "rec-1", "bsn", b"123456782")
    for other in (cached_elsewhere, immediate):
        assert other.open_field("case-1", "rec-1", "bsn", blob) == b"123456782"

    with database.write() as session:
        assert ring.shred_case(session, "case-1", actor=OPERATOR) is True

    late = KeyRing.open(settings, clock=clock)
    for reader in (ring, immediate, late):
        with pytest.raises(KeyShreddedError) as info:
            reader.open_field("case-1", "rec-1", "bsn", blob)
        message = str(info.value)
        assert "case case-1" in message and "destroyed on 2026-11-23" in message
        assert "end of its retention period" in message
        assert not isinstance(info.value, IntegrityCheckFailed)
        assert info.value.code == "key-shredded"
    # a process that read the key just before the shred notices within the re-check interval
    assert cached_elsewhere.open_field("case-1", "rec-1", "bsn", blob) == b"123456782"
    ticker.now += 1.0
    with pytest.raises(KeyShreddedError):
        cached_elsewhere.open_field("case-1", "rec-1", "bsn", blob)

    for attempt in (
        lambda: ring.seal_field("case-1", "rec-2", "bsn", b"x"),
        lambda: ring.create_case_key("case-1"),  # never recreated
        lambda: ring.case_key_version("case-1"),
    ):
        with pytest.raises(KeyShreddedError):
            attempt()
    with database.write() as session, pytest.raises(KeyShreddedError):
        ring.rotate_case_key(session, "case-1", actor=OPERATOR)
    with database.write() as session:
        assert ring.shred_case(session, "case-1", actor=OPERATOR) is False

    tombstone = (settings.keys_dir / "cases" / "case-1.json").read_text()
    assert json.loads(tombstone)["versions"] == [] and "wrapped" not in tombstone
    [leaf] = leaves(database, AuditEventType.KEY_SHRED)
    assert leaf["case"] == "case-1"
    assert leaf["refs"] == {"key_kind": "case", "key_id": "case-1", "versions_destroyed": 1}


def test_a_shredded_project_unlinks_its_pseudonyms_everywhere(
    settings: Settings, database: Database, clock: FixedClock
) -> None:
    ring = KeyRing.open(settings, clock=clock)
    other = KeyRing.open(settings, clock=clock, recheck_seconds=0)
    running = ring.pseudonymiser("youth-networks")
    before = running("bsn", "123456782")
    assert other.pseudonymiser("youth-networks")("bsn", "123456782") == before
    with database.write() as session:
        assert ring.shred_project(session, "youth-networks", actor=CLI_ACTOR) is True
    for reader in (ring, other, KeyRing.open(settings, clock=clock)):
        with pytest.raises(KeyShreddedError) as info:
            reader.pseudonymiser("youth-networks")
        assert "research project youth-networks was destroyed on 2026-11-23" in str(info.value)
        assert "pseudonyms can no longer be produced or linked" in str(info.value)
    with pytest.raises(KeyShreddedError):
        running.check_live()
    [leaf] = leaves(database, AuditEventType.KEY_SHRED)
    assert leaf["refs"] == {
        "key_kind": "project",
        "key_id": "youth-networks",
        "versions_destroyed": 1,
    }
    assert leaf["case"] is None


def test_concurrent_creation_and_rotation_lose_nothing(
    settings: Settings, database: Database, clock: FixedClock
) -> None:
    rings = [KeyRing.open(settings, clock=clock, recheck_seconds=0) for _ in range(4)]
    created: list[int] = []
    errors: list[BaseException] = []
    barrier = threading.Barrier(len(rings), timeout=30)

    def create_and_rotate(ring: KeyRing) -> None:
        try:
            barrier.wait()
            created.append(ring.create_case_key("case-race"))
            barrier.wait()
            for _ in range(3):
                with database.write() as session:
                    ring.rotate_case_key(session, "case-race", actor=CLI_ACTOR)
        except BaseException as exc:  # collected and re-raised below
            errors.append(exc)

    threads = [threading.Thread(target=create_and_rotate, args=(r,)) for r in rings]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert created.count(1) == 4  # one key, created once, seen by all
    [info] = [k for k in rings[0].describe() if k.key_id == "case-race"]
    assert [v.version for v in info.versions] == list(range(1, 14))
    assert len(leaves(database, AuditEventType.KEY_ROTATE)) == 12
    blob = rings[1].seal_field("case-race", "r", "f", b"x")
    assert blob_version(blob) == 13
    assert all(r.open_field("case-race", "r", "f", blob) == b"x" for r in rings)


WORKER = """
import sys
from gateway.clock import SystemClock
from gateway.config import Settings
from gateway.db import Database
from gateway.errors import KeyShreddedError
from gateway.identity.service import CLI_ACTOR
from gateway.keys import KeyRing

settings = Settings()
database = Database(settings.resolved_database_url)
ring = KeyRing.open(settings, clock=SystemClock())
if sys.argv[1] == "rotate":
    ring.create_case_key("case-mp")
    for _ in range(5):
        with database.write() as session:
            ring.rotate_case_key(session, "case-mp", actor=CLI_ACTOR)
    print("rotated")
else:
    try:
        ring.open_field("case-mp", "r", "f", bytes.fromhex(sys.argv[2]))
    except KeyShreddedError as exc:
        print(exc.code)
database.dispose()
"""


def test_separate_processes_share_one_ring(
    keys_settings: Settings, scratch_db: Database, clock: FixedClock
) -> None:
    settings, database = keys_settings, scratch_db  # one backend: the subject is the folder
    env = {k: v for k, v in os.environ.items() if not k.startswith("GATEWAY_")}
    env |= {
        "GATEWAY_KEYS_DIR": str(settings.keys_dir),
        "GATEWAY_DATA_DIR": str(settings.data_dir),
        "GATEWAY_DATABASE_URL": database.url,
    }

    def start(*args: str) -> subprocess.Popen[str]:
        return subprocess.Popen(
            [sys.executable, "-c", WORKER, *args], env=env, stdout=subprocess.PIPE, text=True
        )

    workers = [start("rotate") for _ in range(2)]
    assert [w.communicate(timeout=120)[0].strip() for w in workers] == ["rotated"] * 2
    ring = KeyRing.open(settings, clock=clock)
    [info] = [k for k in ring.describe() if k.key_id == "case-mp"]
    assert [v.version for v in info.versions] == list(range(1, 12))
    blob = ring.seal_field("case-mp", "r", "f", b"x")
    with database.write() as session:
        ring.shred_case(session, "case-mp", actor=CLI_ACTOR)
    reader = start("read", blob.hex())
    assert reader.communicate(timeout=120)[0].strip() == "key-shredded"
