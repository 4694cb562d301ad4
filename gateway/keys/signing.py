"""Ed25519 signing recipes: sign checkpoints and manifests, verify them offline.

Verification failures of any kind raise ``IntegrityCheckFailed``, chained from the
underlying cause, so callers cannot tell which check failed.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from gateway.errors import IntegrityCheckFailed

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
        """Return the signer for a 32-byte raw private key; raise IntegrityCheckFailed if bad."""
        try:
            return cls(Ed25519PrivateKey.from_private_bytes(raw))
        except ValueError as exc:
            raise IntegrityCheckFailed() from exc

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
    """Check an Ed25519 signature; raise IntegrityCheckFailed if it does not verify."""
    try:
        Ed25519PublicKey.from_public_bytes(public_key).verify(signature, message)
    except (InvalidSignature, ValueError) as exc:
        raise IntegrityCheckFailed() from exc


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
        """Check ``signature`` under this key; raise IntegrityCheckFailed if it does not verify."""
        verify(self.public_key, message, signature)
