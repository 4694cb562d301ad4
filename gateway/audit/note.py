"""C2SP signed notes with Ed25519 signatures, and tlog-checkpoints inside them.

A signed note (c2sp.org/signed-note) is UTF-8 text ending in a newline, a blank line,
then signature lines ``— <key name> <base64(key id || signature)>``. For Ed25519 the key
id is ``SHA-256(key name || 0x0A || 0x01 || public key)[:4]``. A checkpoint
(c2sp.org/tlog-checkpoint) is a note whose text is the log's origin, the tree size and
the base64 root hash, one per line; the log signs it with the origin as key name.

Anything that fails to verify raises ``IntegrityCheckFailedError`` (chained from the reason,
which callers never see).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass

from gateway.errors import InvalidInputError
from gateway.keys.errors import IntegrityCheckFailedError
from gateway.keys.signing import PUBLIC_KEY_SIZE, SIGNATURE_SIZE, Ed25519Signer, verify

ED25519 = 0x01
"""The signed-note signature type byte of Ed25519."""

EM_DASH = "\u2014"
MAX_SIGNATURES = 64
_DECIMAL = re.compile(r"0|[1-9][0-9]*")


class NoteError(ValueError):
    """Why a note, checkpoint or verifier key was refused (kept out of caller-facing errors)."""


def check_key_name(name: str) -> str:
    """Return ``name`` if it can name a note key (non-empty, no spaces, no '+'); else NoteError."""
    if not name or any(c.isspace() or c == "+" or ord(c) < 0x20 for c in name):
        raise NoteError("key names are non-empty, without spaces or '+'")
    return name


def key_id(name: str, public_key: bytes) -> bytes:
    """Return the 4-byte signed-note key id of an Ed25519 key called ``name``."""
    return hashlib.sha256(name.encode() + b"\n" + bytes([ED25519]) + public_key).digest()[:4]


def _b64decode(text: str) -> bytes:
    try:
        return base64.b64decode(text.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError) as exc:
        raise NoteError("not standard base64") from exc


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


@dataclass(frozen=True, slots=True)
class NoteVerifier:
    """A trusted Ed25519 note key: its name and 32-byte public key."""

    name: str
    public_key: bytes

    def __post_init__(self) -> None:
        check_key_name(self.name)
        if len(self.public_key) != PUBLIC_KEY_SIZE:
            raise NoteError("an Ed25519 public key has 32 bytes")

    @property
    def key_id(self) -> bytes:
        """The 4-byte key id that signature lines of this key start with."""
        return key_id(self.name, self.public_key)

    def vkey(self) -> str:
        """Return the key as a verifier-key string ``<name>+<hex key id>+<base64(0x01 || key)>``."""
        return f"{self.name}+{self.key_id.hex()}+{_b64(bytes([ED25519]) + self.public_key)}"

    @classmethod
    def from_vkey(cls, text: str) -> NoteVerifier:
        """Parse a verifier-key string; raise InvalidInputError if malformed or inconsistent."""
        try:
            name, hex_id, encoded = text.strip().split("+", 2)
            raw = _b64decode(encoded)
            if len(raw) != 1 + PUBLIC_KEY_SIZE or raw[0] != ED25519:
                raise NoteError("not an Ed25519 verifier key")
            verifier = cls(name, raw[1:])
            if len(hex_id) != 8 or bytes.fromhex(hex_id) != verifier.key_id:
                raise NoteError("key id does not match the key")
        except (ValueError, NoteError) as exc:
            raise InvalidInputError(
                "not a verifier key of the form <name>+<key id>+<base64 key>"
            ) from exc
        return verifier


def sign_note(text: str, name: str, signer: Ed25519Signer) -> str:
    """Return ``text`` (ending in a newline) as a signed note with one signature by ``name``.

    Raises NoteError if the text or name cannot form a note.
    """
    _check_text(text)
    check_key_name(name)
    signature = signer.sign(text.encode())
    return f"{text}\n{EM_DASH} {name} {_b64(key_id(name, signer.public_key) + signature)}\n"


def _check_text(text: str) -> None:
    if not text.endswith("\n"):
        raise NoteError("note text must end in a newline")
    if any(ord(c) < 0x20 and c != "\n" for c in text):
        raise NoteError("note text must not contain control characters")


def open_note(note: str, verifiers: Sequence[NoteVerifier]) -> str:
    """Return the text of a signed note once a known key's signature on it verifies.

    Signatures by unknown keys are ignored; one failing signature by a known key rejects
    the note, as does having no verified signature. Raises IntegrityCheckFailedError.
    """
    try:
        return _open(note, verifiers)
    except NoteError as exc:
        raise IntegrityCheckFailedError() from exc


def _open(note: str, verifiers: Sequence[NoteVerifier]) -> str:
    split = note.rfind("\n\n")
    if split < 0:
        raise NoteError("no blank line before the signatures")
    text, block = note[: split + 1], note[split + 2 :]
    _check_text(text)
    if not block.endswith("\n") or any(ord(c) < 0x20 and c != "\n" for c in block):
        raise NoteError("malformed signature block")
    lines = block[:-1].split("\n")
    if len(lines) > MAX_SIGNATURES:
        raise NoteError("too many signatures")
    known = {(v.name, v.key_id): v for v in verifiers}
    verified = 0
    for line in lines:
        prefix, _, rest = line.partition(" ")
        name, _, encoded = rest.partition(" ")
        if prefix != EM_DASH or not name or " " in encoded:
            raise NoteError("malformed signature line")
        check_key_name(name)
        raw = _b64decode(encoded)
        if len(raw) < 5:
            raise NoteError("signature too short")
        verifier = known.get((name, raw[:4]))
        if verifier is None:
            continue  # someone else's signature, e.g. a witness: not ours to judge
        if len(raw) != 4 + SIGNATURE_SIZE:
            raise NoteError("wrong Ed25519 signature length")
        verify(verifier.public_key, text.encode(), raw[4:])  # IntegrityCheckFailedError
        verified += 1
    if not verified:
        raise NoteError("no signature by a known key")
    return text


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """A tree head as a tlog-checkpoint: the log's origin, its size and its root hash."""

    origin: str
    size: int
    root: bytes

    def text(self) -> str:
        """Return the checkpoint's note text (three lines, each ending in a newline)."""
        return f"{check_key_name(self.origin)}\n{self.size}\n{_b64(self.root)}\n"

    def sign(self, signer: Ed25519Signer) -> str:
        """Return the checkpoint as a signed note, signed with ``signer`` named by the origin."""
        return sign_note(self.text(), self.origin, signer)


def parse_checkpoint(text: str) -> Checkpoint:
    """Return the checkpoint in a (verified) note text; raise NoteError if it is not one.

    Extension lines after the root are allowed by the format and ignored.
    """
    lines = text.split("\n")
    if len(lines) < 4 or lines[-1] != "" or any(not line for line in lines[:-1]):
        raise NoteError("a checkpoint has at least three non-empty lines")
    origin, size, root_b64 = lines[0], lines[1], lines[2]
    if not _DECIMAL.fullmatch(size):
        raise NoteError("tree size must be a decimal without leading zeros")
    root = _b64decode(root_b64)
    if len(root) != 32:
        raise NoteError("root hash must be 32 bytes")
    return Checkpoint(origin=origin, size=int(size), root=root)


def verify_checkpoint(
    note: str, verifiers: Sequence[NoteVerifier], origin: str | None = None
) -> Checkpoint:
    """Return the checkpoint in a signed note after checking its signature (and origin).

    Raises IntegrityCheckFailedError if the note does not verify, is not a checkpoint, or
    names another origin than the one expected.
    """
    text = open_note(note, verifiers)
    try:
        checkpoint = parse_checkpoint(text)
    except NoteError as exc:
        raise IntegrityCheckFailedError() from exc
    if origin is not None and checkpoint.origin != origin:
        raise IntegrityCheckFailedError() from NoteError("checkpoint of another log")
    return checkpoint
