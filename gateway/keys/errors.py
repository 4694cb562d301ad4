"""The key ring's errors: unusable ring, unknown key, destroyed key, failed integrity check.

Each keeps the problem code it had in ``gateway.errors``; ``gateway.api.problems`` maps
them to HTTP. Messages never contain key material.
"""

from __future__ import annotations

from gateway.errors import GatewayError, NotFoundError

__all__ = ["IntegrityCheckFailedError", "KeyRingError", "KeyShreddedError", "UnknownKeyError"]


class IntegrityCheckFailedError(GatewayError):
    """A signature, MAC, checksum or ciphertext did not verify.

    Deliberately opaque: it never says which check failed or why.
    """

    code = "integrity-failure"
    title = "Integrity check failed"

    def __init__(self, detail: str = "integrity check failed") -> None:
        super().__init__(detail)


class KeyRingError(GatewayError):
    """The key ring cannot be used: missing, wrong master key, loose permissions, rewrapped.

    The message says what to do; it never contains key material.
    """

    code = "key-ring-unavailable"
    title = "Key ring unavailable"


class UnknownKeyError(NotFoundError):
    """No key exists (yet) for the named case or project."""

    code = "key-unknown"
    title = "No such key"


class KeyShreddedError(GatewayError):
    """The key was destroyed at the end of retention (crypto-shredding); its data is gone.

    Not an integrity failure: the data was deliberately made unreadable for good.
    """

    code = "key-shredded"
    title = "Key destroyed at end of retention"
