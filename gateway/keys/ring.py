"""The key ring: wrapped, versioned keys on disk under a key-encryption key from the environment.

The files and their format are ``gateway.keys.documents``'. This module opens the ring,
caches unwrapped keys and offers the recipes: seal and open a case record's field,
blind-index and person-key an identifier, pseudonymise for a research project, sign.
Rotating, shredding and rewrapping keys (the only operations that write key files
after creation, and the only ones audited) are ``gateway.keys.lifecycle``'s; the ring's
methods of those names call it. Nothing here ever logs, prints or raises key material.

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

import logging
import os
import time
from collections.abc import Callable, Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlmodel import Session

from gateway.clock import Clock, SystemClock, as_utc
from gateway.config import Settings
from gateway.errors import GatewayError, InvalidInputError
from gateway.keys import fields, files, lifecycle
from gateway.keys.cache import CACHE_LIMIT, KeyCache, LoadedKey
from gateway.keys.documents import (
    FOLDER,
    INDEX_KEY_ID,
    RING_FILE,
    SIGNING_KEY_ID,
    KeyActor,
    KeyDoc,
    KeyInfo,
    KeyKind,
    RingInfo,
    ShredReason,
    check_id,
    describe_keys,
    key_path,
    read_key_doc,
    read_ring_doc,
    shredded_error,
    valid_key_id,
)
from gateway.keys.errors import (
    KeyRingError,
    KeyShreddedError,
    UnknownKeyError,
)
from gateway.keys.master import Kek, MasterSecret, WrapLabel, unlock
from gateway.keys.pseudonyms import (
    BLIND_INDEX_LABEL,
    PERSON_ID_TYPE,
    PERSON_KEY_LABEL,
    Pseudonymiser,
    TypedHmac,
)
from gateway.keys.signing import Ed25519Signer, SigningPublicKey

__all__ = [
    "CACHE_LIMIT",
    "INDEX_KEY_ID",
    "RECHECK_SECONDS",
    "SIGNING_KEY_ID",
    "KeyKind",
    "KeyRing",
    "ShredReason",
    "valid_key_id",
]

log = logging.getLogger("gateway.keys")

RECHECK_SECONDS = 1.0


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
        self._cache = KeyCache(recheck_seconds, monotonic)

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
        ring_doc = read_ring_doc(keys_dir)
        if ring_doc is None:
            raise KeyRingError(f"no key ring in {keys_dir}; run `gateway init` to create it")
        kek = unlock(keys_dir, ring_doc, master, settings)
        ring = cls(
            keys_dir,
            kek,
            ring_doc,
            clock=clock or SystemClock(),
            recheck_seconds=recheck_seconds,
            monotonic=monotonic,
        )
        for kind in (KeyKind.CASE, KeyKind.PROJECT, KeyKind.INDEX):
            folder = keys_dir / FOLDER[kind]
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
        return lifecycle.create_ring(
            cls, settings, session, clock=clock, actor=actor, recheck_seconds=recheck_seconds
        )

    # ---------------------------------------------------------------- key files

    def _path(self, kind: KeyKind, key_id: str) -> Path:
        return key_path(self._dir, kind, key_id)

    def _read_doc(self, kind: KeyKind, key_id: str) -> tuple[KeyDoc, os.stat_result] | None:
        found = read_key_doc(self._dir, kind, key_id)
        if found is not None and found[0].kek_id != self._kek.kek_id and not found[0].shredded:
            raise self._foreign_kek_error(found[0])  # tombstones hold no keys
        return found

    def _adopt(self, ring_doc: dict[str, Any], kek: Kek | None = None) -> None:
        """Take ``ring_doc`` as the ring's (after a rewrap: with its new ``kek``, cache emptied)."""
        self._ring_doc = ring_doc
        if kek is not None:
            self._kek = kek
            self._cache.clear()

    def _foreign_kek_error(self, doc: KeyDoc) -> KeyRingError:
        pending = self._ring_doc.get("pending_kek")
        if isinstance(pending, dict) and pending.get("id") == doc.kek_id:
            return KeyRingError(
                "a rewrap was interrupted; run `gateway keys rewrap` again to finish it"
            )
        return KeyRingError(
            "the key ring was rewrapped under another master key since this process started; "
            "restart it with the new GATEWAY_MASTER_KEY (or _PASSPHRASE)"
        )

    def _load(self, kind: KeyKind, key_id: str, *, create: bool) -> LoadedKey:
        found = self._read_doc(kind, key_id)
        if found is None and create:
            lifecycle.create_key(self, kind, key_id)
            found = self._read_doc(kind, key_id)
        if found is None:
            raise UnknownKeyError(f"no key for {kind} {key_id}", key_kind=str(kind), key_id=key_id)
        doc, st = found
        loaded = LoadedKey(doc, files.file_signature(st), self._cache.monotonic())
        for v in doc.versions:
            loaded.material[v.version] = self._kek.unwrap(
                WrapLabel(str(kind), key_id, v.version), v.wrapped
            )
        return loaded

    def _entry(self, kind: KeyKind, key_id: str, *, create: bool = False) -> LoadedKey:
        """Return the live key ``(kind, key_id)``, re-checking its file every ``recheck`` seconds.

        Raises UnknownKeyError if absent (unless ``create``), KeyShreddedError if shredded.
        """
        entry = self._cache.fresh(kind, key_id)
        if entry is None:
            entry = self._cache.refresh(
                kind,
                key_id,
                self._path(kind, key_id),
                lambda: self._load(kind, key_id, create=create),
            )
        if entry.doc.shredded:
            raise shredded_error(entry.doc)
        return entry

    def _forget(self, kind: KeyKind, key_id: str) -> None:
        self._cache.forget(kind, key_id)

    # ---------------------------------------------------------------- cases

    def create_case_key(self, case_id: str) -> int:
        """Create the case's data key if absent; return its active version.

        Raises KeyShreddedError if the case's key was shredded (it is never recreated).
        """
        entry = self._entry(KeyKind.CASE, check_id(case_id, "case"), create=True)
        assert entry.doc.active_version is not None
        return entry.doc.active_version

    def case_key_version(self, case_id: str) -> int:
        """Return the case key version new seals use; raise UnknownKeyError, KeyShreddedError."""
        entry = self._entry(KeyKind.CASE, check_id(case_id, "case"))
        assert entry.doc.active_version is not None
        return entry.doc.active_version

    def seal_field(self, case_id: str, record_id: str, field: str, plaintext: bytes) -> bytes:
        """Return ``plaintext`` encrypted with the case's active key, bound to record and field.

        Raises UnknownKeyError if the case has no key, KeyShreddedError if it was shredded.
        """
        return self.seal_fields(case_id, record_id, {field: plaintext})[field]

    def seal_fields(
        self, case_id: str, record_id: str, plaintexts: Mapping[str, bytes]
    ) -> dict[str, bytes]:
        """Return each of a row's fields sealed as ``seal_field`` would, the key looked up once."""
        entry = self._entry(KeyKind.CASE, check_id(case_id, "case"))
        version = entry.doc.active_version
        assert version is not None
        aead = entry.aead_of(version)
        owner = fields.owner_associated_data(case_id, record_id)
        return {name: fields.seal(aead, version, owner, name, p) for name, p in plaintexts.items()}

    def open_field(self, case_id: str, record_id: str, field: str, blob: bytes) -> bytes:
        """Return the plaintext of a field sealed for this case, record and field.

        Raises IntegrityCheckFailed if the blob was altered or belongs elsewhere,
        KeyShreddedError if the case's key was shredded, UnknownKeyError if it never existed.
        """
        return self.open_fields(case_id, record_id, {field: blob})[field]

    def open_fields(
        self, case_id: str, record_id: str, blobs: Mapping[str, bytes]
    ) -> dict[str, bytes]:
        """Return the plaintexts of a row's sealed fields, as ``open_field`` would each, the
        case's key looked up once."""
        entry = self._entry(KeyKind.CASE, check_id(case_id, "case"))
        owner = fields.owner_associated_data(case_id, record_id)
        return {
            name: fields.open_sealed(entry.aead_of(fields.blob_version(blob)), owner, name, blob)
            for name, blob in blobs.items()
        }

    def reseal_field(self, case_id: str, record_id: str, field: str, blob: bytes) -> bytes:
        """Return ``blob`` re-encrypted under the case's active key version (after a rotation)."""
        plaintext = self.open_field(case_id, record_id, field, blob)
        return self.seal_field(case_id, record_id, field, plaintext)

    def rotate_case_key(self, session: Session, case_id: str, *, actor: KeyActor) -> int:
        """Add and activate a new version of the case's key; return it. Old versions still read."""
        key_id = check_id(case_id, "case")
        return lifecycle.rotate(self, session, KeyKind.CASE, key_id, actor, activate=True)

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
        key_id = check_id(case_id, "case")
        return lifecycle.shred(self, session, KeyKind.CASE, key_id, actor, reason, by)

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
        return lifecycle.rotate(self, session, KeyKind.INDEX, INDEX_KEY_ID, actor, activate=False)

    def activate_index_key(self, session: Session, version: int, *, actor: KeyActor) -> None:
        """Make ``version`` the index key ``blind_index`` uses; do this only after re-indexing."""
        lifecycle.activate_index_key(self, session, version, actor)

    # ---------------------------------------------------------------- research projects

    def pseudonymiser(self, project_id: str) -> Pseudonymiser:
        """Return the project's pseudonymiser, creating its secret on first use.

        Raises KeyShreddedError if the project's secret was shredded.
        """
        key_id = check_id(project_id, "project")
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
        key_id = check_id(project_id, "project")
        return lifecycle.shred(self, session, KeyKind.PROJECT, key_id, actor, reason, by)

    def shredded_error(self, kind: KeyKind, key_id: str) -> KeyShreddedError | None:
        """Return the error saying who destroyed this key and when, or None if it is not shredded.

        ``by`` and the time are those recorded in the key's tombstone.
        """
        found = self._read_doc(kind, check_id(key_id, str(kind)))
        if found is None or not found[0].shredded:
            return None
        return shredded_error(found[0])

    def has_key(self, kind: KeyKind, key_id: str) -> bool:
        """Return True if the ring holds a key (or the tombstone of one) for ``key_id``."""
        return self._read_doc(kind, check_id(key_id, str(kind))) is not None

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
        return lifecycle.rotate(
            self, session, KeyKind.SIGNING, SIGNING_KEY_ID, actor, activate=True
        )

    def rewrap(self, session: Session, new_master: MasterSecret, *, actor: KeyActor) -> int:
        """Re-encrypt every wrapped key under a KEK from ``new_master``; return how many files.

        Afterwards only ``new_master`` opens the ring. Resumable: an interrupted rewrap
        is finished by running it again with the same new master secret. Other processes
        must be restarted with the new master secret.
        """
        return lifecycle.rewrap(self, session, new_master, actor)

    def describe(self) -> list[KeyInfo]:
        """Return every key's ids, versions, dates and state (never material), by kind and id."""
        return describe_keys(self._dir)

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
            doc = read_ring_doc(self._dir)
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
