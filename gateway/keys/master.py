"""The key-encryption key (KEK): from ``GATEWAY_MASTER_KEY`` or a passphrase, never stored.

A master key (base64 of 32 random bytes) is expanded with HKDF-SHA256; a passphrase goes
through Argon2id (RFC 9106's second recommended setting: 3 passes, 4 lanes, 64 MiB).
Either way 64 bytes come out: the first 32 wrap data keys (AES-256-GCM), the last 32
compute the ring's check value (HMAC-SHA256), so the ring can tell a wrong master key
from a damaged file without ever storing anything that decrypts keys.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import secrets
import unicodedata
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.argon2 import Argon2id
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from gateway.config import Settings
from gateway.keys.errors import IntegrityCheckFailedError, KeyRingError

MasterKind = Literal["master-key", "passphrase"]

MASTER_KEY_BYTES = 32
NONCE_BYTES = 12
ARGON2_DEFAULTS = {"iterations": 3, "lanes": 4, "memory_cost": 64 * 1024}
_CHECK_LABEL = b"riec-gateway/kek-check/v1\x00"
_HKDF_INFO = b"riec-gateway/kek/v1"


class MasterSecret:
    """The operator's master key or passphrase. ``repr`` says which kind, never the value."""

    __slots__ = ("_value", "kind")

    def __init__(self, kind: MasterKind, value: bytes) -> None:
        self.kind: MasterKind = kind
        self._value = value

    @classmethod
    def from_key_text(cls, text: str, variable: str = "GATEWAY_MASTER_KEY") -> MasterSecret:
        """Return the master key encoded as base64 of 32 bytes; raise KeyRingError otherwise."""
        try:
            raw = base64.b64decode(text.strip(), validate=True)
        except (binascii.Error, ValueError) as exc:
            raise KeyRingError(
                f"{variable} is not valid base64; create one with `openssl rand -base64 32`"
            ) from exc
        if len(raw) != MASTER_KEY_BYTES:
            raise KeyRingError(
                f"{variable} must be base64 of exactly 32 bytes (it has {len(raw)}); "
                "create one with `openssl rand -base64 32`"
            )
        return cls("master-key", raw)

    @classmethod
    def from_passphrase(
        cls, text: str, variable: str = "GATEWAY_MASTER_PASSPHRASE"
    ) -> MasterSecret:
        """Return a passphrase secret (NFC-normalised); raise KeyRingError if shorter than 12."""
        normalised = unicodedata.normalize("NFC", text)
        if len(normalised) < 12:
            raise KeyRingError(f"{variable} must be at least 12 characters long")
        return cls("passphrase", normalised.encode())

    @classmethod
    def from_settings(cls, settings: Settings) -> MasterSecret:
        """Return the configured master secret (the development key if none is set in development).

        Raises KeyRingError if both or neither of ``GATEWAY_MASTER_KEY`` and
        ``GATEWAY_MASTER_PASSPHRASE`` are set (neither is allowed only in development).
        """
        if settings.master_key is not None and settings.master_passphrase is not None:
            raise KeyRingError("set only one of GATEWAY_MASTER_KEY and GATEWAY_MASTER_PASSPHRASE")
        if settings.master_passphrase is not None:
            return cls.from_passphrase(settings.master_passphrase.get_secret_value())
        key = settings.effective_master_key()
        if key is None:
            raise KeyRingError("set GATEWAY_MASTER_KEY or GATEWAY_MASTER_PASSPHRASE")
        return cls.from_key_text(key.get_secret_value())

    def new_kdf_params(self) -> dict[str, Any]:
        """Return fresh KDF parameters (a new random salt) for this kind of secret."""
        salt = base64.b64encode(secrets.token_bytes(16)).decode()
        if self.kind == "passphrase":
            return {"name": "argon2id", "salt": salt, **ARGON2_DEFAULTS}
        return {"name": "hkdf-sha256", "salt": salt}

    def derive(self, kek_id: str, params: dict[str, Any]) -> Kek:
        """Return the KEK for the stored ``params``; raise KeyRingError if they do not fit."""
        damaged = KeyRingError("the key ring's master-key parameters are damaged")
        name = params.get("name")
        expected = {"argon2id": "passphrase", "hkdf-sha256": "master-key"}.get(str(name))
        if expected is None:
            raise damaged
        if expected != self.kind:
            wanted = (
                "GATEWAY_MASTER_PASSPHRASE" if expected == "passphrase" else "GATEWAY_MASTER_KEY"
            )
            mine = "passphrase" if self.kind == "passphrase" else "master key"
            raise KeyRingError(
                f"the key ring was created with {wanted}; set that instead of the {mine}"
            )
        try:
            salt = base64.b64decode(params["salt"], validate=True)
            if name == "hkdf-sha256":
                material = HKDF(
                    algorithm=hashes.SHA256(), length=64, salt=salt, info=_HKDF_INFO
                ).derive(self._value)
            else:
                costs = [int(params[k]) for k in ("iterations", "lanes", "memory_cost")]
                if not (1 <= costs[0] <= 64 and 1 <= costs[1] <= 64 and costs[2] <= 4 << 20):
                    raise damaged  # refuse costs that would stall start-up
                material = Argon2id(
                    salt=salt, length=64, iterations=costs[0], lanes=costs[1], memory_cost=costs[2]
                ).derive(self._value)
        except (KeyError, TypeError, ValueError, binascii.Error) as exc:
            raise damaged from exc
        return Kek(kek_id, material[:32], material[32:])

    def __repr__(self) -> str:
        return f"MasterSecret({self.kind})"


@dataclass(frozen=True, slots=True)
class WrapLabel:
    """What a wrapped key is bound to: its kind, id and version (and the KEK generation)."""

    kind: str
    key_id: str
    version: int

    def associated_data(self, kek_id: str) -> bytes:
        """Return the AES-GCM associated data binding a wrapped key to its place in the ring."""
        parts = (b"riec-gateway/wrap/v1", self.kind.encode(), self.key_id.encode())
        return b"\x00".join(parts) + b"\x00" + self.version.to_bytes(4, "big") + kek_id.encode()


class Kek:
    """A derived key-encryption key: wraps and unwraps data keys, proves it is the right one."""

    __slots__ = ("_aead", "_check_key", "kek_id")

    def __init__(self, kek_id: str, wrap_key: bytes, check_key: bytes) -> None:
        self.kek_id = kek_id
        self._aead = AESGCM(wrap_key)
        self._check_key = check_key

    def check_value(self) -> str:
        """Return the base64 HMAC that shows, without revealing it, that this KEK is the ring's."""
        mac = hmac.new(self._check_key, _CHECK_LABEL + self.kek_id.encode(), hashlib.sha256)
        return base64.b64encode(mac.digest()).decode()

    def matches(self, stored_check: str) -> bool:
        """Return whether ``stored_check`` is this KEK's check value (constant time)."""
        return hmac.compare_digest(self.check_value().encode(), stored_check.encode())

    def wrap(self, label: WrapLabel, key: bytes) -> str:
        """Return ``key`` encrypted under this KEK and bound to ``label``, as base64."""
        nonce = os.urandom(NONCE_BYTES)
        sealed = self._aead.encrypt(nonce, key, label.associated_data(self.kek_id))
        return base64.b64encode(nonce + sealed).decode()

    def unwrap(self, label: WrapLabel, wrapped: str) -> bytes:
        """Return the key wrapped for ``label``; raise IntegrityCheckFailed if anything is off."""
        try:
            blob = base64.b64decode(wrapped, validate=True)
            return self._aead.decrypt(
                blob[:NONCE_BYTES], blob[NONCE_BYTES:], label.associated_data(self.kek_id)
            )
        except (InvalidTag, ValueError, binascii.Error, TypeError) as exc:
            raise IntegrityCheckFailedError() from exc

    def __repr__(self) -> str:
        return f"Kek(id={self.kek_id})"


def new_kek_id() -> str:
    """Return a fresh random id for a KEK generation (public; changes on every rewrap)."""
    return secrets.token_hex(8)


def _master_variable(master: MasterSecret, settings: Settings | None) -> str:
    if master.kind == "passphrase":
        return "GATEWAY_MASTER_PASSPHRASE"
    if settings is not None and settings.master_key is None:
        return "the development master key (GATEWAY_MASTER_KEY is not set)"
    return "GATEWAY_MASTER_KEY"


def unlock(
    keys_dir: Path, ring_doc: dict[str, Any], master: MasterSecret, settings: Settings | None
) -> Kek:
    """Return the KEK ``master`` derives for the ring in ``keys_dir`` (``ring_doc``).

    Raises KeyRingError naming the variable to fix when the master secret does not open
    the ring, or saying to finish the rewrap when it opens only an interrupted one.
    """
    current = ring_doc["kek"]
    kek = master.derive(str(current.get("id")), current.get("kdf") or {})
    if kek.matches(str(current.get("check", ""))):
        return kek
    pending = ring_doc.get("pending_kek")
    if isinstance(pending, dict):
        candidate = master.derive(str(pending.get("id")), pending.get("kdf") or {})
        if candidate.matches(str(pending.get("check", ""))):
            raise KeyRingError(
                "a rewrap to this master key was interrupted; run `gateway keys rewrap` "
                "again with the old key in GATEWAY_MASTER_KEY (or _PASSPHRASE) and this "
                "one in GATEWAY_NEW_MASTER_KEY (or _PASSPHRASE)"
            )
    raise KeyRingError(
        f"the master key does not open the key ring in {keys_dir}: "
        f"{_master_variable(master, settings)} is wrong, or the ring was rewrapped "
        "under another master key"
    )
