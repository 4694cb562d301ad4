"""C2SP tlog-cosignature ``cosignature/v1`` (Ed25519): witnesses countersigning checkpoints.

A cosignature is a signed-note signature line ``— <witness name> <base64(key id ||
timestamp || signature)>`` where the key id is ``SHA-256(name || 0x0A || 0x04 || public
key)[:4]``, the timestamp a big-endian u64 of POSIX seconds, and the Ed25519 signature is
over ``"cosignature/v1\\ntime <timestamp>\\n"`` followed by the checkpoint's note text. It
states that, at that time, this was the largest consistent tree the witness had seen.

A witnessed checkpoint is the log's signed note with cosignature lines appended; a
verifier counts the distinct trusted witnesses whose cosignature verifies and requires a
quorum. Failures raise ``IntegrityCheckFailedError`` (chained from the reason).
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Sequence
from dataclasses import dataclass

from gateway.audit.note import (
    EM_DASH,
    MAX_SIGNATURES,
    Checkpoint,
    NoteError,
    NoteVerifier,
    check_key_name,
    verify_checkpoint,
)
from gateway.errors import InvalidInputError
from gateway.keys.errors import IntegrityCheckFailedError
from gateway.keys.signing import PUBLIC_KEY_SIZE, SIGNATURE_SIZE, Ed25519Signer, sha256, verify

COSIGNATURE_V1 = 0x04
"""The signed-note signature type byte of an Ed25519 cosignature/v1."""

HEADER = "cosignature/v1\n"
_LINE_SIZE = 4 + 8 + SIGNATURE_SIZE
_MAX_TIMESTAMP = 2**63 - 1


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def cosigner_key_id(name: str, public_key: bytes) -> bytes:
    """Return the 4-byte key id of the Ed25519 cosigner ``name`` with ``public_key``."""
    return sha256(name.encode() + b"\n" + bytes([COSIGNATURE_V1]) + public_key)[:4]


def signed_message(checkpoint_text: str, timestamp: int) -> bytes:
    """Return the bytes a cosignature/v1 signs: header, time line, the checkpoint's text."""
    return f"{HEADER}time {timestamp}\n{checkpoint_text}".encode()


@dataclass(frozen=True, slots=True)
class CosignerKey:
    """A trusted witness: its name and 32-byte Ed25519 public key."""

    name: str
    public_key: bytes

    def __post_init__(self) -> None:
        check_key_name(self.name)
        if len(self.public_key) != PUBLIC_KEY_SIZE:
            raise NoteError("an Ed25519 public key has 32 bytes")

    @property
    def key_id(self) -> bytes:
        """The 4-byte key id that this witness's cosignature lines start with."""
        return cosigner_key_id(self.name, self.public_key)

    def vkey(self) -> str:
        """Return the key as a verifier key ``<name>+<hex key id>+<base64(0x04 || key)>``."""
        raw = bytes([COSIGNATURE_V1]) + self.public_key
        return f"{self.name}+{self.key_id.hex()}+{_b64(raw)}"

    @classmethod
    def from_vkey(cls, text: str) -> CosignerKey:
        """Parse a cosigner verifier key; raise InvalidInputError if malformed or inconsistent."""
        try:
            name, hex_id, encoded = text.strip().split("+", 2)
            raw = base64.b64decode(encoded.encode("ascii"), validate=True)
            if len(raw) != 1 + PUBLIC_KEY_SIZE or raw[0] != COSIGNATURE_V1:
                raise NoteError("not an Ed25519 cosignature/v1 verifier key")
            key = cls(name, raw[1:])
            if len(hex_id) != 8 or bytes.fromhex(hex_id) != key.key_id:
                raise NoteError("key id does not match the key")
        except (ValueError, binascii.Error, UnicodeEncodeError, NoteError) as exc:
            raise InvalidInputError(
                "not a witness key of the form <name>+<key id>+<base64(0x04 || key)>"
            ) from exc
        return key


def cosign(checkpoint_text: str, name: str, signer: Ed25519Signer, timestamp: int) -> str:
    """Return the cosignature line (ending in a newline) of ``signer`` called ``name``."""
    if not 0 <= timestamp <= _MAX_TIMESTAMP:
        raise NoteError("timestamp out of range")
    signature = signer.sign(signed_message(checkpoint_text, timestamp))
    raw = cosigner_key_id(name, signer.public_key) + timestamp.to_bytes(8, "big") + signature
    return f"{EM_DASH} {check_key_name(name)} {_b64(raw)}\n"


@dataclass(frozen=True, slots=True)
class Cosignature:
    """A verified cosignature: which witness, when, and its signature line."""

    witness: CosignerKey
    timestamp: int
    line: str


def split_note(note: str) -> tuple[str, list[str]]:
    """Return a signed note's text and its signature lines (each without its newline).

    Raises NoteError if there is no signature block.
    """
    at = note.rfind("\n\n")
    if at < 0 or not note.endswith("\n"):
        raise NoteError("no blank line before the signatures")
    lines = note[at + 2 : -1].split("\n")
    if len(lines) > MAX_SIGNATURES:
        raise NoteError("too many signatures")
    return note[: at + 1], lines


def cosignatures(note: str, witnesses: Sequence[CosignerKey]) -> list[Cosignature]:
    """Return the verified cosignatures of ``witnesses`` on a note, one per witness at most.

    Lines of other keys are ignored; a line of a trusted witness that does not verify
    raises IntegrityCheckFailedError, as does a malformed note.
    """
    try:
        return _cosignatures(note, witnesses)
    except NoteError as exc:
        raise IntegrityCheckFailedError() from exc


def _cosignatures(note: str, witnesses: Sequence[CosignerKey]) -> list[Cosignature]:
    text, lines = split_note(note)
    known = {(w.name, w.key_id): w for w in witnesses}
    found: dict[CosignerKey, Cosignature] = {}
    for line in lines:
        prefix, _, rest = line.partition(" ")
        name, _, encoded = rest.partition(" ")
        if prefix != EM_DASH or not name or not encoded or " " in encoded:
            raise NoteError("malformed signature line")
        try:
            raw = base64.b64decode(encoded.encode("ascii"), validate=True)
        except (binascii.Error, UnicodeEncodeError) as exc:
            raise NoteError("not standard base64") from exc
        witness = known.get((name, raw[:4]))
        if witness is None:
            continue  # the log's own signature, or a witness we do not trust
        if len(raw) != _LINE_SIZE:
            raise NoteError("wrong cosignature length")
        timestamp = int.from_bytes(raw[4:12], "big")
        if timestamp > _MAX_TIMESTAMP:
            raise NoteError("timestamp out of range")
        verify(witness.public_key, signed_message(text, timestamp), raw[12:])
        found.setdefault(witness, Cosignature(witness, timestamp, line + "\n"))
    return list(found.values())


@dataclass(frozen=True, slots=True)
class WitnessedCheckpoint:
    """A checkpoint whose log signature verified, with the cosignatures that verified."""

    checkpoint: Checkpoint
    cosignatures: tuple[Cosignature, ...]


def verify_witnessed(
    note: str,
    log_verifiers: Sequence[NoteVerifier],
    witnesses: Sequence[CosignerKey],
    quorum: int,
    origin: str | None = None,
) -> WitnessedCheckpoint:
    """Return the checkpoint once the log's signature and ``quorum`` cosignatures verify.

    Raises InvalidInputError for a quorum below one or above the number of witnesses,
    IntegrityCheckFailedError if a signature fails or too few trusted witnesses cosigned.
    """
    if not 1 <= quorum <= len({w.key_id for w in witnesses}):
        raise InvalidInputError("the quorum must be between 1 and the number of witnesses")
    checkpoint = verify_checkpoint(note, log_verifiers, origin)
    found = cosignatures(note, witnesses)
    if len(found) < quorum:
        raise IntegrityCheckFailedError() from NoteError("too few witnesses cosigned")
    return WitnessedCheckpoint(checkpoint, tuple(found))


def with_cosignatures(note: str, lines: Sequence[str]) -> str:
    """Return ``note`` with the cosignature ``lines`` appended (each ending in a newline)."""
    present = set(split_note(note)[1])
    extra = [line for line in dict.fromkeys(lines) if line.rstrip("\n") not in present]
    return note + "".join(extra)
