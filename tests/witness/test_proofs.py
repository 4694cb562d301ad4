"""Offline proof bundles carry the witnesses' cosignatures; verify-proof can demand a quorum."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from gateway.audit import checkpoints
from gateway.audit.cosignature import CosignerKey
from gateway.cli import run
from gateway.db import Database
from gateway.keys.signing import Ed25519Signer
from tests.audit.conftest import ORIGIN, CliEnv, fill
from tests.witness.conftest import WitnessProcess, log_vkey


@pytest.fixture
def bundle(
    database: Database,
    cli_env: CliEnv,
    start_witnesses: Callable[[int], list[WitnessProcess]],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> tuple[Path, list[WitnessProcess]]:
    """A proof bundle of entry 2, in a log of 6 entries that two witnesses cosigned."""
    procs = start_witnesses(2)
    monkeypatch.setenv("GATEWAY_WITNESSES", json.dumps([p.setting for p in procs]))
    fill(database, 6)
    ctx = cli_env.context()
    assert ctx.witnessing is not None
    ctx.witnessing.run_once()
    ctx.witnessing.stop()
    checkpoints.attach_witnesses(ctx.db, None)
    ctx.db.dispose()
    assert run(["audit", "prove", "--index", "2", "--output", "e2.tlog-proof"]) == 0
    capsys.readouterr()
    return Path("e2.tlog-proof"), procs


def verify_proof(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    code = run(["audit", "verify-proof", *args])
    captured = capsys.readouterr()
    return code, captured.err if code else captured.out


def test_a_proof_bundle_carries_cosignatures_that_verify_proof_checks_with_a_quorum(
    bundle: tuple[Path, list[WitnessProcess]],
    signer: Ed25519Signer,
    capsys: pytest.CaptureFixture[str],
) -> None:
    path, procs = bundle
    keys = [p.key.vkey() for p in procs]
    base = [str(path), "--public-key", log_vkey(signer)]
    code, out = verify_proof(capsys, *base, "--witness", keys[0], "--witness", keys[1])
    assert code == 0, out
    cosigned = out.splitlines()[0].split(", cosigned by ")[1]
    assert set(cosigned.split(", ")) == {"witness.politie.test/riec", "witness.om.test/riec"}
    code, out = verify_proof(capsys, *base, "--witness", keys[1], "--quorum", "1")
    assert code == 0 and "cosigned by witness.om.test/riec" in out


def test_verify_proof_refuses_a_bundle_without_the_quorum_of_cosignatures(
    bundle: tuple[Path, list[WitnessProcess]],
    signer: Ed25519Signer,
    capsys: pytest.CaptureFixture[str],
) -> None:
    path, procs = bundle
    text = path.read_text()
    stripped = Path("stripped.tlog-proof")
    stripped.write_text("".join(line for line in text.splitlines(True) if "witness." not in line))
    base = ["--public-key", log_vkey(signer)]
    keys = [p.key.vkey() for p in procs]
    assert verify_proof(capsys, str(stripped), *base)[0] == 0  # the log's signature alone holds
    code, err = verify_proof(capsys, str(stripped), *base, "--witness", keys[0])
    assert code == 1 and "do not trust it" in err
    stranger = Ed25519Signer.generate()
    other = CosignerKey("witness.stranger.test/x", stranger.public_key).vkey()
    code, err = verify_proof(capsys, str(path), *base, "--witness", keys[0], "--witness", other)
    assert code == 1 and "do not trust it" in err  # quorum 2 of these two: only one cosigned
    code, err = verify_proof(capsys, str(path), *base, "--witness", keys[0], "--quorum", "2")
    assert code == 1 and "--quorum cannot exceed" in err and err.count("\n") == 1
    code, err = verify_proof(capsys, str(path), *base, "--witness", "not-a-key")
    assert code == 1 and err.startswith("error:") and err.count("\n") == 1


def test_the_checkpoint_endpoint_and_inclusion_proofs_serve_the_cosigned_note(
    bundle: tuple[Path, list[WitnessProcess]],
) -> None:
    path, procs = bundle
    text = path.read_text()
    note = text.split("\n\n", 1)[1]
    assert note.startswith(ORIGIN + "\n")
    assert sum(p.key.name in note for p in procs) == 2
