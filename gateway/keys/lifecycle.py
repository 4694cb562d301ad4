"""The key ring's lifecycle: create the ring and keys, rotate, activate, shred and rewrap.

These are the only operations that write key files after a key exists, and (apart from
creating a key on first use) the only ones that need a database session: each is
recorded through ``gateway.usecase.record_event`` in the caller's transaction, taking
the audit log's head lock before the ring lock (one order, so no deadlock). The ring
(``gateway.keys.ring.KeyRing``) offers them as its methods; call them there.
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlmodel import Session

from gateway import usecase
from gateway.audit import log as audit_log
from gateway.audit.events import AuditEventType, RefValue
from gateway.clock import Clock
from gateway.config import Settings
from gateway.errors import InvalidInputError
from gateway.keys import files
from gateway.keys.documents import (
    DAMAGED,
    FOLDER,
    FORMAT,
    INDEX_KEY_ID,
    RING_FILE,
    SIGNING_KEY_ID,
    SYSTEM_FILE,
    KeyActor,
    KeyDoc,
    KeyKind,
    KeyVersion,
    ShredReason,
    fingerprint,
    key_files,
    read_ring_doc,
    ring_bytes,
    shredded_error,
)
from gateway.keys.errors import IntegrityCheckFailedError, KeyRingError, UnknownKeyError
from gateway.keys.master import Kek, MasterSecret, WrapLabel, new_kek_id
from gateway.keys.signing import Ed25519Signer

if TYPE_CHECKING:
    from gateway.keys.ring import KeyRing

log = logging.getLogger("gateway.keys")


def _record(
    ring: KeyRing,
    session: Session,
    event_type: AuditEventType,
    actor: KeyActor,
    *,
    case_id: str | None = None,
    **refs: RefValue,
) -> None:
    """Record a key event through the use-case seam (its entry names no policy rule)."""
    usecase.record_event(session, ring._clock, actor, event_type, case_id=case_id, refs=refs)


def check_ring_current(ring: KeyRing) -> None:
    """Raise KeyRingError unless the ring on disk is still wrapped under ``ring``'s KEK.

    Called under the ring lock before writing, so a process that missed a rewrap
    cannot add keys that only the retired master key could open.
    """
    doc = read_ring_doc(ring._dir)
    if doc is None:
        raise KeyRingError(f"no key ring in {ring._dir}; run `gateway init` to create it")
    kek = doc["kek"]
    if doc.get("pending_kek") or kek.get("id") != ring._kek.kek_id:
        raise KeyRingError(
            "the key ring is being or has been rewrapped under another master key; "
            "restart this process with the new GATEWAY_MASTER_KEY (or _PASSPHRASE)"
        )


def _new_version(ring: KeyRing, kind: KeyKind, key_id: str, version: int) -> KeyVersion:
    now = ring._clock.now()
    label = WrapLabel(str(kind), key_id, version)
    if kind is KeyKind.SIGNING:
        signer = Ed25519Signer.generate()
        return KeyVersion(
            version, now, ring._kek.wrap(label, signer.private_bytes()), signer.public_key
        )
    return KeyVersion(version, now, ring._kek.wrap(label, os.urandom(32)))


def create_key(ring: KeyRing, kind: KeyKind, key_id: str) -> bool:
    """Create version 1 of a key unless its file exists; return whether this call made it."""
    path = ring._path(kind, key_id)
    files.ensure_private_dir(path.parent, ring._dir)
    doc = KeyDoc(
        kind=kind,
        key_id=key_id,
        kek_id=ring._kek.kek_id,
        state="active",
        active_version=1,
        versions=[_new_version(ring, kind, key_id, 1)],
    )
    with files.ring_lock(ring._dir, shared=True):
        check_ring_current(ring)
        created = files.write_new(path, doc.to_bytes())
    if created:
        log.info("key created", extra={"fields": {"key_kind": str(kind), "key_id": key_id}})
    return created


def create_ring(
    ring_class: type[KeyRing],
    settings: Settings,
    session: Session,
    *,
    clock: Clock,
    actor: KeyActor,
    recheck_seconds: float,
) -> KeyRing:
    """Create the ring (KEK parameters, check value, index and signing keys) if absent.

    See ``KeyRing.create``; creation is audited in ``session``'s transaction.
    """
    master = MasterSecret.from_settings(settings)
    keys_dir = settings.keys_dir
    files.ensure_private_dir(keys_dir, keys_dir)
    if (keys_dir / RING_FILE).exists():
        return ring_class.open(settings, clock=clock, recheck_seconds=recheck_seconds)
    audit_log.lock_head(session)  # concurrent inits queue here
    if (keys_dir / RING_FILE).exists():
        return ring_class.open(settings, clock=clock, recheck_seconds=recheck_seconds)
    orphans = [p for kind in KeyKind for p in files.list_json(keys_dir / FOLDER[kind])]
    if orphans:
        raise KeyRingError(
            f"{keys_dir} holds key files but no {RING_FILE}; restore {RING_FILE} from a "
            "backup (a new ring could not open the existing keys)"
        )
    kek_id = new_kek_id()
    params = master.new_kdf_params()
    kek = master.derive(kek_id, params)
    now = clock.now()
    ring_doc: dict[str, Any] = {
        "format": FORMAT,
        "created_at": now.isoformat(),
        "kek": {"id": kek_id, "source": master.kind, "kdf": params, "check": kek.check_value()},
        "pending_kek": None,
    }
    if not files.write_new(keys_dir / RING_FILE, ring_bytes(ring_doc)):
        return ring_class.open(settings, clock=clock, recheck_seconds=recheck_seconds)
    ring = ring_class(
        keys_dir,
        kek,
        ring_doc,
        clock=clock,
        recheck_seconds=recheck_seconds,
        monotonic=time.monotonic,
    )
    for kind in KeyKind:
        files.ensure_private_dir(keys_dir / FOLDER[kind], keys_dir)
    create_key(ring, KeyKind.INDEX, INDEX_KEY_ID)
    create_key(ring, KeyKind.SIGNING, SIGNING_KEY_ID)
    _record(
        ring,
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


def rotate(
    ring: KeyRing, session: Session, kind: KeyKind, key_id: str, actor: KeyActor, *, activate: bool
) -> int:
    """Add a new version of key ``(kind, key_id)`` (made active if ``activate``); return it."""
    audit_log.lock_head(session)  # database lock first, then the ring lock: one order
    with files.ring_lock(ring._dir):
        check_ring_current(ring)
        found = ring._read_doc(kind, key_id)
        if found is None:
            raise UnknownKeyError(f"no key for {kind} {key_id}", key_kind=str(kind), key_id=key_id)
        doc = found[0]
        if doc.shredded:
            raise shredded_error(doc)
        version = max(v.version for v in doc.versions) + 1
        made = _new_version(ring, kind, key_id, version)
        # a signing key is what researchers pin: the log names each one
        named = {} if made.public_key is None else {"signing_key": fingerprint(made)}
        _record(
            ring,
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
        files.replace(ring._path(kind, key_id), doc.to_bytes())
    ring._forget(kind, key_id)
    log.info(
        "key rotated",
        extra={"fields": {"key_kind": str(kind), "key_id": key_id, "version": version}},
    )
    return version


def shred(
    ring: KeyRing,
    session: Session,
    kind: KeyKind,
    key_id: str,
    actor: KeyActor,
    reason: ShredReason,
    by: str | None,
) -> bool:
    """Replace key ``(kind, key_id)`` with a tombstone; return False if it already was one."""
    audit_log.lock_head(session)
    with files.ring_lock(ring._dir):
        check_ring_current(ring)
        files.ensure_private_dir(ring._path(kind, key_id).parent, ring._dir)
        found = ring._read_doc(kind, key_id)
        if found is not None and found[0].shredded:
            return False
        destroyed = len(found[0].versions) if found else 0
        _record(
            ring,
            session,
            AuditEventType.KEY_SHRED,
            actor,
            case_id=key_id if kind is KeyKind.CASE else None,
            key_kind=str(kind),
            key_id=key_id,
            versions_destroyed=destroyed,
            **({"reason": reason.value, "by": by} if reason is ShredReason.REQUEST else {}),
        )
        tombstone = KeyDoc(
            kind=kind,
            key_id=key_id,
            kek_id=ring._kek.kek_id,
            state="shredded",
            active_version=None,
            versions=[],
            shredded_at=ring._clock.now(),
            shred_reason=reason.value,
            shredded_by=by if reason is ShredReason.REQUEST else None,
        )
        files.replace_destroying_old(ring._path(kind, key_id), tombstone.to_bytes())
    ring._forget(kind, key_id)
    log.info("key shredded", extra={"fields": {"key_kind": str(kind), "key_id": key_id}})
    return True


def activate_index_key(ring: KeyRing, session: Session, version: int, actor: KeyActor) -> None:
    """Make ``version`` the index key ``blind_index`` uses; do this only after re-indexing."""
    audit_log.lock_head(session)
    with files.ring_lock(ring._dir):
        check_ring_current(ring)
        found = ring._read_doc(KeyKind.INDEX, INDEX_KEY_ID)
        if found is None or version not in {v.version for v in found[0].versions}:
            raise InvalidInputError(f"the index key has no version {version}")
        doc = found[0]
        _record(
            ring,
            session,
            AuditEventType.KEY_ACTIVATE,
            actor,
            key_kind=str(KeyKind.INDEX),
            key_id=INDEX_KEY_ID,
            version=version,
            previous=doc.active_version,
        )
        doc.active_version = version
        files.replace(ring._path(KeyKind.INDEX, INDEX_KEY_ID), doc.to_bytes())
    ring._forget(KeyKind.INDEX, INDEX_KEY_ID)


def rewrap(ring: KeyRing, session: Session, new_master: MasterSecret, actor: KeyActor) -> int:
    """Re-encrypt every wrapped key under a KEK from ``new_master``; return how many files.

    Afterwards only ``new_master`` opens the ring. Resumable: an interrupted rewrap
    is finished by running it again with the same new master secret. Other processes
    must be restarted with the new master secret.
    """
    audit_log.lock_head(session)
    with files.ring_lock(ring._dir):
        ring_doc = read_ring_doc(ring._dir)
        if ring_doc is None or not ring._kek.matches(str(ring_doc["kek"].get("check", ""))):
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
            ring._adopt(ring_doc)
            files.replace(ring._dir / RING_FILE, ring_bytes(ring_doc))
        _record(
            ring,
            session,
            AuditEventType.KEYRING_REWRAP,
            actor,
            old_kek=ring._kek.kek_id,
            new_kek=new_kek.kek_id,
            source=new_master.kind,
        )
        count = sum(_rewrap_file(ring, kind, path, new_kek) for kind, path in key_files(ring._dir))
        ring_doc["kek"] = pending
        ring_doc["pending_kek"] = None
        files.replace(ring._dir / RING_FILE, ring_bytes(ring_doc))
        ring._adopt(ring_doc, new_kek)
    log.info("key ring rewrapped", extra={"fields": {"kek_id": new_kek.kek_id, "files": count}})
    return count


def _rewrap_file(ring: KeyRing, kind: KeyKind, path: Path, new_kek: Kek) -> int:
    found = files.read_private(path, ring._dir)
    if found is None:
        return 0
    try:
        doc = KeyDoc.parse(found[0])
    except DAMAGED as exc:
        raise KeyRingError(f"key file {path} is damaged") from exc
    if doc.kind is not kind or path.stem != SYSTEM_FILE.get(kind, doc.key_id):
        raise IntegrityCheckFailedError()
    if doc.kek_id == new_kek.kek_id:
        return 0  # done before an interruption
    if doc.kek_id != ring._kek.kek_id:
        raise ring._foreign_kek_error(doc)
    versions = []
    for v in doc.versions:
        label = WrapLabel(str(kind), doc.key_id, v.version)
        raw = ring._kek.unwrap(label, v.wrapped)
        versions.append(replace(v, wrapped=new_kek.wrap(label, raw)))
    doc.versions = versions
    doc.kek_id = new_kek.kek_id
    files.replace_destroying_old(path, doc.to_bytes())
    return 1
