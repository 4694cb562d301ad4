"""cosignature/v1 lines: what verifies, what is ignored, and what is refused."""

from __future__ import annotations

import base64

import pytest

from gateway.audit.cosignature import (
    CosignerKey,
    cosign,
    cosignatures,
    verify_witnessed,
    with_cosignatures,
)
from gateway.audit.note import Checkpoint, NoteVerifier, key_id
from gateway.errors import IntegrityCheckFailed, InvalidInputError
from gateway.keys.signing import Ed25519Signer

ORIGIN = "example.test/log"
LOG = Ed25519Signer.generate()
W1, W2 = Ed25519Signer.generate(), Ed25519Signer.generate()
K1, K2 = CosignerKey("w1.test/a", W1.public_key), CosignerKey("w2.test/b", W2.public_key)
CHECKPOINT = Checkpoint(ORIGIN, 7, bytes(range(32)))
NOTE = CHECKPOINT.sign(LOG)
VERIFIERS = [NoteVerifier(ORIGIN, LOG.public_key)]


def cosigned(*lines: str) -> str:
    return with_cosignatures(NOTE, list(lines))


def test_a_quorum_of_trusted_witnesses_verifies_and_names_them() -> None:
    note = cosigned(
        cosign(CHECKPOINT.text(), K1.name, W1, 1700000000),
        cosign(CHECKPOINT.text(), K2.name, W2, 1700000001),
    )
    witnessed = verify_witnessed(note, VERIFIERS, [K1, K2], 2, ORIGIN)
    assert witnessed.checkpoint == CHECKPOINT
    assert {(c.witness, c.timestamp) for c in witnessed.cosignatures} == {
        (K1, 1700000000),
        (K2, 1700000001),
    }


def test_the_cosigner_key_id_uses_type_0x04_not_the_note_type_0x01() -> None:
    assert K1.key_id != key_id(K1.name, K1.public_key)
    with pytest.raises(InvalidInputError):
        CosignerKey.from_vkey(NoteVerifier(K1.name, K1.public_key).vkey())
    assert CosignerKey.from_vkey(K1.vkey()) == K1


def test_a_changed_timestamp_or_checkpoint_does_not_verify() -> None:
    line = cosign(CHECKPOINT.text(), K1.name, W1, 1700000000)
    dash, name, encoded = line.rstrip("\n").split(" ")
    raw = bytearray(base64.b64decode(encoded))
    raw[11] ^= 1  # one second later
    forged = f"{dash} {name} {base64.b64encode(bytes(raw)).decode()}\n"
    with pytest.raises(IntegrityCheckFailed):
        cosignatures(cosigned(forged), [K1])
    other = Checkpoint(ORIGIN, 8, bytes(range(32)))
    with pytest.raises(IntegrityCheckFailed):
        cosignatures(with_cosignatures(other.sign(LOG), [line]), [K1])


def test_unknown_witnesses_are_ignored_and_do_not_count_toward_the_quorum() -> None:
    stranger = Ed25519Signer.generate()
    note = cosigned(cosign(CHECKPOINT.text(), K1.name, stranger, 1700000000))
    assert cosignatures(note, [K1, K2]) == []
    with pytest.raises(IntegrityCheckFailed):
        verify_witnessed(note, VERIFIERS, [K1, K2], 1, ORIGIN)


def test_one_witness_cosigning_twice_counts_once() -> None:
    line_a = cosign(CHECKPOINT.text(), K1.name, W1, 1700000000)
    line_b = cosign(CHECKPOINT.text(), K1.name, W1, 1700000005)
    with pytest.raises(IntegrityCheckFailed):
        verify_witnessed(cosigned(line_a, line_b), VERIFIERS, [K1, K2], 2, ORIGIN)


@pytest.mark.parametrize("quorum", [0, 3])
def test_an_impossible_quorum_is_refused(quorum: int) -> None:
    with pytest.raises(InvalidInputError):
        verify_witnessed(NOTE, VERIFIERS, [K1, K2], quorum, ORIGIN)


def test_a_cosignature_is_no_substitute_for_the_log_signature() -> None:
    text, _, _sig = NOTE.partition("\n\n")
    unsigned_by_log = text + "\n\n" + cosign(CHECKPOINT.text(), K1.name, W1, 1700000000)
    with pytest.raises(IntegrityCheckFailed):
        verify_witnessed(unsigned_by_log, VERIFIERS, [K1], 1, ORIGIN)
