"""The key ring: wrapped, versioned keys on disk under a key-encryption key from the environment.

Layout of ``keys_dir`` (folders 0700, files 0600; anything looser is refused)::

    keyring.json          KEK parameters (KDF name, salt, costs), KEK id, check value
    lock                  flock'ed while a key is rotated, shredded or rewrapped
    system/index.json     the blind-index key (HMAC indexes of identifiers)
    system/signing.json   the Ed25519 signing key (public keys stored beside the wrapped ones)
    cases/<case>.json     one data key per case (field encryption)
    projects/<id>.json    one pseudonymisation secret per research project

Every key file holds versions, each wrapped with AES-256-GCM under the KEK and bound to
(kind, id, version, KEK id). The active version writes, every held version reads. A
shredded key's file becomes a tombstone without key material; its old bytes are
overwritten. Nothing here ever logs, prints or raises key material.

Several processes may share one folder. Creating a key links a complete file into place
exclusively (the loser re-reads the winner's key); rotate, shred and rewrap hold the
ring lock. Each process caches unwrapped keys and re-checks a key file's identity
(inode, mtime, size) at most every ``recheck_seconds`` (default 1 s): a key shredded or
rotated by another process stops working (or starts writing with the new version) here
within that time.

Blind-index key rotation is two-phase because every stored index would stop matching:
``rotate_index_key`` stages a new version (``blind_index`` keeps using the active one
and can compute the staged one with ``version=``, for re-indexing); after re-indexing,
``activate_index_key`` switches. Signing and case keys activate on rotation. A project's
pseudonymisation secret is never rotated (pseudonyms must stay stable within a project);
it is only shredded.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import logging
import os
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime
from enum import StrEnum
from pathlib import Path
from typing import Any, Protocol

from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from sqlmodel import Session

from gateway.audit import log as audit_log
from gateway.audit.events import AuditEvent, AuditEventType, RefValue
from gateway.clock import Clock, SystemClock, as_utc
from gateway.config import Settings
from gateway.errors import (
    GatewayError,
    IntegrityCheckFailed,
    InvalidInputError,
    KeyRingError,
    KeyShreddedError,
    UnknownKeyError,
)
from gateway.keys import fields, files
from gateway.keys.master import Kek, MasterSecret, WrapLabel, new_kek_id
from gateway.keys.pseudonyms import (
    BLIND_INDEX_LABEL,
    PERSON_ID_TYPE,
    PERSON_KEY_LABEL,
    Pseudonymiser,
    TypedHmac,
)
from gateway.keys.signing import Ed25519Signer, SigningPublicKey

log = logging.getLogger("gateway.keys")

RING_FILE = "keyring.json"
FORMAT = 1
RECHECK_SECONDS = 1.0
CACHE_LIMIT = 4096
INDEX_KEY_ID = "blind-index"
SIGNING_KEY_ID = "signing"
_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")


class KeyKind(StrEnum):
    """What a key is for."""

    CASE = "case"
    PROJECT = "project"
    INDEX = "index"
    SIGNING = "signing"


_FOLDER = {
    KeyKind.CASE: "cases",
    KeyKind.PROJECT: "projects",
    KeyKind.INDEX: "system",
    KeyKind.SIGNING: "system",
}
_SYSTEM_FILE = {KeyKind.INDEX: INDEX_KEY_ID, KeyKind.SIGNING: SIGNING_KEY_ID}


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
class _Version:
    version: int
    created_at: datetime
    wrapped: str
    public_key: bytes | None = None


def _fingerprint(version: _Version) -> str:
    """Return ``sha256:<hex>`` of a signing key version's public key."""
    assert version.public_key is not None
    return f"sha256:{hashlib.sha256(version.public_key).hexdigest()}"


@dataclass(slots=True)
class _KeyDoc:
    kind: KeyKind
    key_id: str
    kek_id: str
    state: str
    active_version: int | None
    versions: list[_Version]
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
    def parse(cls, raw: bytes) -> _KeyDoc:
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
                _Version(
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


@dataclass(slots=True)
class _Loaded:
    """A key file as this process last read it, with its unwrapped versions."""

    doc: _KeyDoc
    signature: tuple[int, int, int]
    checked_at: float
    material: dict[int, bytes] = field(default_factory=dict, repr=False)
    aead: dict[int, AESGCM] = field(default_factory=dict, repr=False)
    derived: dict[Any, Any] = field(default_factory=dict, repr=False)

    def __repr__(self) -> str:
        return f"_Loaded({self.doc.kind}:{self.doc.key_id}, state={self.doc.state})"


def _check_id(key_id: str, what: str) -> str:
    if not _ID_RE.fullmatch(key_id):
        raise InvalidInputError(
            f"{what} id must be 1-128 letters, digits, '.', '_' or '-', starting with a letter "
            "or digit",
            field=f"{what}_id",
        )
    return key_id


def valid_key_id(key_id: str, what: str) -> str:
    """Return ``key_id`` if it can name a case or project key; raise InvalidInputError if not."""
    return _check_id(key_id, what)


def _shredded_error(doc: _KeyDoc) -> KeyShreddedError:
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


def _master_variable(master: MasterSecret, settings: Settings | None) -> str:
    if master.kind == "passphrase":
        return "GATEWAY_MASTER_PASSPHRASE"
    if settings is not None and settings.master_key is None:
        return "the development master key (GATEWAY_MASTER_KEY is not set)"
    return "GATEWAY_MASTER_KEY"


class KeyRing:
    """Versioned, wrapped keys of one gateway installation; see the module docstring.

    Build with :meth:`open` (existing ring) or :meth:`create` (``gateway init``).
    ``repr`` shows the folder and KEK id only.
    """

    def __init__(
        self,
        keys_dir: Path,
        kek: Kek,
        ring_doc: dict[str, Any],
        *,
        clock: Clock,
        recheck_seconds: float,
        monotonic: Callable[[], float],
    ) -> None:
        self._dir = keys_dir
        self._kek = kek
        self._ring_doc = ring_doc
        self._clock = clock
        self._recheck = recheck_seconds
        self._monotonic = monotonic
        self._cache: dict[tuple[KeyKind, str], _Loaded] = {}
        self._lock = threading.RLock()

    # ---------------------------------------------------------------- opening

    @staticmethod
    def exists(settings: Settings) -> bool:
        """Return whether ``settings.keys_dir`` holds a key ring."""
        return (settings.keys_dir / RING_FILE).exists()

    @classmethod
    def open(
        cls,
        settings: Settings,
        *,
        clock: Clock | None = None,
        recheck_seconds: float = RECHECK_SECONDS,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> KeyRing:
        """Return the ring in ``settings.keys_dir``, unlocked with the configured master secret.

        Raises KeyRingError with a one-line reason when the ring is missing, a file is
        accessible by group or others, or the master key is wrong.
        """
        master = MasterSecret.from_settings(settings)
        keys_dir = settings.keys_dir
        files.check_private_dir(keys_dir, keys_dir)
        ring_doc = cls._read_ring_doc(keys_dir)
        if ring_doc is None:
            raise KeyRingError(f"no key ring in {keys_dir}; run `gateway init` to create it")
        kek = cls._unlock(keys_dir, ring_doc, master, settings)
        ring = cls(
            keys_dir,
            kek,
            ring_doc,
            clock=clock or SystemClock(),
            recheck_seconds=recheck_seconds,
            monotonic=monotonic,
        )
        for kind in (KeyKind.CASE, KeyKind.PROJECT, KeyKind.INDEX):
            folder = keys_dir / _FOLDER[kind]
            if folder.exists():
                files.check_private_dir(folder, keys_dir)
        return ring

    @classmethod
    def create(
        cls,
        settings: Settings,
        session: Session,
        *,
        clock: Clock,
        actor: KeyActor,
        recheck_seconds: float = RECHECK_SECONDS,
    ) -> KeyRing:
        """Create the ring (KEK parameters, check value, index and signing keys) if absent.

        Returns the ring; if one exists already it is opened instead (so a wrong master
        key fails here too). Creation is audited in ``session``'s transaction. Raises
        KeyRingError if the folder holds key files but no ``keyring.json``.
        """
        master = MasterSecret.from_settings(settings)
        keys_dir = settings.keys_dir
        files.ensure_private_dir(keys_dir, keys_dir)
        if (keys_dir / RING_FILE).exists():
            return cls.open(settings, clock=clock, recheck_seconds=recheck_seconds)
        audit_log.lock_head(session)  # concurrent inits queue here
        if (keys_dir / RING_FILE).exists():
            return cls.open(settings, clock=clock, recheck_seconds=recheck_seconds)
        orphans = [p for kind in KeyKind for p in files.list_json(keys_dir / _FOLDER[kind])]
        if orphans:
            raise KeyRingError(
                f"{keys_dir} holds key files but no {RING_FILE}; restore {RING_FILE} from a "
                "backup (a new ring could not open the existing keys)"
            )
        kek_id = new_kek_id()
        params = master.new_kdf_params()
        kek = master.derive(kek_id, params)
        now = clock.now()
        ring_doc = {
            "format": FORMAT,
            "created_at": now.isoformat(),
            "kek": {"id": kek_id, "source": master.kind, "kdf": params, "check": kek.check_value()},
            "pending_kek": None,
        }
        if not files.write_new(keys_dir / RING_FILE, _ring_bytes(ring_doc)):
            return cls.open(settings, clock=clock, recheck_seconds=recheck_seconds)
        ring = cls(
            keys_dir,
            kek,
            ring_doc,
            clock=clock,
            recheck_seconds=recheck_seconds,
            monotonic=time.monotonic,
        )
        for kind in KeyKind:
            files.ensure_private_dir(keys_dir / _FOLDER[kind], keys_dir)
        ring._create_key(KeyKind.INDEX, INDEX_KEY_ID)
        ring._create_key(KeyKind.SIGNING, SIGNING_KEY_ID)
        ring._audit(
            session,
            AuditEventType.KEYRING_CREATE,
            actor,
            kek=kek_id,
            source=master.kind,
            kdf=str(params["name"]),
            signing_key=f"sha256:{ring.signer().fingerprint}",
        )
        log.info("key ring created", extra={"fields": {"kek_id": kek_id, "source": master.kind}})
        return ring

    @staticmethod
    def _read_ring_doc(keys_dir: Path) -> dict[str, Any] | None:
        found = files.read_private(keys_dir / RING_FILE, keys_dir)
        if found is None:
            return None
        try:
            doc: dict[str, Any] = json.loads(found[0])
            if doc.get("format") != FORMAT or not isinstance(doc.get("kek"), dict):
                raise ValueError("unknown key ring format")
        except ValueError as exc:
            raise KeyRingError(
                f"{keys_dir / RING_FILE} is damaged; restore it from a backup"
            ) from exc
        return doc

    @staticmethod
    def _unlock(
        keys_dir: Path, ring_doc: dict[str, Any], master: MasterSecret, settings: Settings | None
    ) -> Kek:
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

    # ---------------------------------------------------------------- key files

    def _path(self, kind: KeyKind, key_id: str) -> Path:
        name = _SYSTEM_FILE.get(kind, key_id)
        return self._dir / _FOLDER[kind] / f"{name}.json"

    def _read_doc(self, kind: KeyKind, key_id: str) -> tuple[_KeyDoc, os.stat_result] | None:
        path = self._path(kind, key_id)
        for attempt in range(2):
            found = files.read_private(path, self._dir)
            if found is None:
                return None
            try:
                doc = _KeyDoc.parse(found[0])
            except (ValueError, KeyError, TypeError, binascii.Error) as exc:
                if attempt == 0:
                    time.sleep(0.01)  # a concurrent shred may be overwriting the old inode
                    continue
                raise KeyRingError(f"key file {path} is damaged") from exc
            if doc.kind is not kind or doc.key_id != key_id:
                raise IntegrityCheckFailed()
            if doc.kek_id != self._kek.kek_id and not doc.shredded:  # tombstones hold no keys
                raise self._foreign_kek_error(doc)
            return doc, found[1]
        raise AssertionError("unreachable")  # pragma: no cover

    def _check_ring_current(self) -> None:
        """Raise KeyRingError unless the ring on disk is still wrapped under this process's KEK.

        Called under the ring lock before writing, so a process that missed a rewrap
        cannot add keys that only the retired master key could open.
        """
        doc = self._read_ring_doc(self._dir)
        if doc is None:
            raise KeyRingError(f"no key ring in {self._dir}; run `gateway init` to create it")
        kek = doc["kek"]
        if doc.get("pending_kek") or kek.get("id") != self._kek.kek_id:
            raise KeyRingError(
                "the key ring is being or has been rewrapped under another master key; "
                "restart this process with the new GATEWAY_MASTER_KEY (or _PASSPHRASE)"
            )

    def _foreign_kek_error(self, doc: _KeyDoc) -> KeyRingError:
        pending = self._ring_doc.get("pending_kek")
        if isinstance(pending, dict) and pending.get("id") == doc.kek_id:
            return KeyRingError(
                "a rewrap was interrupted; run `gateway keys rewrap` again to finish it"
            )
        return KeyRingError(
            "the key ring was rewrapped under another master key since this process started; "
            "restart it with the new GATEWAY_MASTER_KEY (or _PASSPHRASE)"
        )

    def _new_version(self, kind: KeyKind, key_id: str, version: int) -> _Version:
        now = self._clock.now()
        label = WrapLabel(str(kind), key_id, version)
        if kind is KeyKind.SIGNING:
            signer = Ed25519Signer.generate()
            return _Version(
                version, now, self._kek.wrap(label, signer.private_bytes()), signer.public_key
            )
        return _Version(version, now, self._kek.wrap(label, os.urandom(32)))

    def _create_key(self, kind: KeyKind, key_id: str) -> bool:
        """Create version 1 of a key unless its file exists; return whether this call made it."""
        folder = self._path(kind, key_id).parent
        files.ensure_private_dir(folder, self._dir)
        doc = _KeyDoc(
            kind=kind,
            key_id=key_id,
            kek_id=self._kek.kek_id,
            state="active",
            active_version=1,
            versions=[self._new_version(kind, key_id, 1)],
        )
        with files.ring_lock(self._dir, shared=True):
            self._check_ring_current()
            created = files.write_new(self._path(kind, key_id), doc.to_bytes())
        if created:
            log.info("key created", extra={"fields": {"key_kind": str(kind), "key_id": key_id}})
        return created

    def _load(self, kind: KeyKind, key_id: str, *, create: bool) -> _Loaded:
        found = self._read_doc(kind, key_id)
        if found is None and create:
            self._create_key(kind, key_id)
            found = self._read_doc(kind, key_id)
        if found is None:
            raise UnknownKeyError(f"no key for {kind} {key_id}", key_kind=str(kind), key_id=key_id)
        doc, st = found
        loaded = _Loaded(doc, files.file_signature(st), self._monotonic())
        for v in doc.versions:
            loaded.material[v.version] = self._kek.unwrap(
                WrapLabel(str(kind), key_id, v.version), v.wrapped
            )
        return loaded

    def _entry(self, kind: KeyKind, key_id: str, *, create: bool = False) -> _Loaded:
        """Return the live key ``(kind, key_id)``, re-checking its file every ``recheck`` seconds.

        Raises UnknownKeyError if absent (unless ``create``), KeyShreddedError if shredded.
        """
        cache_key = (kind, key_id)
        entry = self._cache.get(cache_key)
        now = self._monotonic()
        if entry is None or now - entry.checked_at >= self._recheck:
            with self._lock:
                entry = self._refresh(cache_key, entry, now, create=create)
        if entry.doc.shredded:
            raise _shredded_error(entry.doc)
        return entry

    def _refresh(
        self, cache_key: tuple[KeyKind, str], entry: _Loaded | None, now: float, *, create: bool
    ) -> _Loaded:
        kind, key_id = cache_key
        if entry is not None:
            try:
                current = files.file_signature(os.stat(self._path(kind, key_id)))
            except FileNotFoundError:
                current = None
            if current == entry.signature:
                entry.checked_at = now
                return entry
        try:
            entry = self._load(kind, key_id, create=create)
        except GatewayError:
            self._cache.pop(cache_key, None)
            raise
        if len(self._cache) >= CACHE_LIMIT:
            for stale in list(self._cache)[: CACHE_LIMIT // 4]:
                del self._cache[stale]
        self._cache[cache_key] = entry
        return entry

    def _forget(self, kind: KeyKind, key_id: str) -> None:
        with self._lock:
            self._cache.pop((kind, key_id), None)

    def _audit(
        self,
        session: Session,
        event_type: AuditEventType,
        actor: KeyActor,
        *,
        case_id: str | None = None,
        **refs: RefValue,
    ) -> None:
        audit_log.append(
            session,
            AuditEvent(
                type=event_type,
                at=self._clock.now(),
                actor_principal=actor.principal_id,
                actor_partner=actor.partner_id,
                case_id=case_id,
                refs=dict(refs),
            ),
        )

    def _rotate(
        self, session: Session, kind: KeyKind, key_id: str, actor: KeyActor, *, activate: bool
    ) -> int:
        audit_log.lock_head(session)  # database lock first, then the ring lock: one order
        with files.ring_lock(self._dir):
            self._check_ring_current()
            found = self._read_doc(kind, key_id)
            if found is None:
                raise UnknownKeyError(
                    f"no key for {kind} {key_id}", key_kind=str(kind), key_id=key_id
                )
            doc = found[0]
            if doc.shredded:
                raise _shredded_error(doc)
            version = max(v.version for v in doc.versions) + 1
            made = self._new_version(kind, key_id, version)
            # a signing key is what researchers pin: the log names each one
            named = {} if made.public_key is None else {"signing_key": _fingerprint(made)}
            self._audit(
                session,
                AuditEventType.KEY_ROTATE,
                actor,
                case_id=key_id if kind is KeyKind.CASE else None,
                key_kind=str(kind),
                key_id=key_id,
                version=version,
                active=activate,
                **named,
            )
            doc.versions.append(made)
            if activate:
                doc.active_version = version
            files.replace(self._path(kind, key_id), doc.to_bytes())
        self._forget(kind, key_id)
        log.info(
            "key rotated",
            extra={"fields": {"key_kind": str(kind), "key_id": key_id, "version": version}},
        )
        return version

    def _shred(
        self,
        session: Session,
        kind: KeyKind,
        key_id: str,
        actor: KeyActor,
        reason: ShredReason,
        by: str | None,
    ) -> bool:
        audit_log.lock_head(session)
        with files.ring_lock(self._dir):
            self._check_ring_current()
            files.ensure_private_dir(self._path(kind, key_id).parent, self._dir)
            found = self._read_doc(kind, key_id)
            if found is not None and found[0].shredded:
                return False
            destroyed = len(found[0].versions) if found else 0
            self._audit(
                session,
                AuditEventType.KEY_SHRED,
                actor,
                case_id=key_id if kind is KeyKind.CASE else None,
                key_kind=str(kind),
                key_id=key_id,
                versions_destroyed=destroyed,
                **({"reason": reason.value, "by": by} if reason is ShredReason.REQUEST else {}),
            )
            tombstone = _KeyDoc(
                kind=kind,
                key_id=key_id,
                kek_id=self._kek.kek_id,
                state="shredded",
                active_version=None,
                versions=[],
                shredded_at=self._clock.now(),
                shred_reason=reason.value,
                shredded_by=by if reason is ShredReason.REQUEST else None,
            )
            files.replace_destroying_old(self._path(kind, key_id), tombstone.to_bytes())
        self._forget(kind, key_id)
        log.info("key shredded", extra={"fields": {"key_kind": str(kind), "key_id": key_id}})
        return True

    # ---------------------------------------------------------------- cases

    def create_case_key(self, case_id: str) -> int:
        """Create the case's data key if absent; return its active version.

        Raises KeyShreddedError if the case's key was shredded (it is never recreated).
        """
        entry = self._entry(KeyKind.CASE, _check_id(case_id, "case"), create=True)
        assert entry.doc.active_version is not None
        return entry.doc.active_version

    def case_key_version(self, case_id: str) -> int:
        """Return the case key version new seals use; raise UnknownKeyError, KeyShreddedError."""
        entry = self._entry(KeyKind.CASE, _check_id(case_id, "case"))
        assert entry.doc.active_version is not None
        return entry.doc.active_version

    def _aead(self, entry: _Loaded, version: int) -> AESGCM:
        aead = entry.aead.get(version)
        if aead is None:
            material = entry.material.get(version)
            if material is None:
                raise IntegrityCheckFailed()
            aead = entry.aead.setdefault(version, AESGCM(material))
        return aead

    def seal_field(self, case_id: str, record_id: str, field: str, plaintext: bytes) -> bytes:
        """Return ``plaintext`` encrypted with the case's active key, bound to record and field.

        Raises UnknownKeyError if the case has no key, KeyShreddedError if it was shredded.
        """
        entry = self._entry(KeyKind.CASE, _check_id(case_id, "case"))
        version = entry.doc.active_version
        assert version is not None
        aead = self._aead(entry, version)
        return fields.seal(aead, version, case_id, record_id, field, plaintext)

    def open_field(self, case_id: str, record_id: str, field: str, blob: bytes) -> bytes:
        """Return the plaintext of a field sealed for this case, record and field.

        Raises IntegrityCheckFailed if the blob was altered or belongs elsewhere,
        KeyShreddedError if the case's key was shredded, UnknownKeyError if it never existed.
        """
        entry = self._entry(KeyKind.CASE, _check_id(case_id, "case"))
        aead = self._aead(entry, fields.blob_version(blob))
        return fields.open_sealed(aead, case_id, record_id, field, blob)

    def reseal_field(self, case_id: str, record_id: str, field: str, blob: bytes) -> bytes:
        """Return ``blob`` re-encrypted under the case's active key version (after a rotation)."""
        plaintext = self.open_field(case_id, record_id, field, blob)
        return self.seal_field(case_id, record_id, field, plaintext)

    def rotate_case_key(self, session: Session, case_id: str, *, actor: KeyActor) -> int:
        """Add and activate a new version of the case's key; return it. Old versions still read."""
        return self._rotate(session, KeyKind.CASE, _check_id(case_id, "case"), actor, activate=True)

    def shred_case(
        self,
        session: Session,
        case_id: str,
        *,
        actor: KeyActor,
        reason: ShredReason = ShredReason.RETENTION,
        by: str | None = None,
    ) -> bool:
        """Destroy the case's key for good and leave a tombstone; audited in ``session``.

        Returns False (and changes nothing) if it was already shredded. Afterwards every
        use raises KeyShreddedError, in this process at once, in others within
        ``recheck_seconds``.
        """
        return self._shred(session, KeyKind.CASE, _check_id(case_id, "case"), actor, reason, by)

    # ---------------------------------------------------------------- blind indexes

    def blind_index(self, id_type: str, value: str, *, version: int | None = None) -> str:
        """Return the hex HMAC-SHA256 blind index of an already-normalised identifier.

        Uses the active index key unless ``version`` names another held version (for
        re-indexing after ``rotate_index_key``). Raises InvalidInputError for a bad type.
        """
        entry = self._entry(KeyKind.INDEX, INDEX_KEY_ID, create=True)
        chosen = entry.doc.active_version if version is None else version
        indexer: TypedHmac | None = entry.derived.get(("index", chosen))
        if indexer is None:
            assert chosen is not None
            material = entry.material.get(chosen)
            if material is None:
                raise InvalidInputError(f"the index key has no version {chosen}")
            indexer = entry.derived.setdefault(
                ("index", chosen), TypedHmac(material, BLIND_INDEX_LABEL, "ring")
            )
        return indexer.hexdigest(id_type, value)

    def person_key(self, normalised: str) -> str:
        """Return the hex HMAC-SHA256 person key of an already-normalised person identifier.

        Derived from the first index key version the ring holds, under its own label, so
        a person's key never changes when the index key is rotated (four-eyes checks
        compare keys stored years apart) and never equals any blind index.
        """
        entry = self._entry(KeyKind.INDEX, INDEX_KEY_ID, create=True)
        first = min(entry.material)
        hasher: TypedHmac | None = entry.derived.get(("person", first))
        if hasher is None:
            hasher = entry.derived.setdefault(
                ("person", first), TypedHmac(entry.material[first], PERSON_KEY_LABEL, "ring")
            )
        return hasher.hexdigest(PERSON_ID_TYPE, normalised)

    def blind_index_version(self) -> int:
        """Return the index key version that ``blind_index`` uses now."""
        version = self._entry(KeyKind.INDEX, INDEX_KEY_ID, create=True).doc.active_version
        assert version is not None
        return version

    def rotate_index_key(self, session: Session, *, actor: KeyActor) -> int:
        """Stage a new index key version (not used until activated); return its number."""
        self._entry(KeyKind.INDEX, INDEX_KEY_ID, create=True)
        return self._rotate(session, KeyKind.INDEX, INDEX_KEY_ID, actor, activate=False)

    def activate_index_key(self, session: Session, version: int, *, actor: KeyActor) -> None:
        """Make ``version`` the index key ``blind_index`` uses; do this only after re-indexing."""
        audit_log.lock_head(session)
        with files.ring_lock(self._dir):
            self._check_ring_current()
            found = self._read_doc(KeyKind.INDEX, INDEX_KEY_ID)
            if found is None or version not in {v.version for v in found[0].versions}:
                raise InvalidInputError(f"the index key has no version {version}")
            doc = found[0]
            self._audit(
                session,
                AuditEventType.KEY_ACTIVATE,
                actor,
                key_kind=str(KeyKind.INDEX),
                key_id=INDEX_KEY_ID,
                version=version,
                previous=doc.active_version,
            )
            doc.active_version = version
            files.replace(self._path(KeyKind.INDEX, INDEX_KEY_ID), doc.to_bytes())
        self._forget(KeyKind.INDEX, INDEX_KEY_ID)

    # ---------------------------------------------------------------- research projects

    def pseudonymiser(self, project_id: str) -> Pseudonymiser:
        """Return the project's pseudonymiser, creating its secret on first use.

        Raises KeyShreddedError if the project's secret was shredded.
        """
        key_id = _check_id(project_id, "project")
        entry = self._entry(KeyKind.PROJECT, key_id, create=True)
        version = entry.doc.active_version
        assert version is not None

        def check_live() -> None:
            self._entry(KeyKind.PROJECT, key_id)

        return Pseudonymiser(key_id, version, entry.material[version], check_live)

    def shred_project(
        self,
        session: Session,
        project_id: str,
        *,
        actor: KeyActor,
        reason: ShredReason = ShredReason.RETENTION,
        by: str | None = None,
    ) -> bool:
        """Destroy the project's pseudonymisation secret for good; see :meth:`shred_case`."""
        return self._shred(
            session, KeyKind.PROJECT, _check_id(project_id, "project"), actor, reason, by
        )

    def shredded_error(self, kind: KeyKind, key_id: str) -> KeyShreddedError | None:
        """Return the error saying who destroyed this key and when, or None if it is not shredded.

        ``by`` and the time are those recorded in the key's tombstone.
        """
        found = self._read_doc(kind, _check_id(key_id, str(kind)))
        if found is None or not found[0].shredded:
            return None
        return _shredded_error(found[0])

    def has_key(self, kind: KeyKind, key_id: str) -> bool:
        """Return True if the ring holds a key (or the tombstone of one) for ``key_id``."""
        return self._read_doc(kind, _check_id(key_id, str(kind))) is not None

    # ---------------------------------------------------------------- signing

    def signer(self) -> Ed25519Signer:
        """Return the signer of the active signing key version."""
        entry = self._entry(KeyKind.SIGNING, SIGNING_KEY_ID, create=True)
        version = entry.doc.active_version
        signer: Ed25519Signer | None = entry.derived.get(("signer", version))
        if signer is None:
            assert version is not None
            signer = entry.derived.setdefault(
                ("signer", version), Ed25519Signer.from_private_bytes(entry.material[version])
            )
        return signer

    def signing_public_keys(self) -> list[SigningPublicKey]:
        """Return the public keys of every signing key version, oldest first."""
        doc = self._entry(KeyKind.SIGNING, SIGNING_KEY_ID, create=True).doc
        return [
            SigningPublicKey(v.version, v.public_key, v.created_at, v.version == doc.active_version)
            for v in doc.versions
            if v.public_key is not None
        ]

    def rotate_signing_key(self, session: Session, *, actor: KeyActor) -> int:
        """Add and activate a new signing key version; old public keys stay published."""
        self._entry(KeyKind.SIGNING, SIGNING_KEY_ID, create=True)
        return self._rotate(session, KeyKind.SIGNING, SIGNING_KEY_ID, actor, activate=True)

    # ---------------------------------------------------------------- the ring

    def rewrap(self, session: Session, new_master: MasterSecret, *, actor: KeyActor) -> int:
        """Re-encrypt every wrapped key under a KEK from ``new_master``; return how many files.

        Afterwards only ``new_master`` opens the ring. Resumable: an interrupted rewrap
        is finished by running it again with the same new master secret. Other processes
        must be restarted with the new master secret.
        """
        audit_log.lock_head(session)
        with files.ring_lock(self._dir):
            ring_doc = self._read_ring_doc(self._dir)
            if ring_doc is None or not self._kek.matches(str(ring_doc["kek"].get("check", ""))):
                raise KeyRingError(
                    "the key ring changed under this process (rewrapped?); open it again"
                )
            pending = ring_doc.get("pending_kek")
            if isinstance(pending, dict):
                new_kek = new_master.derive(str(pending["id"]), pending["kdf"])
                if not new_kek.matches(str(pending.get("check", ""))):
                    raise KeyRingError(
                        "an interrupted rewrap to a different master key must be finished "
                        "first: run it again with that key in GATEWAY_NEW_MASTER_KEY"
                    )
            else:
                params = new_master.new_kdf_params()
                new_kek = new_master.derive(new_kek_id(), params)
                pending = {
                    "id": new_kek.kek_id,
                    "source": new_master.kind,
                    "kdf": params,
                    "check": new_kek.check_value(),
                }
                ring_doc["pending_kek"] = pending
                self._ring_doc = ring_doc
                files.replace(self._dir / RING_FILE, _ring_bytes(ring_doc))
            self._audit(
                session,
                AuditEventType.KEYRING_REWRAP,
                actor,
                old_kek=self._kek.kek_id,
                new_kek=new_kek.kek_id,
                source=new_master.kind,
            )
            count = 0
            for kind in KeyKind:
                for path in files.list_json(self._dir / _FOLDER[kind]):
                    if kind in _SYSTEM_FILE and path.stem != _SYSTEM_FILE[kind]:
                        continue
                    count += self._rewrap_file(kind, path, new_kek)
            ring_doc["kek"] = pending
            ring_doc["pending_kek"] = None
            files.replace(self._dir / RING_FILE, _ring_bytes(ring_doc))
            self._kek = new_kek
            self._ring_doc = ring_doc
            with self._lock:
                self._cache.clear()
        log.info("key ring rewrapped", extra={"fields": {"kek_id": new_kek.kek_id, "files": count}})
        return count

    def _rewrap_file(self, kind: KeyKind, path: Path, new_kek: Kek) -> int:
        found = files.read_private(path, self._dir)
        if found is None:
            return 0
        try:
            doc = _KeyDoc.parse(found[0])
        except (ValueError, KeyError, TypeError, binascii.Error) as exc:
            raise KeyRingError(f"key file {path} is damaged") from exc
        if doc.kind is not kind or path.stem != _SYSTEM_FILE.get(kind, doc.key_id):
            raise IntegrityCheckFailed()
        if doc.kek_id == new_kek.kek_id:
            return 0  # done before an interruption
        if doc.kek_id != self._kek.kek_id:
            raise self._foreign_kek_error(doc)
        versions = []
        for v in doc.versions:
            label = WrapLabel(str(kind), doc.key_id, v.version)
            raw = self._kek.unwrap(label, v.wrapped)
            versions.append(replace(v, wrapped=new_kek.wrap(label, raw)))
        doc.versions = versions
        doc.kek_id = new_kek.kek_id
        files.replace_destroying_old(path, doc.to_bytes())
        return 1

    def describe(self) -> list[KeyInfo]:
        """Return every key's ids, versions, dates and state (never material), by kind and id."""
        infos: list[KeyInfo] = []
        for kind in KeyKind:
            for path in files.list_json(self._dir / _FOLDER[kind]):
                if kind in _SYSTEM_FILE and path.stem != _SYSTEM_FILE[kind]:
                    continue
                found = files.read_private(path, self._dir)
                if found is None:
                    continue
                try:
                    infos.append(_KeyDoc.parse(found[0]).info())
                except (ValueError, KeyError, TypeError, binascii.Error) as exc:
                    raise KeyRingError(f"key file {path} is damaged") from exc
        return infos

    @property
    def info(self) -> RingInfo:
        """Return the ring's folder, KEK id, KEK source and KDF, and creation time."""
        kek = self._ring_doc["kek"]
        return RingInfo(
            keys_dir=self._dir,
            kek_id=self._kek.kek_id,
            source=str(kek.get("source")),
            kdf=str(kek.get("kdf", {}).get("name")),
            created_at=as_utc(datetime.fromisoformat(self._ring_doc["created_at"])),
        )

    def readiness(self) -> str | None:
        """Return None if the ring is usable by this process, else a short reason."""
        try:
            files.check_private_dir(self._dir, self._dir)
            doc = self._read_ring_doc(self._dir)
        except GatewayError as exc:
            return exc.detail
        if doc is None:
            return f"no key ring in {self._dir}"
        kek = doc["kek"]
        if kek.get("id") != self._kek.kek_id or not self._kek.matches(str(kek.get("check", ""))):
            return "the key ring was rewrapped under another master key; restart this process"
        return None

    def __repr__(self) -> str:
        return f"KeyRing({str(self._dir)!r}, kek_id={self._kek.kek_id})"


def _ring_bytes(ring_doc: dict[str, Any]) -> bytes:
    return json.dumps(ring_doc, indent=1, sort_keys=True).encode() + b"\n"
