"""Field encryption at rest: AES-256-GCM, one field at a time, bound to where it belongs.

A sealed field is ``0x01 || version (4 bytes, big-endian) || nonce (12) || ciphertext+tag``
(33 bytes of overhead). The associated data binds the case id, record id, field name and
key version, so a ciphertext copied to another row, field or case does not decrypt. Every
failure is the one opaque ``IntegrityCheckFailedError``, chained from its cause.
"""

from __future__ import annotations

import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from gateway.keys.errors import IntegrityCheckFailedError

FORMAT = 1
HEADER_BYTES = 1 + 4
NONCE_BYTES = 12
TAG_BYTES = 16
OVERHEAD = HEADER_BYTES + NONCE_BYTES + TAG_BYTES
_AD_LABEL = b"riec-gateway/field/v1"


def _part(text: str) -> bytes:
    encoded = text.encode()
    return len(encoded).to_bytes(4, "big") + encoded


def owner_associated_data(case_id: str, record_id: str) -> bytes:
    """Return how every field's associated data of one row begins: label, case id, row id."""
    return _AD_LABEL + _part(case_id) + _part(record_id)


def field_associated_data(case_id: str, record_id: str, field: str, version: int) -> bytes:
    """Return the associated data of one field: length-prefixed ids, then the key version."""
    return _field_associated_data(owner_associated_data(case_id, record_id), field, version)


def _field_associated_data(owner: bytes, field: str, version: int) -> bytes:
    return owner + _part(field) + version.to_bytes(4, "big")


def seal(aead: AESGCM, version: int, owner: bytes, field: str, plaintext: bytes) -> bytes:
    """Return ``plaintext`` sealed under ``aead`` (key ``version``) for this row and field.

    ``owner`` is the row's ``owner_associated_data``.
    """
    nonce = os.urandom(NONCE_BYTES)
    header = bytes([FORMAT]) + version.to_bytes(4, "big")
    associated = _field_associated_data(owner, field, version)
    return header + nonce + aead.encrypt(nonce, plaintext, associated)


def blob_version(blob: bytes) -> int:
    """Return the key version a sealed field names; raise IntegrityCheckFailedError if malformed."""
    if len(blob) < OVERHEAD or blob[0] != FORMAT:
        raise IntegrityCheckFailedError()
    return int.from_bytes(blob[1:HEADER_BYTES], "big")


def open_sealed(aead: AESGCM, owner: bytes, field: str, blob: bytes) -> bytes:
    """Return the plaintext of a sealed field; raise IntegrityCheckFailedError on any mismatch.

    ``owner`` is the row's ``owner_associated_data``.
    """
    version = blob_version(blob)
    nonce = blob[HEADER_BYTES : HEADER_BYTES + NONCE_BYTES]
    try:
        return aead.decrypt(
            nonce,
            blob[HEADER_BYTES + NONCE_BYTES :],
            _field_associated_data(owner, field, version),
        )
    except InvalidTag as exc:
        raise IntegrityCheckFailedError() from exc
