"""age (X25519) recipes: researchers' identities and recipients, encrypting and decrypting.

A researcher's secret identity is made and kept on the researcher's own machine; the
gateway only ever sees the public recipient (``age1...``). The identity file has the
format ``age-keygen`` writes, so either tool's file works with ``age -d -i FILE``.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Protocol, TypeAlias

import pyrage
from pyrage import RecipientError, x25519

from gateway.errors import ConflictError, InvalidInputError

IDENTITY_FILE_MODE = 0o600


class Readable(Protocol):
    """What ``encrypt_stream`` reads: anything with ``read``."""

    def read(self, size: int = -1, /) -> bytes:
        """Return up to ``size`` bytes (all that is left if negative); b"" at the end."""
        ...


class Writable(Protocol):
    """Where ``encrypt_stream`` writes: anything with ``write`` and ``flush``."""

    def write(self, data: bytes, /) -> int:
        """Write ``data``; return how many bytes were written."""
        ...

    def flush(self) -> None:
        """Flush what was written."""
        ...


Identity: TypeAlias = x25519.Identity
"""An age X25519 identity (secret key); ``str()`` of one is the secret key in age's text form."""


@dataclass(frozen=True, slots=True)
class AgeKeyPair:
    """A fresh age identity: the secret key string and its public ``age1...`` recipient."""

    secret: str
    recipient: str

    def __repr__(self) -> str:
        return f"AgeKeyPair(recipient={self.recipient!r})"


def generate() -> AgeKeyPair:
    """Return a new random age X25519 identity and its recipient."""
    identity = x25519.Identity.generate()
    return AgeKeyPair(secret=str(identity), recipient=str(identity.to_public()))


def identity_file_text(pair: AgeKeyPair, created: datetime) -> str:
    """Return the identity file content in ``age-keygen``'s format."""
    return (
        f"# created: {created.isoformat(timespec='seconds')}\n"
        f"# public key: {pair.recipient}\n"
        f"{pair.secret}\n"
    )


def write_identity_file(path: Path, pair: AgeKeyPair, created: datetime) -> None:
    """Write a new identity file with mode 0600; never overwrite one.

    Raises ConflictError if ``path`` exists, InvalidInputError if it cannot be written.
    """
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, IDENTITY_FILE_MODE)
    except FileExistsError:
        raise ConflictError(f"{path} exists; an identity file is never overwritten") from None
    except OSError as exc:
        raise InvalidInputError(f"cannot write {path}: {exc.strerror}") from None
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(identity_file_text(pair, created))
        handle.flush()
        os.fsync(handle.fileno())
    os.chmod(path, IDENTITY_FILE_MODE)


def is_recipient(value: str) -> bool:
    """Return whether ``value`` is an age X25519 recipient (``age1...``)."""
    try:
        x25519.Recipient.from_str(value)
    except RecipientError:
        return False
    return True


def parse_identity(text: str) -> Identity | None:
    """Return the age X25519 identity ``text`` holds, or None if it holds none."""
    try:
        identity: Identity = x25519.Identity.from_str(text)
    except pyrage.IdentityError:
        return None
    return identity


def encrypt_to(source: Path, target: Path, recipients: Sequence[str]) -> None:
    """Encrypt ``source`` to every age ``recipient`` into ``target`` (streaming).

    Raises InvalidInputError if a recipient is not an age X25519 recipient.
    """
    parsed = [x25519.Recipient.from_str(check_recipient(r)) for r in recipients]
    pyrage.encrypt_file(str(source), str(target), parsed)


def encrypt_stream(source: Readable, target: Writable, recipients: Sequence[str]) -> None:
    """Encrypt what ``source`` holds to every age ``recipient``, written to ``target`` (streaming).

    ``source`` needs only ``read`` and ``target`` only ``write`` (and ``flush``): a caller
    can hash or count what is read and written, or write it into a larger file. Raises
    InvalidInputError if a recipient is not an age X25519 recipient.
    """
    parsed = [x25519.Recipient.from_str(check_recipient(r)) for r in recipients]
    pyrage.encrypt_io(source, target, parsed)


def decrypt_with(source: Path, target: Path, identities: Sequence[Identity]) -> bool:
    """Decrypt ``source`` into ``target``; return False if no identity is a recipient."""
    try:
        pyrage.decrypt_file(str(source), str(target), list(identities))
    except pyrage.DecryptError:
        return False
    return True


def check_recipient(value: str) -> str:
    """Return ``value`` if it is an age X25519 recipient (``age1...``).

    Raises InvalidInputError otherwise (the value is not quoted back).
    """
    try:
        x25519.Recipient.from_str(value)
    except RecipientError:
        raise InvalidInputError(
            "not an age X25519 recipient (an age1... public key)", field="recipient"
        ) from None
    return value


def decrypt_file(source: Path, target: Path, identity_file: Path) -> None:
    """Decrypt an age file with the identities in an ``age-keygen`` identity file.

    Raises InvalidInputError if the file holds no identity or none is a recipient.
    """
    identities = []
    for line in identity_file.read_text(encoding="utf-8").splitlines():
        text = line.strip()
        if text and not text.startswith("#"):
            try:
                identities.append(x25519.Identity.from_str(text))
            except pyrage.IdentityError:
                raise InvalidInputError(f"{identity_file}: not an age identity file") from None
    try:
        pyrage.decrypt_file(str(source), str(target), identities)
    except pyrage.DecryptError:
        raise InvalidInputError("this identity is not a recipient of the file") from None


def recipient_of(identity_file: Path) -> str:
    """Return the recipient (public key) of the first identity in an identity file.

    Raises InvalidInputError if the file holds no age identity.
    """
    for line in identity_file.read_text(encoding="utf-8").splitlines():
        text = line.strip()
        if text and not text.startswith("#"):
            try:
                return str(x25519.Identity.from_str(text).to_public())
            except pyrage.IdentityError:
                break
    raise InvalidInputError(f"{identity_file}: not an age identity file")
