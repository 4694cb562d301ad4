"""Offline proof bundles in the C2SP tlog-proof format.

A bundle is the line ``c2sp.org/tlog-proof@v1``, an optional ``extra <base64>`` line,
``index <n>``, the inclusion proof (one base64 hash per line, from the leaf's sibling
up), a blank line, and the signed checkpoint verbatim. The gateway puts the entry's
canonical leaf document in ``extra``: it holds no personal data, and a verifier that
has no copy of the entry can check it, because its hash is what the proof proves.

Checking a bundle needs only the bundle, the log's public key and (optionally) the leaf
or its hash; no database, no settings. When the log has witnesses, the checkpoint carries
their cosignatures (c2sp.org/tlog-cosignature) and a verifier can require a quorum of
the witnesses it trusts.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Sequence
from dataclasses import dataclass

from gateway.audit.cosignature import CosignerKey, verify_witnessed
from gateway.audit.merkle import HASH_SIZE, ProofError, leaf_hash, verify_inclusion
from gateway.audit.note import Checkpoint, NoteVerifier, verify_checkpoint
from gateway.errors import IntegrityCheckFailed, InvalidInputError

HEADER = "c2sp.org/tlog-proof@v1"
FILE_SUFFIX = ".tlog-proof"
_DECIMAL = re.compile(r"0|[1-9][0-9]*")


@dataclass(frozen=True, slots=True)
class TlogProof:
    """The parts of a tlog-proof bundle (nothing in it is verified yet)."""

    index: int
    hashes: tuple[bytes, ...]
    checkpoint: str
    extra: bytes | None = None


@dataclass(frozen=True, slots=True)
class VerifiedInclusion:
    """What a verified bundle proves: leaf ``leaf_hash`` is entry ``index`` of ``checkpoint``."""

    index: int
    leaf_hash: bytes
    checkpoint: Checkpoint
    leaf: bytes | None
    witnesses: tuple[str, ...] = ()
    """The names of the trusted witnesses whose cosignatures verified."""


def format_tlog_proof(
    index: int, hashes: Sequence[bytes], checkpoint_note: str, extra: bytes | None = None
) -> str:
    """Return the tlog-proof text for an inclusion proof and the signed checkpoint it is for."""
    lines = [HEADER]
    if extra is not None:
        lines.append("extra " + base64.b64encode(extra).decode("ascii"))
    lines.append(f"index {index}")
    lines.extend(base64.b64encode(h).decode("ascii") for h in hashes)
    return "\n".join(lines) + "\n\n" + checkpoint_note


def parse_tlog_proof(text: str) -> TlogProof:
    """Split a tlog-proof into its parts; raise InvalidInputError if it is not one."""
    head, sep, checkpoint = text.partition("\n\n")
    lines = head.split("\n")
    if not sep or not lines or lines[0] != HEADER:
        raise InvalidInputError(f"not a proof bundle: it must start with {HEADER}")
    rest = lines[1:]
    extra: bytes | None = None
    try:
        if rest and rest[0].startswith("extra "):
            extra = base64.b64decode(rest.pop(0)[len("extra ") :], validate=True)
        if not rest or not rest[0].startswith("index "):
            raise InvalidInputError("not a proof bundle: the index line is missing")
        number = rest.pop(0)[len("index ") :]
        if not _DECIMAL.fullmatch(number):
            raise InvalidInputError("not a proof bundle: the index is not a decimal")
        hashes = tuple(base64.b64decode(line, validate=True) for line in rest)
    except binascii.Error as exc:
        raise InvalidInputError("not a proof bundle: a line is not base64") from exc
    if any(len(h) != HASH_SIZE for h in hashes):
        raise InvalidInputError("not a proof bundle: proof hashes have 32 bytes")
    return TlogProof(index=int(number), hashes=hashes, checkpoint=checkpoint, extra=extra)


def verify_tlog_proof(
    text: str,
    verifiers: Sequence[NoteVerifier],
    *,
    leaf: bytes | None = None,
    leaf_hash_value: bytes | None = None,
    origin: str | None = None,
    witnesses: Sequence[CosignerKey] = (),
    quorum: int | None = None,
) -> VerifiedInclusion:
    """Check a bundle: the checkpoint's signature, then the inclusion of the leaf under it.

    The leaf is ``leaf`` (its data), else ``leaf_hash_value``, else the leaf carried in
    the bundle's extra line. With ``witnesses``, ``quorum`` of them (default: all) must
    have cosigned the checkpoint. Raises InvalidInputError for a malformed bundle, a
    missing leaf or an impossible quorum, IntegrityCheckFailed if anything does not verify.
    """
    bundle = parse_tlog_proof(text)
    if leaf is None and leaf_hash_value is None:
        leaf = bundle.extra
    if leaf is not None:
        if leaf_hash_value is not None and leaf_hash(leaf) != leaf_hash_value:
            raise IntegrityCheckFailed()
        leaf_hash_value = leaf_hash(leaf)
    if leaf_hash_value is None:
        raise InvalidInputError("the bundle carries no leaf: give the leaf or its hash")
    checkpoint = verify_checkpoint(bundle.checkpoint, verifiers, origin)
    cosigned: tuple[str, ...] = ()
    if witnesses or quorum is not None:
        needed = len(witnesses) if quorum is None else quorum
        witnessed = verify_witnessed(bundle.checkpoint, verifiers, witnesses, needed, origin)
        cosigned = tuple(c.witness.name for c in witnessed.cosignatures)
    try:
        verify_inclusion(
            bundle.index, checkpoint.size, leaf_hash_value, bundle.hashes, checkpoint.root
        )
    except ProofError as exc:
        raise IntegrityCheckFailed() from exc
    return VerifiedInclusion(
        index=bundle.index,
        leaf_hash=leaf_hash_value,
        checkpoint=checkpoint,
        leaf=leaf,
        witnesses=cosigned,
    )
