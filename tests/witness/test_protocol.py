"""A real ``gateway witness serve`` process speaks C2SP tlog-witness add-checkpoint exactly.

Checkpoints come from an in-memory tree signed with the tests' log key; no database.
Cosignatures are checked with code written here from the C2SP text, not the gateway's.
"""

from __future__ import annotations

import base64
import hashlib
import json
import time
from pathlib import Path

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PublicKey,
)

from gateway.audit.merkle import consistency_proof, leaf_hash, root_from_leaf_hashes
from gateway.audit.note import Checkpoint
from gateway.cli import run
from gateway.keys.signing import Ed25519Signer
from tests.audit.conftest import ORIGIN
from tests.witness.conftest import WitnessProcess, log_vkey

LEAVES = [leaf_hash(f"entry {i}".encode()) for i in range(40)]


def signed(signer: Ed25519Signer, size: int, leaves: list[bytes] = LEAVES) -> str:
    """The log's signed checkpoint of the first ``size`` leaves."""
    return Checkpoint(ORIGIN, size, root_from_leaf_hashes(leaves[:size])).sign(signer)


def body(old: int, proof: list[bytes], note: str) -> bytes:
    lines = [f"old {old}"] + [base64.b64encode(h).decode() for h in proof]
    return ("\n".join(lines) + "\n\n" + note).encode()


def add(witness: WitnessProcess, content: bytes) -> httpx.Response:
    return httpx.post(f"{witness.url}/add-checkpoint", content=content, timeout=5)


def grow(witness: WitnessProcess, signer: Ed25519Signer, old: int, new: int) -> httpx.Response:
    proof = consistency_proof(old, LEAVES[:new]) if old else []
    return add(witness, body(old, proof, signed(signer, new)))


def independently_verified_timestamp(note: str, line: str, witness: WitnessProcess) -> int:
    """Check a cosignature/v1 line exactly as c2sp.org/tlog-cosignature defines it."""
    assert line.endswith("\n") and line.count("\n") == 1
    dash, name, encoded = line[:-1].split(" ")
    assert dash == "\u2014" and name == witness.key.name
    raw = base64.b64decode(encoded, validate=True)
    assert len(raw) == 4 + 8 + 64
    public = witness.key.public_key
    assert raw[:4] == hashlib.sha256(name.encode() + b"\n\x04" + public).digest()[:4]
    timestamp = int.from_bytes(raw[4:12], "big")
    text = note[: note.index("\n\n") + 1]  # the checkpoint body, without signature lines
    message = b"cosignature/v1\ntime " + str(timestamp).encode() + b"\n" + text.encode()
    Ed25519PublicKey.from_public_bytes(public).verify(raw[12:], message)  # raises if bad
    return timestamp


def test_a_first_checkpoint_is_cosigned_with_a_cosignature_v1_that_independent_code_verifies(
    witness: WitnessProcess, signer: Ed25519Signer
) -> None:
    note = signed(signer, 5)
    response = add(witness, body(0, [], note))
    assert response.status_code == 200
    timestamp = independently_verified_timestamp(note, response.text, witness)
    assert abs(timestamp - time.time()) < 120


def test_growth_with_a_valid_consistency_proof_is_cosigned_and_remembered(
    witness: WitnessProcess, signer: Ed25519Signer
) -> None:
    assert grow(witness, signer, 0, 5).status_code == 200
    response = grow(witness, signer, 5, 13)
    assert response.status_code == 200
    independently_verified_timestamp(signed(signer, 13), response.text, witness)
    latest = httpx.get(f"{witness.url}/checkpoints/{ORIGIN}", timeout=5)
    assert latest.status_code == 200
    assert latest.text.startswith(signed(signer, 13).split("\n\n")[0] + "\n\n")
    assert response.text in latest.text  # the witness serves what it cosigned
    state = json.loads((witness.folder / "state.json").read_text())
    assert state["logs"][ORIGIN]["size"] == 13


def test_a_wrong_old_size_gets_409_with_the_cosigned_size_as_text_x_tlog_size(
    witness: WitnessProcess, signer: Ed25519Signer
) -> None:
    assert grow(witness, signer, 0, 8).status_code == 200
    for old in (0, 5):
        response = grow(witness, signer, old, 12)
        assert response.status_code == 409
        assert response.headers["content-type"].startswith("text/x.tlog.size")
        assert response.text == "8\n"


def test_a_rewritten_history_is_refused_422_and_never_cosigned(
    witness: WitnessProcess, signer: Ed25519Signer
) -> None:
    assert grow(witness, signer, 0, 8).status_code == 200
    forged = list(LEAVES)
    forged[3] = leaf_hash(b"rewritten")
    # The forger even signs with the log's key: the proof still cannot link the two trees.
    for proof in (consistency_proof(8, forged[:12]), consistency_proof(8, LEAVES[:12])):
        response = add(witness, body(8, proof, signed(signer, 12, forged)))
        assert response.status_code == 422
    state = json.loads((witness.folder / "state.json").read_text())
    assert state["logs"][ORIGIN]["size"] == 8


def test_the_same_size_with_another_root_is_a_409_conflict(
    witness: WitnessProcess, signer: Ed25519Signer
) -> None:
    assert grow(witness, signer, 0, 8).status_code == 200
    forged = list(LEAVES)
    forged[2] = leaf_hash(b"split view")
    response = add(witness, body(8, [], signed(signer, 8, forged)))
    assert response.status_code == 409
    assert not response.headers["content-type"].startswith("text/x.tlog.size")  # not a size
    again = add(witness, body(8, [], signed(signer, 8)))  # the same checkpoint: cosigned again
    assert again.status_code == 200


def test_unknown_log_unknown_key_bad_old_and_garbage_get_the_spec_statuses(
    witness: WitnessProcess, signer: Ed25519Signer
) -> None:
    other_log = Checkpoint("other.test/log", 3, root_from_leaf_hashes(LEAVES[:3])).sign(signer)
    assert add(witness, body(0, [], other_log)).status_code == 404
    stranger = Ed25519Signer.generate()
    assert add(witness, body(0, [], signed(stranger, 3))).status_code == 403
    assert add(witness, body(9, [], signed(signer, 3))).status_code == 400
    assert add(witness, b"hello").status_code == 400
    assert add(witness, b"old 01\n\n" + signed(signer, 3).encode()).status_code == 400
    proof = [b"\0" * 32]
    assert add(witness, body(0, proof, signed(signer, 3))).status_code == 422
    assert httpx.get(f"{witness.url}/checkpoints/{ORIGIN}", timeout=5).status_code == 404


def test_a_restarted_witness_keeps_its_state(
    witness: WitnessProcess, signer: Ed25519Signer
) -> None:
    assert grow(witness, signer, 0, 8).status_code == 200
    witness.stop()
    witness.start()
    assert grow(witness, signer, 0, 9).text == "8\n"
    assert grow(witness, signer, 8, 9).status_code == 200


def test_witness_init_refuses_a_second_key_and_bad_input(
    tmp_path: Path, signer: Ed25519Signer, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "w"
    args = ["witness", "init", "--dir", str(folder), "--name", "w.test/x"]
    assert run([*args, "--log", log_vkey(signer)]) == 0
    assert (folder / "witness.key").stat().st_mode & 0o077 == 0
    capsys.readouterr()
    assert run([*args, "--log", log_vkey(signer)]) == 1
    assert "already holds a witness key" in capsys.readouterr().err
    assert (
        run(["witness", "init", "--dir", str(tmp_path / "v"), "--name", "a b", "--log", "x"]) == 1
    )
    err = capsys.readouterr().err
    assert err.startswith("error:") and err.count("\n") == 1


def test_a_witness_that_lost_its_state_refuses_to_start_over(
    tmp_path: Path, signer: Ed25519Signer, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "w"
    assert (
        run(
            [
                "witness",
                "init",
                "--dir",
                str(folder),
                "--name",
                "w.test/x",
                "--log",
                log_vkey(signer),
            ]
        )
        == 0
    )
    assert run(["witness", "verifier-key", "--dir", str(folder)]) == 0
    capsys.readouterr()
    (folder / "state.json").unlink()
    assert run(["witness", "verifier-key", "--dir", str(folder)]) == 1
    err = capsys.readouterr().err
    assert "state" in err and "missing" in err and err.count("\n") == 1


def test_a_witness_trusts_a_rotated_log_key_after_add_log_and_keeps_its_state(
    witness: WitnessProcess, signer: Ed25519Signer, capsys: pytest.CaptureFixture[str]
) -> None:
    assert grow(witness, signer, 0, 8).status_code == 200
    rotated = Ed25519Signer.generate()
    assert grow(witness, rotated, 8, 12).status_code == 403  # not yet trusted
    assert (
        run(["witness", "add-log", "--dir", str(witness.folder), "--log", log_vkey(rotated)]) == 0
    )
    assert f"{ORIGIN}: 2 key(s)" in capsys.readouterr().out
    witness.stop()
    witness.start()
    assert grow(witness, rotated, 8, 12).status_code == 200  # continues from size 8
    assert grow(witness, signer, 12, 13).status_code == 200  # the old key still counts
