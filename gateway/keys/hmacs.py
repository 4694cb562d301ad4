"""Keyed HMAC-SHA256 and constant-time comparison, for code outside the key ring.

The ring's own keyed hashes (blind indexes, person keys, pseudonyms) are in
``gateway.keys.pseudonyms``; these are for keys that are not the ring's: the workbench
session secret, a demo run's throw-away pseudonym key, and comparing a presented secret
or token with the expected one without leaking where they differ.
"""

from __future__ import annotations

import hmac

__all__ = ["hmac_sha256", "hmac_sha256_hex", "same"]


def hmac_sha256(key: bytes, message: bytes) -> bytes:
    """Return the HMAC-SHA256 of ``message`` under ``key``."""
    return hmac.digest(key, message, "sha256")


def hmac_sha256_hex(key: bytes, message: bytes) -> str:
    """Return the HMAC-SHA256 of ``message`` under ``key`` as 64 hex characters."""
    return hmac_sha256(key, message).hex()


def same(given: str | bytes, expected: str | bytes) -> bool:
    """Return whether ``given`` equals ``expected``, in time independent of where they differ.

    Strings are compared as UTF-8.
    """
    a = given.encode() if isinstance(given, str) else given
    b = expected.encode() if isinstance(expected, str) else expected
    return hmac.compare_digest(a, b)
