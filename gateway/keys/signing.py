"""Ed25519 signing recipes: sign checkpoints and manifests, verify them offline.

Verification failures of any kind raise ``IntegrityCheckFailedError``, chained from the
underlying cause, so callers cannot tell which check failed.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import hashlib
import os
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from gateway.errors import InvalidInputError
from gateway.keys.errors import IntegrityCheckFailedError

PUBLIC_KEY_SIZE = 32
SIGNATURE_SIZE = 64


class Ed25519Signer:
    """An Ed25519 private key that signs; ``repr`` never shows key material."""

    def __init__(self, private: Ed25519PrivateKey) -> None:
        self._private = private
        self.public_key = private.public_key().public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw
        )

    @classmethod
    def generate(cls) -> Ed25519Signer:
        """Return a signer with a fresh random key."""
        return cls(Ed25519PrivateKey.generate())

    @classmethod
    def from_private_bytes(cls, raw: bytes) -> Ed25519Signer:
        """Return the signer for a 32-byte raw private key; IntegrityCheckFailedError if bad."""
        try:
            return cls(Ed25519PrivateKey.from_private_bytes(raw))
        except ValueError as exc:
            raise IntegrityCheckFailedError() from exc

    def private_bytes(self) -> bytes:
        """Return the raw 32-byte private key, for the key ring to wrap and store."""
        return self._private.private_bytes(
            serialization.Encoding.Raw,
            serialization.PrivateFormat.Raw,
            serialization.NoEncryption(),
        )

    @property
    def fingerprint(self) -> str:
        """Return the hex SHA-256 of the public key (a stable, public key id)."""
        return hashlib.sha256(self.public_key).hexdigest()

    def sign(self, message: bytes) -> bytes:
        """Return the 64-byte Ed25519 signature of ``message``."""
        return self._private.sign(message)

    def __repr__(self) -> str:
        return f"Ed25519Signer(fingerprint={self.fingerprint[:16]}...)"


def sha256(data: bytes) -> bytes:
    """Return the SHA-256 digest of ``data`` (note and cosigner key ids are cut from it)."""
    return hashlib.sha256(data).digest()


def verify(public_key: bytes, message: bytes, signature: bytes) -> None:
    """Check an Ed25519 signature; raise IntegrityCheckFailedError if it does not verify."""
    try:
        Ed25519PublicKey.from_public_bytes(public_key).verify(signature, message)
    except (InvalidSignature, ValueError) as exc:
        raise IntegrityCheckFailedError() from exc


@dataclass(frozen=True, slots=True)
class SigningPublicKey:
    """One version of the gateway's signing key, public half only."""

    version: int
    public_key: bytes
    created_at: datetime
    active: bool

    @property
    def fingerprint(self) -> str:
        """Return the hex SHA-256 of the public key (the same as ``Ed25519Signer.fingerprint``)."""
        return hashlib.sha256(self.public_key).hexdigest()

    def verify(self, message: bytes, signature: bytes) -> None:
        """Check ``signature`` under this key; raise IntegrityCheckFailedError if it is bad."""
        verify(self.public_key, message, signature)


# ----- public keys as people give them ---------------------------------------------------

MAX_KEY_FILE_BYTES = 64 * 1024
_ED25519_ALGORITHM = 0x01  # the signature-type byte of a C2SP signed-note Ed25519 key
_KEY_FILE_SUFFIXES = frozenset({".pub", ".vkey", ".key", ".txt", ".pem"})
KEY_FORMS = (
    "a verifier key (name+id+base64), a line of `gateway keys public`, or 32 bytes as hex or base64"
)


@dataclass(frozen=True, slots=True)
class GivenPublicKey:
    """An Ed25519 public key as a user gave it: the raw key, and its name if it had one."""

    public_key: bytes
    name: str | None = None


def _note_key_id(name: str, public_key: bytes) -> bytes:
    return hashlib.sha256(
        name.encode() + b"\n" + bytes([_ED25519_ALGORITHM]) + public_key
    ).digest()[:4]


def _raw_key(token: str) -> bytes | None:
    """Return the 32 bytes ``token`` spells as hex or standard base64, else None."""
    with contextlib.suppress(ValueError):
        raw = bytes.fromhex(token)
        if len(raw) == PUBLIC_KEY_SIZE:
            return raw
    with contextlib.suppress(binascii.Error, ValueError):
        raw = base64.b64decode(token, validate=True)
        if len(raw) == PUBLIC_KEY_SIZE:
            return raw
    return None


def _verifier_key(token: str) -> GivenPublicKey | None:
    """Return the key of a C2SP verifier key ``name+hexid+base64(0x01||key)``, else None.

    Raises InvalidInputError when it has that shape but its id does not match its key.
    """
    parts = token.split("+", 2)
    if len(parts) != 3 or len(parts[1]) != 8 or not parts[0]:
        return None
    name, hex_id, encoded = parts
    try:
        raw = base64.b64decode(encoded, validate=True)
        given_id = bytes.fromhex(hex_id)
    except (binascii.Error, ValueError):
        return None
    if len(raw) != 1 + PUBLIC_KEY_SIZE or raw[0] != _ED25519_ALGORITHM:
        return None
    if _note_key_id(name, raw[1:]) != given_id:
        raise InvalidInputError(f"the verifier key {name}+{hex_id}+... does not match its key id")
    return GivenPublicKey(raw[1:], name)


def _listed_keys(text: str) -> list[tuple[GivenPublicKey, bool]]:
    """Return the keys of ``gateway keys public`` lines (``vN ed25519 BASE64 ...``), active flag."""
    found = []
    for line in text.splitlines():
        words = line.split()
        if len(words) >= 3 and words[1].lower() == "ed25519":
            raw = _raw_key(words[2])
            if raw is not None:
                found.append((GivenPublicKey(raw), words[-1] == "active"))
    return found


def parse_public_key(text: str) -> GivenPublicKey:
    """Return the Ed25519 public key written in ``text``, in any form the gateway prints.

    Accepts a C2SP verifier key (``name+id+base64``, its id checked), the output of
    ``gateway keys public`` (the active key when it lists several), the ``.pub`` file of
    ``gateway extract run --out`` (hex), and 32 bytes as hex or base64; surrounding
    whitespace and ``#`` comment lines are ignored. Raises InvalidInputError otherwise.
    """
    lines = [
        ln.strip() for ln in text.splitlines() if ln.strip() and not ln.lstrip().startswith("#")
    ]
    if len(lines) == 1:
        token = lines[0]
        verifier = _verifier_key(token)
        if verifier is not None:
            return verifier
        raw = _raw_key(token) or _raw_key("".join(token.split()))
        if raw is not None:
            return GivenPublicKey(raw)
    listed = _listed_keys("\n".join(lines))
    if len(listed) == 1:
        return listed[0][0]
    active = [key for key, is_active in listed if is_active]
    if len(active) == 1:
        return active[0]
    raise InvalidInputError(f"not a public key: give {KEY_FORMS}")


def _looks_like_path(value: str) -> bool:
    """Return True if ``value``, which is no key, was meant as a file name."""
    if "\n" in value or len(value) > 4096:
        return False
    return (
        os.sep in value
        or value.startswith(("~", "."))
        or Path(value).suffix.lower() in _KEY_FILE_SUFFIXES
    )


def read_public_key(value: str) -> GivenPublicKey:
    """Return the public key given as ``value`` itself or as the path of a file holding it.

    Every form of ``parse_public_key`` is accepted in both. Raises InvalidInputError with
    one line: ``no such file: <path>`` for a path that does not exist, the reason for a
    file that cannot be read, or the accepted forms for anything else.
    """
    path = Path(value).expanduser()
    if value and _is(path, Path.is_file):
        try:
            with path.open("rb") as handle:
                data = handle.read(MAX_KEY_FILE_BYTES + 1)
        except OSError as exc:
            raise InvalidInputError(f"cannot read {value}: {exc.strerror}") from exc
        if len(data) > MAX_KEY_FILE_BYTES:
            raise InvalidInputError(f"{value} is too large to be a public key file")
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise InvalidInputError(f"{value} is not a text file holding a public key") from exc
        try:
            return parse_public_key(text)
        except InvalidInputError as exc:
            raise InvalidInputError(f"{value}: {exc.detail}") from exc
    if value and _is(path, Path.is_dir):
        raise InvalidInputError(f"{value} is a folder, not a public key file")
    try:
        return parse_public_key(value)
    except InvalidInputError as exc:
        if exc.detail.startswith("not a public key") and _looks_like_path(value):
            raise InvalidInputError(f"no such file: {value}") from None
        raise


def _is(path: Path, test: Callable[[Path], bool]) -> bool:
    """Return ``test(path)``, False where the name cannot be a path (too long, NUL)."""
    try:
        return test(path)
    except (OSError, ValueError):
        return False
