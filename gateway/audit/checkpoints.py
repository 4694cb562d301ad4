"""Signing, storing and serving checkpoints of the audit log, and proof bundles under them.

A checkpoint is signed only after the tree it describes is checked against its stored
neighbours: the signatures on the nearest earlier and later checkpoints must verify and
consistency proofs built from the stored nodes must link them to the new root. A
tampered store therefore cannot get a fresh signature that would launder the change.

Stored checkpoints can be deleted by whoever can write the database, so the tree is
also checked against the checkpoints the log's witnesses cosigned (kept outside the
database, see ``gateway.audit.witnessing``), attached to the database handle with
``attach_witnesses``: a rewritten or rolled-back store is refused a signature.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol
from weakref import WeakKeyDictionary

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from gateway.audit import log, sequencer
from gateway.audit.bundle import format_tlog_proof
from gateway.audit.errors import AuditLogCorruptError
from gateway.audit.merkle import ProofError, verify_consistency
from gateway.audit.note import Checkpoint, NoteVerifier, verify_checkpoint
from gateway.clock import Clock
from gateway.db import Database
from gateway.errors import InvalidInputError, NotFoundError
from gateway.keys.errors import IntegrityCheckFailedError
from gateway.keys.signing import Ed25519Signer
from gateway.models.audit import AuditCheckpoint, AuditEntry


class CheckpointWitnesses(Protocol):
    """The log's witnesses as checkpoint signing sees them (``witnessing.Witnessing``)."""

    def anchors(self) -> Sequence[Checkpoint]:
        """Return the newest checkpoints the witnesses cosigned (log signature verified)."""
        ...

    def signed(self, row: AuditCheckpoint) -> None:
        """Called after a new checkpoint was stored, to have it cosigned (not waited for)."""
        ...

    def witnessed_note(self, row: AuditCheckpoint, *, cosign: bool = False) -> str:
        """Return the note with its verified cosignatures (asking for them first if ``cosign``)."""
        ...


_witnesses: WeakKeyDictionary[Database, CheckpointWitnesses] = WeakKeyDictionary()


def attach_witnesses(db: Database, witnesses: CheckpointWitnesses | None) -> None:
    """Make every checkpoint signed through ``db`` consistent with what ``witnesses`` cosigned."""
    if witnesses is None:
        _witnesses.pop(db, None)
    else:
        _witnesses[db] = witnesses


def log_verifiers(
    origin: str, signer: Ed25519Signer, retired_public_keys: Sequence[bytes] = ()
) -> list[NoteVerifier]:
    """Return the note verifiers of the log's current and earlier keys (named by the origin)."""
    keys = [signer.public_key, *retired_public_keys]
    return [NoteVerifier(origin, key) for key in dict.fromkeys(keys)]


def latest_checkpoint(session: Session) -> AuditCheckpoint | None:
    """Return the stored checkpoint of the largest tree size, if any."""
    return session.exec(
        select(AuditCheckpoint).order_by(col(AuditCheckpoint.tree_size).desc()).limit(1)
    ).first()


def _neighbours(
    session: Session, size: int
) -> tuple[AuditCheckpoint | None, AuditCheckpoint | None]:
    below = session.exec(
        select(AuditCheckpoint)
        .where(col(AuditCheckpoint.tree_size) < size)
        .order_by(col(AuditCheckpoint.tree_size).desc())
        .limit(1)
    ).first()
    above = session.exec(
        select(AuditCheckpoint)
        .where(col(AuditCheckpoint.tree_size) > size)
        .order_by(col(AuditCheckpoint.tree_size))
        .limit(1)
    ).first()
    return below, above


def _check_consistent(
    session: Session, size: int, root: bytes, verifiers: Sequence[NoteVerifier], origin: str
) -> None:
    """Raise AuditLogCorruptError unless ``root`` at ``size`` is consistent with its neighbours."""
    below, above = _neighbours(session, size)
    try:
        if below is not None and below.tree_size > 0:
            signed = verify_checkpoint(below.note, verifiers, origin)
            proof = log.consistency_proof(session, signed.size, size)
            verify_consistency(signed.size, size, signed.root, root, proof.hashes)
        if above is not None and size > 0:
            signed = verify_checkpoint(above.note, verifiers, origin)
            proof = log.consistency_proof(session, size, signed.size)
            verify_consistency(size, signed.size, root, signed.root, proof.hashes)
    except (IntegrityCheckFailedError, ProofError, InvalidInputError) as exc:
        raise AuditLogCorruptError(
            f"refusing to sign a checkpoint at size {size}: the stored tree is not consistent "
            "with the checkpoints signed before; run `gateway audit verify`"
        ) from exc


def check_witnessed(
    session: Session, size: int, root: bytes, anchors: Sequence[Checkpoint]
) -> None:
    """Raise AuditLogCorruptError unless the tree at ``size`` extends or precedes every anchor.

    An anchor larger than the stored log means the database was rolled back (e.g. an
    older backup restored); one whose root the stored nodes do not reproduce means the
    stored history was rewritten since a witness cosigned it.
    """
    current = log.head_size(session)
    for anchor in anchors:
        if anchor.size == 0:
            continue
        if anchor.size > current:
            raise AuditLogCorruptError(
                f"refusing to sign: the log holds {current} entries but its witnesses cosigned "
                f"{anchor.size}; the database was rolled back (an older backup?)"
            )
        if size == 0:
            continue
        ours, theirs = (size, root), (anchor.size, anchor.root)
        (first, first_root), (second, second_root) = sorted((ours, theirs))
        try:
            proof = log.consistency_proof(session, first, second)
            verify_consistency(first, second, first_root, second_root, proof.hashes)
        except (ProofError, InvalidInputError) as exc:
            raise AuditLogCorruptError(
                f"refusing to sign a checkpoint at size {size}: the stored tree is not "
                f"consistent with the checkpoint its witnesses cosigned at size {anchor.size}; "
                "run `gateway audit verify`"
            ) from exc


def create_checkpoint(
    db: Database,
    clock: Clock,
    signer: Ed25519Signer,
    origin: str,
    size: int | None = None,
    *,
    retired_public_keys: Sequence[bytes] = (),
) -> AuditCheckpoint:
    """Sign and store a checkpoint of the tree at ``size`` (default: its current size).

    Returns the stored checkpoint if one at that size exists already. Raises
    InvalidInputError for a size the log
    has not reached, AuditLogCorruptError if the tree contradicts earlier checkpoints.
    """
    if size is None:
        sequencer.catch_up(db)
    with db.read() as session:
        target = log.head_size(session) if size is None else size
        existing = session.get(AuditCheckpoint, target)
    if existing is not None:
        return existing
    return _sign(db, clock, signer, origin, size, target, retired_public_keys)


def _sign(
    db: Database,
    clock: Clock,
    signer: Ed25519Signer,
    origin: str,
    size: int | None,
    target: int,
    retired_public_keys: Sequence[bytes],
) -> AuditCheckpoint:
    """Sign and store the checkpoint at ``size`` (None: the current size, ``target`` as read
    just before); return it, or the one another process stored at that size meanwhile."""
    verifiers = log_verifiers(origin, signer, retired_public_keys)
    witnesses = _witnesses.get(db)
    anchors = witnesses.anchors() if witnesses is not None else ()
    try:
        with db.write() as session:
            if size is None:
                target = log.lock_head(session).size  # the tree cannot grow under us
            existing = session.get(AuditCheckpoint, target)
            if existing is not None:
                return existing
            root = log.root_at(session, target)
            _check_consistent(session, target, root, verifiers, origin)
            check_witnessed(session, target, root, anchors)
            checkpoint = Checkpoint(origin=origin, size=target, root=root)
            row = AuditCheckpoint(
                tree_size=target,
                root=root,
                note=checkpoint.sign(signer),
                key_name=origin,
                key_id=verifiers[0].key_id.hex(),
                created_at=clock.now(),
            )
            session.add(row)
    except IntegrityError:
        # Another process signed this size at the same moment; theirs is as good.
        with db.read() as session:
            existing = session.get(AuditCheckpoint, target)
        if existing is None:
            raise
        return existing
    if witnesses is not None:
        witnesses.signed(row)
    return row


def current_checkpoint(
    db: Database,
    clock: Clock,
    signer: Ed25519Signer,
    origin: str,
    *,
    retired_public_keys: Sequence[bytes] = (),
) -> AuditCheckpoint:
    """Return the latest checkpoint, signing a new one first if the tree grew since."""
    sequencer.catch_up(db)
    with db.read() as session:
        size = log.head_size(session)
        latest = latest_checkpoint(session)
    if latest is not None and latest.tree_size == size:
        return latest
    # caught up and read just now: straight to signing (``_sign`` rereads the size locked)
    return _sign(db, clock, signer, origin, None, size, retired_public_keys)


def checkpoint_covering(
    db: Database,
    clock: Clock,
    signer: Ed25519Signer,
    origin: str,
    index: int,
    size: int | None = None,
    *,
    retired_public_keys: Sequence[bytes] = (),
    sign_past_size: bool = False,
) -> AuditCheckpoint:
    """Return a signed checkpoint whose tree contains entry ``index`` (and ``size`` entries).

    That is the stored checkpoint of exactly ``size`` if there is one, else the newest
    stored checkpoint that is large enough, else one of the current tree, signed now:
    only the current size is ever signed on request, so callers cannot make the gateway
    sign (and store) a checkpoint per past size. ``sign_past_size`` (the operator's
    ``gateway audit prove --size``) signs one at exactly ``size`` instead. Raises
    NotFoundError if the entry is not in the tree of that size and InvalidInputError for
    a size the log has not reached.
    """
    sequencer.catch_up(db)
    with db.read() as session:
        current = log.head_size(session)
        latest = latest_checkpoint(session)
        exact = session.get(AuditCheckpoint, size) if size is not None else None
    if size is None:
        if index >= current:
            raise NotFoundError(f"no entry {index} in the log")
    else:
        if size > current:
            raise InvalidInputError(
                f"tree size {size} is not between 0 and the log's size {current}"
            )
        if not 0 <= index < size:
            raise NotFoundError(f"no entry {index} in the log at size {size}")
        if exact is not None:
            return exact
        if sign_past_size:
            return create_checkpoint(
                db, clock, signer, origin, size, retired_public_keys=retired_public_keys
            )
    needed = max(index + 1, size or 0)
    if latest is not None and latest.tree_size >= needed:
        return latest
    return create_checkpoint(db, clock, signer, origin, retired_public_keys=retired_public_keys)


def witnessed_note(db: Database, checkpoint: AuditCheckpoint, *, cosign: bool = False) -> str:
    """Return the checkpoint's signed note with its witnesses' cosignatures, when it has any.

    With ``cosign``, a checkpoint not yet witnessed is sent to the witnesses first (this
    waits for them; proofs use it, since a proof is handed out to be checked offline).
    """
    witnesses = _witnesses.get(db)
    if witnesses is None:
        return checkpoint.note
    return witnesses.witnessed_note(checkpoint, cosign=cosign)


def proof_bundle(db: Database, checkpoint: AuditCheckpoint, index: int) -> str:
    """Return the tlog-proof of entry ``index`` under ``checkpoint``, with its leaf as extra data.

    Raises NotFoundError if the entry is not in that tree.
    """
    with db.read() as session:
        proof = log.inclusion_proof(session, index, checkpoint.tree_size)
        entry = session.get(AuditEntry, index)
    if entry is None:  # the proof read its leaf hash, so only a concurrent deletion gets here
        raise NotFoundError(f"no entry {index} in the log")
    note = witnessed_note(db, checkpoint, cosign=True)
    return format_tlog_proof(index, proof.hashes, note, extra=entry.leaf.encode())
