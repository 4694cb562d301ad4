"""Test doubles for the key ring's pseudonymisation (swapped for the real one at merge).

``FakeKeyRing.pseudonymiser(project)`` mimics ``KeyRing.pseudonymiser``: one random
secret per project (kept for the ring's lifetime, so two releases of one project link),
per-identifier-type keys derived from it with HMAC, and HMAC-SHA256 pseudonyms. Never a
plain hash.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

from gateway.identifiers import IdType


class HmacPseudonymiser:
    """HMAC-SHA256 pseudonyms under per-type keys derived from one project secret.

    Like the key ring, any identifier type gets its own key (``respondent`` too).
    """

    def __init__(self, project: str, secret: bytes, key_id: str) -> None:
        self.project = project
        self.key_id = key_id
        self._secret = secret
        self._type_keys = {kind.value: self._derive(kind.value) for kind in IdType}

    def _derive(self, id_type: str) -> bytes:
        label = f"riec-gateway/test-pseudonym/{self.project}/{id_type}".encode()
        return hmac.new(self._secret, label, hashlib.sha256).digest()

    def __call__(self, id_type: str, value: str) -> str:
        """Return 32 hex characters of HMAC-SHA256 of ``value`` under the type's key."""
        key = self._type_keys.get(id_type)
        if key is None:
            key = self._type_keys[id_type] = self._derive(id_type)
        return hmac.digest(key, value.encode(), "sha256")[:16].hex()


class FakeKeyRing:
    """Holds one random pseudonymisation secret per project, like the real key ring."""

    def __init__(self) -> None:
        self._secrets: dict[str, bytes] = {}

    def pseudonymiser(self, project: str) -> HmacPseudonymiser:
        """Return the project's pseudonymiser, creating its secret on first use."""
        secret = self._secrets.setdefault(project, secrets.token_bytes(32))
        key_id = f"test-{project}-{hashlib.sha256(b'id' + secret).hexdigest()[:8]}"
        return HmacPseudonymiser(project, secret, key_id)
