"""Key documents: what a key file and ``keyring.json`` hold, and how they are named and read.

Layout of ``keys_dir`` (folders 0700, files 0600; anything looser is refused)::

    keyring.json          KEK parameters (KDF name, salt, costs), KEK id, check value
    lock                  flock'ed while a key is rotated, shredded or rewrapped
    system/index.json     the blind-index key (HMAC indexes of identifiers)
    system/signing.json   the Ed25519 signing key (public keys stored beside the wrapped ones)
    cases/<case>.json     one data key per case (field encryption)
    projects/<id>.json    one pseudonymisation secret per research project

Every key file holds versions, each wrapped with AES-256-GCM under the KEK and bound to
(kind, id, version, KEK id). A shredded key's file is a tombstone without key material.
This module only parses and serialises; unwrapping is the ring's (``gateway.keys.ring``).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import os
import re
import time
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from pathlib import Path
from typing import Any, Protocol

from gateway.clock import as_utc
from gateway.errors import InvalidInputError
from gateway.keys import files
from gateway.keys.errors import IntegrityCheckFailedError, KeyRingError, KeyShreddedError

RING_FILE = "keyring.json"
FORMAT = 1
INDEX_KEY_ID = "blind-index"
SIGNING_KEY_ID = "signing"
DAMAGED = (ValueError, KeyError, TypeError, binascii.Error)
"""What parsing a damaged key file raises."""
_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")


class KeyKind(StrEnum):
    """What a key is for."""

    CASE = "case"
    PROJECT = "project"
    INDEX = "index"
    SIGNING = "signing"


FOLDER = {
    KeyKind.CASE: "cases",
    KeyKind.PROJECT: "projects",
    KeyKind.INDEX: "system",
    KeyKind.SIGNING: "system",
}
SYSTEM_FILE = {KeyKind.INDEX: INDEX_KEY_ID, KeyKind.SIGNING: SIGNING_KEY_ID}


class ShredReason(StrEnum):
    """Why a key was destroyed: its retention ended, or someone asked for it."""

    RETENTION = "end-of-retention"
    REQUEST = "on-request"


class KeyActor(Protocol):
    """Who performs a key operation, for the audit log (``gateway.identity.service.Actor``)."""

    @property
    def principal_id(self) -> str:
        """The acting principal (or ``system:cli``)."""
        ...

    @property
    def partner_id(self) -> str | None:
        """The acting principal's partner, if any."""
        ...


@dataclass(frozen=True, slots=True)
class KeyVersionInfo:
    """One version of a key: number, creation time, whether it is the one that writes."""

    version: int
    created_at: datetime
    active: bool


@dataclass(frozen=True, slots=True)
class KeyInfo:
    """A key's public description: ids, versions, dates and state, never material."""

    kind: KeyKind
    key_id: str
    state: str
    versions: tuple[KeyVersionInfo, ...]
    shredded_at: datetime | None


@dataclass(frozen=True, slots=True)
class RingInfo:
    """The ring itself: folder, KEK generation id, KEK source and KDF, creation time."""

    keys_dir: Path
    kek_id: str
    source: str
    kdf: str
    created_at: datetime


@dataclass(slots=True)
class KeyVersion:
    """One wrapped version of a key (and a signing key's public key)."""

    version: int
    created_at: datetime
    wrapped: str
    public_key: bytes | None = None


def fingerprint(version: KeyVersion) -> str:
    """Return ``sha256:<hex>`` of a signing key version's public key."""
    assert version.public_key is not None
    return f"sha256:{hashlib.sha256(version.public_key).hexdigest()}"


@dataclass(slots=True)
class KeyDoc:
    """A key file: its ids, KEK id, state, versions, and a tombstone's record."""

    kind: KeyKind
    key_id: str
    kek_id: str
    state: str
    active_version: int | None
    versions: list[KeyVersion]
    shredded_at: datetime | None = None
    shred_reason: str | None = None
    shredded_by: str | None = None  # a role ("operator"), never a person

    @property
    def shredded(self) -> bool:
        return self.state == "shredded"

    def to_bytes(self) -> bytes:
        doc = {
            "format": FORMAT,
            "kind": str(self.kind),
            "id": self.key_id,
            "kek_id": self.kek_id,
            "state": self.state,
            "active_version": self.active_version,
            "shredded_at": self.shredded_at.isoformat() if self.shredded_at else None,
            **({"shred_reason": self.shred_reason} if self.shred_reason else {}),
            **({"shredded_by": self.shredded_by} if self.shredded_by else {}),
            "versions": [
                {
                    "version": v.version,
                    "created_at": v.created_at.isoformat(),
                    "wrapped": v.wrapped,
                    **(
                        {"public_key": base64.b64encode(v.public_key).decode()}
                        if v.public_key is not None
                        else {}
                    ),
                }
                for v in self.versions
            ],
        }
        return json.dumps(doc, indent=1, sort_keys=True).encode() + b"\n"

    @classmethod
    def parse(cls, raw: bytes) -> KeyDoc:
        doc = json.loads(raw)
        if doc.get("format") != FORMAT:
            raise ValueError("unknown key file format")
        shredded = doc.get("shredded_at")
        return cls(
            kind=KeyKind(doc["kind"]),
            key_id=str(doc["id"]),
            kek_id=str(doc["kek_id"]),
            state=str(doc["state"]),
            active_version=doc["active_version"],
            shredded_at=as_utc(datetime.fromisoformat(shredded)) if shredded else None,
            shred_reason=doc.get("shred_reason"),
            shredded_by=doc.get("shredded_by"),
            versions=[
                KeyVersion(
                    version=int(v["version"]),
                    created_at=as_utc(datetime.fromisoformat(v["created_at"])),
                    wrapped=str(v["wrapped"]),
                    public_key=(
                        base64.b64decode(v["public_key"], validate=True)
                        if "public_key" in v
                        else None
                    ),
                )
                for v in doc["versions"]
            ],
        )

    def info(self) -> KeyInfo:
        return KeyInfo(
            kind=self.kind,
            key_id=self.key_id,
            state=self.state,
            versions=tuple(
                KeyVersionInfo(v.version, v.created_at, v.version == self.active_version)
                for v in self.versions
            ),
            shredded_at=self.shredded_at,
        )


def check_id(key_id: str, what: str) -> str:
    if not _ID_RE.fullmatch(key_id):
        raise InvalidInputError(
            f"{what} id must be 1-128 letters, digits, '.', '_' or '-', starting with a letter "
            "or digit",
            field=f"{what}_id",
        )
    return key_id


def valid_key_id(key_id: str, what: str) -> str:
    """Return ``key_id`` if it can name a case or project key; raise InvalidInputError if not."""
    return check_id(key_id, what)


def shredded_error(doc: KeyDoc) -> KeyShreddedError:
    """Return the error that says which key was destroyed, when, and why (as recorded)."""
    if doc.shred_reason == ShredReason.REQUEST:
        at = f"{doc.shredded_at:%Y-%m-%d %H:%M} UTC" if doc.shredded_at else "an earlier date"
        how = f"was destroyed: shredded by {doc.shredded_by or 'an operator'} at {at}"
    else:
        when = f"{doc.shredded_at:%Y-%m-%d}" if doc.shredded_at else "an earlier date"
        how = f"was destroyed on {when} at the end of its retention period"
    if doc.kind is KeyKind.PROJECT:
        what = (
            f"the pseudonymisation secret of research project {doc.key_id} {how}; its "
            "pseudonyms can no longer be produced or linked"
        )
    else:
        what = (
            f"the key of {doc.kind} {doc.key_id} {how}; its encrypted data can no longer be "
            "read by anyone"
        )
    return KeyShreddedError(
        what,
        key_kind=str(doc.kind),
        key_id=doc.key_id,
        shredded_at=doc.shredded_at.isoformat() if doc.shredded_at else None,
        reason=doc.shred_reason or ShredReason.RETENTION.value,
    )


def key_path(keys_dir: Path, kind: KeyKind, key_id: str) -> Path:
    """Return the file of key ``(kind, key_id)`` in ``keys_dir``."""
    name = SYSTEM_FILE.get(kind, key_id)
    return keys_dir / FOLDER[kind] / f"{name}.json"


def key_files(keys_dir: Path) -> list[tuple[KeyKind, Path]]:
    """Return every key file in ``keys_dir`` with its kind, by kind and name."""
    found: list[tuple[KeyKind, Path]] = []
    for kind in KeyKind:
        for path in files.list_json(keys_dir / FOLDER[kind]):
            if kind in SYSTEM_FILE and path.stem != SYSTEM_FILE[kind]:
                continue
            found.append((kind, path))
    return found


def read_key_doc(
    keys_dir: Path, kind: KeyKind, key_id: str
) -> tuple[KeyDoc, os.stat_result] | None:
    """Return key ``(kind, key_id)``'s document and file status, None if it has no file.

    Raises KeyRingError if the file is damaged (read twice: a concurrent shred may be
    overwriting the old inode), IntegrityCheckFailedError if it names another key.
    """
    path = key_path(keys_dir, kind, key_id)
    for attempt in range(2):
        found = files.read_private(path, keys_dir)
        if found is None:
            return None
        try:
            doc = KeyDoc.parse(found[0])
        except DAMAGED as exc:
            if attempt == 0:
                time.sleep(0.01)
                continue
            raise KeyRingError(f"key file {path} is damaged") from exc
        if doc.kind is not kind or doc.key_id != key_id:
            raise IntegrityCheckFailedError()
        return doc, found[1]
    raise AssertionError("unreachable")  # pragma: no cover


def describe_keys(keys_dir: Path) -> list[KeyInfo]:
    """Return every key's ids, versions, dates and state (never material), by kind and id."""
    infos: list[KeyInfo] = []
    for _kind, path in key_files(keys_dir):
        found = files.read_private(path, keys_dir)
        if found is None:
            continue
        try:
            infos.append(KeyDoc.parse(found[0]).info())
        except DAMAGED as exc:
            raise KeyRingError(f"key file {path} is damaged") from exc
    return infos


def read_ring_doc(keys_dir: Path) -> dict[str, Any] | None:
    """Return ``keyring.json`` parsed, None if absent; raise KeyRingError if damaged."""
    found = files.read_private(keys_dir / RING_FILE, keys_dir)
    if found is None:
        return None
    try:
        doc: dict[str, Any] = json.loads(found[0])
        if doc.get("format") != FORMAT or not isinstance(doc.get("kek"), dict):
            raise ValueError("unknown key ring format")
    except ValueError as exc:
        raise KeyRingError(f"{keys_dir / RING_FILE} is damaged; restore it from a backup") from exc
    return doc


def ring_bytes(ring_doc: dict[str, Any]) -> bytes:
    """Return ``keyring.json``'s content for ``ring_doc``."""
    return json.dumps(ring_doc, indent=1, sort_keys=True).encode() + b"\n"
