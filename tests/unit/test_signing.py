"""Ed25519 recipes: round trip, and one opaque error for every kind of failure."""

from __future__ import annotations

import pytest

from gateway.errors import IntegrityCheckFailed
from gateway.keys.signing import Ed25519Signer, verify


def test_sign_and_verify_round_trip() -> None:
    signer = Ed25519Signer.generate()
    signature = signer.sign(b"checkpoint")
    verify(signer.public_key, b"checkpoint", signature)
    again = Ed25519Signer.from_private_bytes(signer.private_bytes())
    assert again.public_key == signer.public_key


@pytest.mark.parametrize("mutate", ["message", "signature", "key", "short-key"])
def test_every_failure_is_the_same_opaque_error(mutate: str) -> None:
    signer = Ed25519Signer.generate()
    message, signature, key = b"manifest", signer.sign(b"manifest"), signer.public_key
    if mutate == "message":
        message = b"manifesT"
    elif mutate == "signature":
        signature = bytes([signature[0] ^ 1]) + signature[1:]
    elif mutate == "key":
        key = Ed25519Signer.generate().public_key
    else:
        key = key[:31]
    with pytest.raises(IntegrityCheckFailed) as info:
        verify(key, message, signature)
    assert str(info.value) == "integrity check failed"


def test_repr_hides_the_private_key() -> None:
    signer = Ed25519Signer.generate()
    assert signer.private_bytes().hex() not in repr(signer)
