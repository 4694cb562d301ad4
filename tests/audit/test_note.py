"""Signed notes and checkpoints: an independent verifier from the C2SP specs, and Go's example.

``independent_checkpoint_check`` is written from c2sp.org/signed-note and
c2sp.org/tlog-checkpoint alone and uses the ``cryptography`` package directly, so it
shares no parsing or key-id code with ``gateway.audit.note``.
"""

from __future__ import annotations

import base64
import hashlib
from datetime import timedelta

import pytest

# An independent verifier must not share the gateway's crypto wrapper.
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PublicKey,
)
from pydantic import ValidationError
from sqlmodel import select

from gateway.audit import checkpoints, log
from gateway.audit.errors import AuditLogCorruptError
from gateway.audit.note import (
    Checkpoint,
    NoteError,
    NoteVerifier,
    key_id,
    open_note,
    parse_checkpoint,
    sign_note,
    verify_checkpoint,
)
from gateway.clock import FixedClock
from gateway.config import Settings
from gateway.db import Database
from gateway.errors import IntegrityCheckFailed, InvalidInputError
from gateway.keys.signing import Ed25519Signer
from gateway.models.audit import AuditNode
from tests.audit.conftest import ORIGIN, fill
from tests.conftest import START

# golang.org/x/mod/sumdb/note, package documentation: a key pair and a note it signed.
GO_SKEY = "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz"
GO_VKEY = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"
GO_TEXT = (
    "If you think cryptography is the answer to your problem,\n"
    "then you don't know what your problem is.\n"
)
GO_NOTE = (
    GO_TEXT + "\n\u2014 PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2"
    "pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n"
)


def independent_checkpoint_check(
    note: str, key_name: str, public_key: bytes
) -> tuple[str, int, bytes]:
    """Verify a checkpoint note the way the specs describe; return (origin, size, root)."""
    note.encode("utf-8")  # must be valid UTF-8
    assert all(ord(c) >= 0x20 or c == "\n" for c in note), "control characters"
    cut = note.rindex("\n\n")  # the text is separated from signatures by the last empty line
    text, signatures = note[: cut + 1], note[cut + 2 :]
    assert signatures.endswith("\n")
    expected_id = hashlib.sha256(key_name.encode() + b"\x0a" + b"\x01" + public_key).digest()[:4]
    verified = 0
    for line in signatures[:-1].split("\n"):
        dash, name, blob = line.split(" ")
        assert dash == "\u2014"
        raw = base64.b64decode(blob, validate=True)
        if name == key_name and raw[:4] == expected_id:
            Ed25519PublicKey.from_public_bytes(public_key).verify(raw[4:], text.encode())
            verified += 1
    assert verified == 1, "no signature by the log's key"
    lines = text.split("\n")
    assert lines[-1] == "" and len(lines) >= 4 and all(lines[:-1])
    origin, size, root = lines[0], lines[1], base64.b64decode(lines[2], validate=True)
    assert size == str(int(size))  # decimal, no leading zeros
    assert len(root) == 32
    return origin, int(size), root


def test_go_example_key_id_verifier_key_and_signature() -> None:
    verifier = NoteVerifier.from_vkey(GO_VKEY)
    assert verifier.name == "PeterNeumann"
    assert verifier.key_id.hex() == "c74f20a3"
    assert verifier.vkey() == GO_VKEY
    assert open_note(GO_NOTE, [verifier]) == GO_TEXT
    seed = base64.b64decode(GO_SKEY.split("+", 4)[4])
    assert seed[0] == 1
    signer = Ed25519Signer.from_private_bytes(seed[1:])
    assert signer.public_key == verifier.public_key
    assert sign_note(GO_TEXT, "PeterNeumann", signer) == GO_NOTE  # Ed25519 is deterministic


@pytest.mark.parametrize(
    "note",
    [
        GO_NOTE.replace("cryptography", "cryptographY"),
        GO_NOTE.replace("x08go", "x08gp"),
        GO_NOTE.replace("\n\n", "\n"),
        GO_NOTE[:-1],
        GO_NOTE.replace("PeterNeumann", "PeterNeumann2"),  # unknown key only: rejected
        GO_NOTE.replace("problem,\n", "problem,\x01\n"),
    ],
)
def test_a_note_that_does_not_verify_is_refused(note: str) -> None:
    with pytest.raises(IntegrityCheckFailed):
        open_note(note, [NoteVerifier.from_vkey(GO_VKEY)])


def test_signatures_of_unknown_keys_are_ignored() -> None:
    witness = Ed25519Signer.generate()
    cosigned = sign_note(GO_TEXT, "witness.example", witness)
    note = GO_NOTE + cosigned.split("\n\n", 1)[1]
    assert open_note(note, [NoteVerifier.from_vkey(GO_VKEY)]) == GO_TEXT


@pytest.mark.parametrize(
    "vkey",
    [
        "PeterNeumann+c74f20a4+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",  # wrong id
        "PeterNeumann+c74f20a3+AhpC2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",  # wrong type
        "Peter Neumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",
        "PeterNeumann+c74f20a3",
        "PeterNeumann+c74f20a3+!!!!",
    ],
)
def test_malformed_verifier_keys_are_refused(vkey: str) -> None:
    with pytest.raises(InvalidInputError):
        NoteVerifier.from_vkey(vkey)


def test_a_checkpoint_verifies_with_the_independent_verifier(database: Database) -> None:
    fill(database, 13)
    signer = Ed25519Signer.generate()
    row = checkpoints.current_checkpoint(database, FixedClock(START), signer, ORIGIN)
    with database.read() as session:
        root = log.read_head(session).root
    assert independent_checkpoint_check(row.note, ORIGIN, signer.public_key) == (ORIGIN, 13, root)
    assert row.key_id == key_id(ORIGIN, signer.public_key).hex()
    assert row.note.startswith(
        f"{ORIGIN}\n13\n{base64.b64encode(root).decode()}\n\n\u2014 {ORIGIN} "
    )
    assert verify_checkpoint(row.note, [NoteVerifier(ORIGIN, signer.public_key)], ORIGIN) == (
        Checkpoint(ORIGIN, 13, root)
    )
    with pytest.raises(IntegrityCheckFailed):
        verify_checkpoint(row.note, [NoteVerifier(ORIGIN, signer.public_key)], "other.example/log")


def test_checkpoints_are_reused_until_the_log_grows_and_stay_consistent(
    database: Database,
) -> None:
    signer, clock = Ed25519Signer.generate(), FixedClock(START)
    empty = checkpoints.current_checkpoint(database, clock, signer, ORIGIN)
    assert parse_checkpoint(empty.note.split("\n\n")[0] + "\n").size == 0
    fill(database, 3)
    first = checkpoints.current_checkpoint(database, clock, signer, ORIGIN)
    clock.advance(timedelta(minutes=1))
    assert checkpoints.current_checkpoint(database, clock, signer, ORIGIN).note == first.note
    fill(database, 2, start=3)
    second = checkpoints.current_checkpoint(database, clock, signer, ORIGIN)
    assert (first.tree_size, second.tree_size) == (3, 5)
    older = checkpoints.create_checkpoint(database, clock, signer, ORIGIN, 4)
    assert independent_checkpoint_check(older.note, ORIGIN, signer.public_key)[1] == 4


def test_no_checkpoint_is_signed_over_a_tree_that_contradicts_an_earlier_one(
    database: Database,
) -> None:
    signer, clock = Ed25519Signer.generate(), FixedClock(START)
    fill(database, 4)
    checkpoints.current_checkpoint(database, clock, signer, ORIGIN)
    with database.write() as session:  # someone rewrites a stored subtree hash
        node = session.exec(select(AuditNode).where(AuditNode.level == 2)).first()
        assert node is not None
        node.hash = bytes(32)
        session.add(node)
    fill(database, 1, start=4)
    with pytest.raises(AuditLogCorruptError, match="not consistent"):
        checkpoints.current_checkpoint(database, clock, signer, ORIGIN)


@pytest.mark.parametrize(
    "text",
    ["o\n1\n", "o\n01\nAAAA\n", "o\n1\nAAAA\n", "\n1\n" + "A" * 43 + "=\n", "o\n1\n" + "A" * 44],
)
def test_malformed_checkpoint_texts_are_refused(text: str) -> None:
    with pytest.raises(NoteError):
        parse_checkpoint(text)


@pytest.mark.parametrize("origin", ["", "has space", "a+b", "x" * 201, "line\nbreak"])
def test_the_log_origin_setting_must_be_a_note_key_name(origin: str) -> None:
    with pytest.raises(ValidationError):
        Settings(log_origin=origin)
    assert Settings.model_fields["log_origin"].default == "riec-gateway.localhost/audit"
