"""What the extract pipeline needs from pseudonymisation, and a throw-away implementation.

The key ring provides the real ``Pseudonymiser`` (``KeyRing.pseudonymiser(project_id)``:
HMAC-SHA256 with per-project, per-identifier-type keys derived by HKDF), so the same
person gets the same pseudonym in every release of one project and unlinkable
pseudonyms in different projects. Values arrive already normalised by
``gateway.identifiers``.
"""

from __future__ import annotations

import secrets
from typing import Protocol

from gateway.identifiers import IdType
from gateway.keys.hmacs import hmac_sha256


class Pseudonymiser(Protocol):
    """Turns a normalised identifier of one type into a keyed pseudonym."""

    @property
    def key_id(self) -> str:
        """A public id of the key in use (written into manifests), never the key."""
        ...

    def __call__(self, id_type: str, value: str) -> str:
        """Return the pseudonym of ``value`` (a normalised identifier of ``id_type``)."""
        ...


class EphemeralPseudonymiser:
    """HMAC-SHA256 pseudonyms under a random key that lives only in this object.

    For ``gateway extract demo-run`` only: its pseudonyms cannot be reproduced by any
    later run, so releases made with it link to nothing. Per-type keys are derived with
    HMAC (never a plain hash: there are only about 91 million valid BSNs).
    """

    def __init__(self, project: str) -> None:
        root = secrets.token_bytes(32)
        self._keys: dict[str, bytes] = {
            kind.value: hmac_sha256(
                root, f"riec-gateway/pseudonym/v1/{project}/{kind.value}".encode()
            )
            for kind in IdType
        }
        self.key_id = f"ephemeral-{secrets.token_hex(4)}"

    def __call__(self, id_type: str, value: str) -> str:
        """Return 32 hex characters (128 bits) of HMAC-SHA256 under the type's key."""
        return hmac_sha256(self._keys[id_type], value.encode())[:16].hex()

    def __repr__(self) -> str:
        return f"EphemeralPseudonymiser(key_id={self.key_id})"
