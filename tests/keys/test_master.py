"""The master key: a wrong one fails at start with one clear line; loose files refused; rewrap."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest
from pydantic import SecretStr
from sqlmodel import select

from gateway.app import create_app
from gateway.audit.events import AuditEventType
from gateway.clock import FixedClock
from gateway.config import Settings
from gateway.db import Database
from gateway.errors import KeyRingError
from gateway.identity.service import CLI_ACTOR
from gateway.keys import KeyRing, MasterSecret, lifecycle
from gateway.keys import ring as ringmod
from gateway.keys.master import Kek
from gateway.models.audit import AuditEntry
from tests.keys.conftest import OTHER_MASTER_KEY

WRONG = "the master key does not open the key ring"


def with_master(settings: Settings, **update: object) -> Settings:
    values: dict[str, object] = {"master_key": None, "master_passphrase": None}
    values.update(update)
    return settings.model_copy(
        update={k: SecretStr(v) if isinstance(v, str) else v for k, v in values.items()}
    )


def test_a_wrong_master_key_fails_with_one_clear_line(keys_settings: Settings) -> None:
    with pytest.raises(KeyRingError) as info:
        KeyRing.open(with_master(keys_settings, master_key=OTHER_MASTER_KEY))
    message = str(info.value)
    assert WRONG in message and "GATEWAY_MASTER_KEY is wrong" in message
    assert "\n" not in message
    assert OTHER_MASTER_KEY not in message


def test_the_app_refuses_to_start_with_a_wrong_master_key(
    settings: Settings, database: Database
) -> None:
    with pytest.raises(KeyRingError, match=WRONG):
        create_app(with_master(settings, master_key=OTHER_MASTER_KEY), db=database)


@pytest.mark.parametrize(
    ("update", "message"),
    [
        ({"master_key": "not base64!"}, "GATEWAY_MASTER_KEY is not valid base64"),
        ({"master_key": "c2hvcnQ="}, "must be base64 of exactly 32 bytes (it has 5)"),
        (
            {"master_key": OTHER_MASTER_KEY, "master_passphrase": "long enough passphrase"},
            "set only one of GATEWAY_MASTER_KEY and GATEWAY_MASTER_PASSPHRASE",
        ),
        ({"master_passphrase": "short"}, "at least 12 characters"),
        (
            {"master_passphrase": "a passphrase instead of the key"},
            "the key ring was created with GATEWAY_MASTER_KEY",
        ),
    ],
)
def test_unusable_master_settings_are_named(
    keys_settings: Settings, update: dict[str, str], message: str
) -> None:
    with pytest.raises(KeyRingError, match=re.escape(message)):
        KeyRing.open(with_master(keys_settings, **update))


def test_a_missing_ring_says_to_run_init(tmp_path: Path, keys_settings: Settings) -> None:
    empty = tmp_path / "empty"
    empty.mkdir(mode=0o700)
    with pytest.raises(KeyRingError, match=r"no key ring in .*; run `gateway init`"):
        KeyRing.open(keys_settings.model_copy(update={"keys_dir": empty}))


def test_a_passphrase_ring_uses_argon2id_and_checks_the_passphrase(
    tmp_path: Path, scratch_db: Database, clock: FixedClock
) -> None:
    settings = Settings(
        keys_dir=tmp_path / "pp-keys",
        data_dir=tmp_path,
        master_passphrase=SecretStr("correct horse battery staple"),
    )
    with scratch_db.write() as session:
        ring = KeyRing.create(settings, session, clock=clock, actor=CLI_ACTOR)
    kek = json.loads((settings.keys_dir / "keyring.json").read_text())["kek"]
    assert kek["source"] == "passphrase"
    assert kek["kdf"]["name"] == "argon2id" and kek["kdf"]["memory_cost"] >= 64 * 1024
    ring.create_case_key("c")
    blob = ring.seal_field("c", "r", "f", b"x")
    assert KeyRing.open(settings).open_field("c", "r", "f", blob) == b"x"
    with pytest.raises(KeyRingError, match="GATEWAY_MASTER_PASSPHRASE is wrong"):
        KeyRing.open(with_master(settings, master_passphrase="wrong horse battery staple"))
    with pytest.raises(KeyRingError, match="created with GATEWAY_MASTER_PASSPHRASE"):
        KeyRing.open(with_master(settings, master_key=OTHER_MASTER_KEY))


def test_create_is_idempotent_and_audited_once(
    tmp_path: Path, database: Database, clock: FixedClock
) -> None:
    settings = Settings(keys_dir=tmp_path / "fresh", data_dir=tmp_path)
    with database.write() as session:
        first = KeyRing.create(settings, session, clock=clock, actor=CLI_ACTOR)
    with database.write() as session:
        second = KeyRing.create(settings, session, clock=clock, actor=CLI_ACTOR)
    assert first.signer().public_key == second.signer().public_key
    assert first.info.kek_id == second.info.kek_id
    with database.read() as session:
        events = session.exec(select(AuditEntry.event_type)).all()
        created = session.exec(
            select(AuditEntry.leaf).where(
                AuditEntry.event_type == str(AuditEventType.KEYRING_CREATE)
            )
        ).one()
    assert events.count(str(AuditEventType.KEYRING_CREATE)) == 1
    # the first signing key is named in the log, as every rotation names its new key
    refs = json.loads(created)["refs"]
    assert refs["signing_key"] == f"sha256:{first.signer().fingerprint}"
    modes = {
        p.relative_to(settings.keys_dir).as_posix(): p.stat().st_mode & 0o777
        for p in [settings.keys_dir, *settings.keys_dir.rglob("*")]
    }
    assert modes["."] == 0o700 and modes["system"] == 0o700
    assert modes["keyring.json"] == 0o600 and modes["system/signing.json"] == 0o600
    with pytest.raises(KeyRingError, match=WRONG), database.write() as session:
        KeyRing.create(
            with_master(settings, master_key=OTHER_MASTER_KEY),
            session,
            clock=clock,
            actor=CLI_ACTOR,
        )


def test_create_refuses_key_files_without_their_ring_file(
    keys_settings: Settings, scratch_db: Database, clock: FixedClock
) -> None:
    (keys_settings.keys_dir / "keyring.json").unlink()
    with (
        pytest.raises(KeyRingError, match=r"restore keyring\.json from a backup"),
        scratch_db.write() as session,
    ):
        KeyRing.create(keys_settings, session, clock=clock, actor=CLI_ACTOR)


def open_and_use(settings: Settings, *, sign: bool = False) -> None:
    """Open the ring afresh and use case c's key (and the signing key if ``sign``)."""
    fresh = KeyRing.open(settings)
    if sign:
        fresh.signer()
    fresh.seal_field("c", "r", "f", b"x")


@pytest.mark.parametrize("target", ["keyring.json", "system/signing.json", "cases/c.json"])
@pytest.mark.parametrize("mode", [0o640, 0o604, 0o644])
def test_key_files_readable_by_others_are_refused(
    keys_settings: Settings, ring: KeyRing, target: str, mode: int
) -> None:
    ring.create_case_key("c")
    os.chmod(keys_settings.keys_dir / target, mode)
    with pytest.raises(KeyRingError, match=r"accessible by group or others.*chmod -R go-rwx"):
        open_and_use(keys_settings, sign=True)


@pytest.mark.parametrize("folder", [".", "cases", "system"])
def test_key_folders_open_to_others_are_refused(
    keys_settings: Settings, ring: KeyRing, folder: str
) -> None:
    ring.create_case_key("c")
    os.chmod(keys_settings.keys_dir / folder, 0o755)  # noqa: S103  (the loose mode under test)
    with pytest.raises(KeyRingError, match="accessible by group or others"):
        open_and_use(keys_settings)


def test_a_symlinked_key_file_is_refused(keys_settings: Settings, ring: KeyRing) -> None:
    ring.create_case_key("real")
    cases = keys_settings.keys_dir / "cases"
    (cases / "alias.json").symlink_to(cases / "real.json")
    with pytest.raises(KeyRingError, match="symlink"):
        KeyRing.open(keys_settings).seal_field("alias", "r", "f", b"x")


def test_rewrap_moves_the_ring_to_a_new_master_key(
    settings: Settings, database: Database, clock: FixedClock
) -> None:
    ring = KeyRing.open(settings, clock=clock)
    ring.create_case_key("case-1")
    blob = ring.seal_field("case-1", "rec-1", "bsn", b"123456782")
    pseudonym = ring.pseudonymiser("p1")("bsn", "123456782")
    index = ring.blind_index("bsn", "123456782")
    public = ring.signer().public_key
    old_kek = ring.info.kek_id
    with database.write() as session:
        count = ring.rewrap(session, MasterSecret.from_key_text(OTHER_MASTER_KEY), actor=CLI_ACTOR)
    assert count == 4  # index, signing, case-1, p1
    with pytest.raises(KeyRingError, match=WRONG):
        KeyRing.open(settings)
    moved = KeyRing.open(with_master(settings, master_key=OTHER_MASTER_KEY))
    assert moved.info.kek_id == ring.info.kek_id != old_kek
    assert moved.open_field("case-1", "rec-1", "bsn", blob) == b"123456782"
    assert moved.pseudonymiser("p1")("bsn", "123456782") == pseudonym
    assert moved.blind_index("bsn", "123456782") == index
    assert moved.signer().public_key == public
    assert ring.open_field("case-1", "rec-1", "bsn", blob) == b"123456782"  # this process too
    with database.read() as session:
        [entry] = session.exec(
            select(AuditEntry).where(AuditEntry.event_type == str(AuditEventType.KEYRING_REWRAP))
        ).all()
    refs = json.loads(entry.leaf)["refs"]
    assert refs == {"old_kek": old_kek, "new_kek": moved.info.kek_id, "source": "master-key"}


def test_an_interrupted_rewrap_is_finished_by_running_it_again(
    settings: Settings, database: Database, clock: FixedClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    ring = KeyRing.open(settings, clock=clock)
    for case in ("a", "b", "c"):
        ring.create_case_key(case)
    blob = ring.seal_field("c", "r", "f", b"x")
    new_master = MasterSecret.from_key_text(OTHER_MASTER_KEY)
    real = lifecycle._rewrap_file
    done: list[int] = []

    def crash_after_two(self: KeyRing, kind: ringmod.KeyKind, path: Path, kek: Kek) -> int:
        if len(done) == 2:
            raise OSError("disk full")
        done.append(real(self, kind, path, kek))
        return done[-1]

    monkeypatch.setattr(lifecycle, "_rewrap_file", crash_after_two)
    with pytest.raises(OSError, match="disk full"), database.write() as session:
        ring.rewrap(session, new_master, actor=CLI_ACTOR)
    monkeypatch.undo()

    half = KeyRing.open(settings, clock=clock)  # the old key still opens the ring ...
    with pytest.raises(KeyRingError, match="rewrap was interrupted"):
        half.open_field("a", "r", "f", b"")  # ... but not the files already rewrapped
    with pytest.raises(KeyRingError, match="a rewrap to this master key was interrupted"):
        KeyRing.open(with_master(settings, master_key=OTHER_MASTER_KEY))
    with database.write() as session:
        assert half.rewrap(session, new_master, actor=CLI_ACTOR) == 3
    moved = KeyRing.open(with_master(settings, master_key=OTHER_MASTER_KEY))
    assert moved.open_field("c", "r", "f", blob) == b"x"
    assert json.loads((settings.keys_dir / "keyring.json").read_text())["pending_kek"] is None


def test_readiness_reports_a_ring_rewrapped_by_another_process(
    settings: Settings, database: Database, clock: FixedClock
) -> None:
    stale = KeyRing.open(settings, clock=clock)
    assert stale.readiness() is None
    with database.write() as session:
        KeyRing.open(settings).rewrap(
            session, MasterSecret.from_key_text(OTHER_MASTER_KEY), actor=CLI_ACTOR
        )
    assert stale.readiness() == (
        "the key ring was rewrapped under another master key; restart this process"
    )


def test_a_process_that_missed_a_rewrap_cannot_add_or_change_keys(
    settings: Settings, database: Database, clock: FixedClock
) -> None:
    stale = KeyRing.open(settings, clock=clock)
    with database.write() as session:
        KeyRing.open(settings).rewrap(
            session, MasterSecret.from_key_text(OTHER_MASTER_KEY), actor=CLI_ACTOR
        )
    with pytest.raises(KeyRingError, match="rewrapped under another master key"):
        stale.create_case_key("new-case")
    with pytest.raises(KeyRingError, match="rewrapped under another master key"):
        stale.pseudonymiser("new-project")
    with pytest.raises(KeyRingError, match="rewrapped"), database.write() as session:
        stale.shred_case(session, "other-case", actor=CLI_ACTOR)
    assert sorted(p.name for p in (settings.keys_dir / "cases").iterdir()) == []
    moved = KeyRing.open(with_master(settings, master_key=OTHER_MASTER_KEY))
    assert moved.create_case_key("new-case") == 1
