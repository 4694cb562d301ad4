"""Check offline that a release is in the gateway's audit log, from a tlog-proof bundle.

The gateway records every release with an audit entry whose leaf names the release and
the SHA-256 of its manifest. ``GET /v1/research/releases/{id}/proof`` (or
``gateway extract run --out``) hands out that entry's C2SP tlog-proof: the leaf itself,
its inclusion proof, and a checkpoint signed by the gateway's key. ``ReleaseInclusion``
is the ``AuditInclusionCheck`` that ``verify_bundle`` asks: it checks the checkpoint's
signature, the proof, and that the proven leaf is the release of *this* manifest.
Needs nothing but the proof, the manifest and the public key.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from gateway.audit.bundle import VerifiedInclusion, parse_tlog_proof, verify_tlog_proof
from gateway.audit.note import NoteError, NoteVerifier
from gateway.errors import IntegrityCheckFailed, InvalidInputError

RELEASE_EVENT = "research:extract:release"


class ReleaseInclusion:
    """An ``AuditInclusionCheck`` backed by one tlog-proof bundle of a release's audit entry."""

    def __init__(self, proof: str, public_keys: Sequence[bytes]) -> None:
        """Keep the bundle text and the log's public keys (the gateway's signing keys).

        Raises InvalidInputError if ``proof`` is not a tlog-proof bundle.
        """
        bundle = parse_tlog_proof(proof)
        origin = bundle.checkpoint.split("\n", 1)[0]
        try:
            self._verifiers = [NoteVerifier(origin, key) for key in public_keys]
        except NoteError as exc:
            raise InvalidInputError("the proof's checkpoint names no valid log origin") from exc
        self._proof = proof
        self._origin = origin
        self.verified: VerifiedInclusion | None = None

    def __call__(self, manifest: Mapping[str, Any], manifest_sha256: str) -> None:
        """Return if the proof shows this manifest's release in the log.

        Raises IntegrityCheckFailed otherwise (bad signature or proof, another entry).
        """
        verified = verify_tlog_proof(self._proof, self._verifiers, origin=self._origin)
        try:
            leaf = json.loads((verified.leaf or b"").decode())
            refs = leaf["refs"]
            if (
                leaf["type"] != RELEASE_EVENT
                or leaf["index"] != verified.index
                or refs["manifest_sha256"] != manifest_sha256
                or refs["release"] != manifest["release"]["id"]
                or refs["agreement"] != manifest["agreement"]["id"]
            ):
                raise ValueError("the proven entry is not this release")
        except (ValueError, KeyError, TypeError) as exc:
            raise IntegrityCheckFailed() from exc
        self.verified = verified
