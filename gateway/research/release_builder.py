"""One research release, end to end: the function the gateway's service calls.

``make_release`` checks the agreement's period, runs the extract pipeline, encrypts the
data files to every researcher, writes and signs the manifest, packs the bundle and
publishes it atomically under ``<release id>.tar``. It needs no database: the caller
passes the consents, the generalisation state, the pseudonymiser and the signer, and
stores the returned state and manifest hash with its release record and audit entry.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from gateway.errors import ConflictError, InvalidInputError
from gateway.research.bundle import BUNDLE_SUFFIX, clean_stale_workdirs, publish, workdir
from gateway.research.bundle_pack import pack_encrypted
from gateway.research.extract import (
    ColumnBatch,
    ExtractRequest,
    ExtractStats,
    ProgressSink,
    batches_from_rows,
    input_fields,
    write_extract,
)
from gateway.research.generalise import GeneralisationState
from gateway.research.heap import release_pool
from gateway.research.manifest import FileEntry, build_manifest, manifest_bytes
from gateway.research.pseudonyms import Pseudonymiser

_RELEASE_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")


class ManifestSigner(Protocol):
    """Signs manifests (``gateway.keys.signing.Ed25519Signer`` is one)."""

    @property
    def fingerprint(self) -> str:
        """The hex SHA-256 of the public key."""
        ...

    @property
    def public_key(self) -> bytes:
        """The raw 32-byte public key."""
        ...

    def sign(self, message: bytes) -> bytes:
        """Return the signature of ``message``."""
        ...


@dataclass(frozen=True)
class Release:
    """A published release: where the bundle is, what it says, what to store."""

    bundle: Path
    manifest: dict[str, Any]
    manifest_sha256: str
    state: GeneralisationState
    stats: ExtractStats


def bundle_path(out_dir: Path, release_id: str) -> Path:
    """Return where the bundle of ``release_id`` is published in ``out_dir``."""
    return out_dir / f"{release_id}{BUNDLE_SUFFIX}"


def make_release(
    request: ExtractRequest,
    rows: Iterable[Mapping[str, Any]] | None = None,
    *,
    batches: Iterable[ColumnBatch] | None = None,
    pseudonymiser: Pseudonymiser,
    signer: ManifestSigner,
    out_dir: Path,
    progress: ProgressSink | None = None,
    recipients: Sequence[str] | None = None,
) -> Release:
    """Release ``rows`` (or column ``batches``) under ``request`` as one bundle in ``out_dir``.

    The data files are encrypted to ``recipients`` (the gateway passes the confirmed
    researcher keys), or to the agreement file's recipients when none are given.

    Raises AgreementNotInEffectError outside the agreement's period (before reading any
    row), DisclosureCheckFailedError when suppression would exceed the agreed share,
    GeneralisationStateError for a state that does not fit, ConflictError if the
    release exists, InvalidInputError for a bad release id or input. On any error,
    nothing appears in ``out_dir`` but the work folder's removal.
    """
    agreement = request.agreement
    if request.at.tzinfo is None:
        raise InvalidInputError("the release time must be timezone-aware")
    agreement.require_in_effect(request.at)
    if not _RELEASE_ID.fullmatch(request.release_id):
        raise InvalidInputError(
            "a release id is 1-100 letters, digits, dots, dashes or underscores"
        )
    if (rows is None) == (batches is None):
        raise InvalidInputError("give either rows or batches")
    out_dir.mkdir(parents=True, exist_ok=True)
    final = bundle_path(out_dir, request.release_id)
    if final.exists():
        raise ConflictError(f"{final.name} already exists; a release is never overwritten")
    clean_stale_workdirs(out_dir)
    source = (
        batches
        if batches is not None
        else batches_from_rows(
            rows or (), input_fields(agreement, pseudonymised=request.pseudonymised)
        )
    )
    to = tuple(agreement.recipients if recipients is None else recipients)
    with release_pool(), workdir(out_dir) as work:
        extract = write_extract(request, source, work, pseudonymiser, progress)
        if progress is not None:
            progress.start("encrypt, sign and publish", None)

        made: dict[str, dict[str, Any]] = {}

        def manifest_of(files: list[FileEntry]) -> bytes:
            made["manifest"] = build_manifest(
                request,
                extract,
                files,
                pseudonym_key_id=pseudonymiser.key_id,
                signer_fingerprint=signer.fingerprint,
                signer_public_key=signer.public_key,
            )
            return manifest_bytes(made["manifest"])

        packed = work / f"bundle{BUNDLE_SUFFIX}"
        _, data = pack_encrypted(
            packed,
            [(extract.csv, "text/csv"), (extract.parquet, "application/vnd.apache.parquet")],
            to,
            request.at,
            manifest_of,
            signer.sign,
        )
        manifest = made["manifest"]  # of the files as encrypted: the last one made
        publish(packed, final)
    return Release(
        bundle=final,
        manifest=manifest,
        manifest_sha256=hashlib.sha256(data).hexdigest(),
        state=extract.state,
        stats=extract.stats,
    )
