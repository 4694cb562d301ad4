"""Bearer tokens: ``gw_<id>_<secret>``, 256 bits of secret, only its SHA-256 is stored.

The id part finds the row; the secret part is compared in constant time against the
stored hash. A plain SHA-256 is right here (unlike for identifiers or passwords)
because the secret is uniformly random and far too long to guess.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass

from gateway.errors import AuthenticationError
from gateway.keys.hmacs import same

_TOKEN_RE = re.compile(r"^gw_([0-9a-f]{16})_([A-Za-z0-9_-]{43})$")
_ENROLMENT_RE = re.compile(r"^gwe_([0-9a-f]{16})_([A-Za-z0-9_-]{43})$")


@dataclass(frozen=True, slots=True)
class NewToken:
    """A freshly minted token: ``plaintext`` is shown once and never stored."""

    token_id: str
    secret_sha256: str
    plaintext: str

    def __repr__(self) -> str:
        return f"NewToken(token_id={self.token_id!r}, plaintext=<hidden>)"


def mint() -> NewToken:
    """Return a new random token with its id and the hash to store."""
    token_id = secrets.token_hex(8)
    secret = secrets.token_urlsafe(32)
    return NewToken(
        token_id=token_id,
        secret_sha256=_digest(secret),
        plaintext=f"gw_{token_id}_{secret}",
    )


def mint_enrolment() -> NewToken:
    """Return a new one-time enrolment code ``gwe_<id>_<secret>``, with the hash to store.

    It has the strength of a token but cannot be used as one: only ``POST /v1/enrolments``
    accepts it, once, in exchange for a bearer token.
    """
    code_id = secrets.token_hex(8)
    secret = secrets.token_urlsafe(32)
    return NewToken(
        token_id=code_id, secret_sha256=_digest(secret), plaintext=f"gwe_{code_id}_{secret}"
    )


def parse_enrolment(presented: str) -> tuple[str, str] | None:
    """Split a presented enrolment code into (id, secret), or None if it is malformed."""
    match = _ENROLMENT_RE.fullmatch(presented)
    return None if match is None else (match.group(1), match.group(2))


def parse(presented: str) -> tuple[str, str]:
    """Split a presented token into (id, secret); raise AuthenticationError if malformed."""
    match = _TOKEN_RE.fullmatch(presented)
    if match is None:
        raise AuthenticationError("the bearer token is malformed", reason="malformed")
    return match.group(1), match.group(2)


def secret_matches(secret: str, stored_sha256: str) -> bool:
    """Return whether ``secret`` hashes to ``stored_sha256``, compared in constant time."""
    return same(_digest(secret), stored_sha256)


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode("ascii")).hexdigest()
