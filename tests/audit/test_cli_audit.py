"""`gateway audit checkpoint|prove|verify-proof|purge-details|verifier-key` end to end."""

from __future__ import annotations

import base64
import json
import os
from datetime import timedelta
from pathlib import Path

import pytest
from sqlmodel import func, select

from gateway.audit.bundle import parse_tlog_proof
from gateway.audit.events import canonical_json
from gateway.audit.merkle import leaf_hash
from gateway.cli import run
from gateway.db import Database
from gateway.models.audit import AuditDetail, AuditEntry
from tests.audit.conftest import ORIGIN, CliEnv, fill


def vkey(capsys: pytest.CaptureFixture[str]) -> str:
    assert run(["audit", "verifier-key"]) == 0
    return capsys.readouterr().out.strip()


def test_checkpoint_prints_a_signed_note(
    database: Database, cli_env: CliEnv, capsys: pytest.CaptureFixture[str]
) -> None:
    fill(database, 6)
    assert run(["audit", "checkpoint"]) == 0
    note = capsys.readouterr().out
    assert note.startswith(f"{ORIGIN}\n6\n") and f"\n\n\u2014 {ORIGIN} " in note


def test_prove_writes_a_bundle_that_verifies_with_nothing_but_the_key(
    database: Database,
    cli_env: CliEnv,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    fill(database, 9)
    key = vkey(capsys)
    assert run(["audit", "prove", "--index", "4"]) == 0
    assert "wrote entry-4.tlog-proof" in capsys.readouterr().out
    bundle = tmp_path / "entry-4.tlog-proof"
    parsed = parse_tlog_proof(bundle.read_text())
    assert parsed.index == 4 and len(parsed.hashes) == 4
    leaf_file = tmp_path / "leaf.json"
    assert parsed.extra is not None
    leaf_file.write_bytes(parsed.extra)

    # Nothing of the gateway's configuration is needed: break all of it.
    for name in list(os.environ):
        if name.startswith("GATEWAY_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("GATEWAY_MODE", "production")
    monkeypatch.setenv("GATEWAY_DATABASE_URL", "sqlite:///:memory:")
    monkeypatch.setattr("gateway.cli.audit.build_context", None)

    assert run(["audit", "verify-proof", str(bundle), "--public-key", key]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"ok: entry 4 is in log {ORIGIN} at size 9")
    assert json.loads(out.splitlines()[1])["index"] == 4  # the leaf carried in the bundle

    key_file = tmp_path / "log.vkey"
    key_file.write_text(key + "\n")
    assert (
        run(
            [
                "audit",
                "verify-proof",
                str(bundle),
                "--public-key",
                str(key_file),
                "--leaf",
                str(leaf_file),
            ]
        )
        == 0
    )
    digest = leaf_hash(parsed.extra).hex()
    args = ["audit", "verify-proof", str(bundle), "--public-key", key, "--origin", ORIGIN]
    assert run([*args, "--leaf-hash", digest]) == 0
    capsys.readouterr()

    other = json.loads(parsed.extra)
    other["purpose"] = "forged"
    leaf_file.write_bytes(canonical_json(other))
    assert (
        run(["audit", "verify-proof", str(bundle), "--public-key", key, "--leaf", str(leaf_file)])
        == 1
    )
    assert run([*args[:-2], "--origin", "other.example/log"]) == 1
    tampered = tmp_path / "tampered.tlog-proof"
    tampered.write_text(bundle.read_text().replace("index 4", "index 5"))
    assert run(["audit", "verify-proof", str(tampered), "--public-key", key]) == 1
    errors = capsys.readouterr().err.splitlines()
    assert len(errors) == 3
    assert all(e.startswith("error: the proof does not verify") for e in errors)

    garbage = tmp_path / "garbage.tlog-proof"
    garbage.write_text("hello\n")
    assert run(["audit", "verify-proof", str(garbage), "--public-key", key]) == 1
    assert "not a proof bundle" in capsys.readouterr().err
    assert run(["audit", "verify-proof", str(bundle), "--public-key", "nonsense"]) == 1
    assert "public key" in capsys.readouterr().err


def test_prove_at_an_earlier_size_signs_a_checkpoint_there(
    database: Database, cli_env: CliEnv, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    fill(database, 9)
    key = vkey(capsys)
    out = tmp_path / "p.tlog-proof"
    assert run(["audit", "prove", "--index", "2", "--size", "5", "-o", str(out)]) == 0
    assert run(["audit", "verify-proof", str(out), "--public-key", key]) == 0
    assert "at size 5" in capsys.readouterr().out
    assert run(["audit", "prove", "--index", "5", "--size", "5"]) == 1
    assert run(["audit", "prove", "--index", "2", "--size", "10"]) == 1
    assert run(["audit", "verify"]) == 0  # the extra checkpoint is consistent with the log


def test_purge_details_keeps_the_log_verifiable(
    database: Database, cli_env: CliEnv, capsys: pytest.CaptureFixture[str]
) -> None:
    fill(database, 9)  # details on entries 0, 4 and 8, kept four years
    assert run(["audit", "checkpoint"]) == 0
    assert run(["audit", "purge-details"]) == 0
    assert "deleted the details or subject index rows of 0 entries" in capsys.readouterr().out
    cli_env.clock.advance(timedelta(days=4 * 365, minutes=6))  # 4 years + 1 day after 0 and 4
    assert run(["audit", "purge-details"]) == 0
    # details of 0 and 4, subject index rows of 0, 2, 4 and 6 (four years, the default)
    assert "deleted the details or subject index rows of 4 entries" in capsys.readouterr().out
    with database.read() as session:
        left = session.exec(select(AuditDetail.leaf_index)).all()
        purge = session.exec(
            select(AuditEntry).where(AuditEntry.event_type == "audit:details:purge")
        ).one()
        size = session.exec(select(func.count()).select_from(AuditEntry)).one()
    assert list(left) == [8]
    refs = {"count": 2, "subject_entries": 4, "first": 0, "last": 6}
    assert json.loads(purge.leaf)["refs"] == refs
    assert size == 10
    assert run(["audit", "verify"]) == 0
    assert "10 entries" in capsys.readouterr().out


def test_bundle_hashes_are_base64_lines(
    database: Database, cli_env: CliEnv, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    fill(database, 3)
    assert run(["audit", "prove", "--index", "0", "-o", str(tmp_path / "b")]) == 0
    lines = (tmp_path / "b").read_text().split("\n")
    assert lines[0] == "c2sp.org/tlog-proof@v1"
    assert lines[1].startswith("extra ") and lines[2] == "index 0"
    assert all(len(base64.b64decode(x, validate=True)) == 32 for x in lines[3:5])
    assert lines[5] == "" and lines[6] == ORIGIN


def test_verify_proof_takes_the_key_in_every_form_the_gateway_prints(
    database: Database, cli_env: CliEnv, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    fill(database, 5)
    vkey_text = vkey(capsys)
    assert run(["keys", "public"]) == 0
    listing = capsys.readouterr().out
    raw = base64.b64decode(listing.split()[2])
    assert run(["audit", "prove", "--index", "1", "--out", str(tmp_path / "p.tlog-proof")]) == 0
    capsys.readouterr()
    forms = {
        "vkey": vkey_text,
        "keys public": listing,
        "hex (.pub)": raw.hex() + "\n",
        "base64": base64.b64encode(raw).decode(),
    }
    for name, text in forms.items():
        file = tmp_path / f"key-{len(text)}.pub"
        file.write_text(text, encoding="utf-8")
        givens = [str(file)] if "\n" in text.strip() else [text.strip(), str(file)]
        for given in givens:
            argv = ["audit", "verify-proof", str(tmp_path / "p.tlog-proof"), "--public-key", given]
            assert run(argv) == 0, (name, capsys.readouterr().err)
            assert capsys.readouterr().out.startswith(f"ok: entry 1 is in log {ORIGIN}")
    missing = tmp_path / "missing.vkey"
    assert (
        run(["audit", "verify-proof", str(tmp_path / "p.tlog-proof"), "--public-key", str(missing)])
        == 1
    )
    assert capsys.readouterr().err == f"error: no such file: {missing}\n"


def test_checkpoint_and_prove_write_their_files_whole_and_leave_nothing_else(
    database: Database, cli_env: CliEnv, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    fill(database, 4)
    folder = tmp_path / "handover"
    folder.mkdir()
    assert run(["audit", "checkpoint", "--out", str(folder / "checkpoint.note")]) == 0
    note = capsys.readouterr().out
    assert (folder / "checkpoint.note").read_text(encoding="utf-8") == note
    assert run(["audit", "prove", "--index", "2", "--out", str(folder / "e2.tlog-proof")]) == 0
    assert sorted(p.name for p in folder.iterdir()) == ["checkpoint.note", "e2.tlog-proof"]
    assert run(["audit", "prove", "--index", "2", "--out", str(tmp_path / "no" / "x")]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: cannot write ") and err.count("\n") == 1
