"""The key ring and the only code allowed to touch ``cryptography.hazmat``.

Everything else uses the recipes exported here: seal and open a field of a case record,
blind-index an identifier, pseudonymise it for a research project, sign and verify, and
the key ring operations (rotate, rewrap, shred). Integrity failures raise the one opaque
``IntegrityCheckFailed``; a destroyed key raises ``KeyShreddedError``.
"""

from gateway.errors import IntegrityCheckFailed, KeyRingError, KeyShreddedError, UnknownKeyError
from gateway.keys.master import MasterSecret
from gateway.keys.pseudonyms import Pseudonymiser
from gateway.keys.ring import (
    KeyActor,
    KeyInfo,
    KeyKind,
    KeyRing,
    KeyVersionInfo,
    RingInfo,
    ShredReason,
)
from gateway.keys.signing import Ed25519Signer, SigningPublicKey, verify

__all__ = [
    "Ed25519Signer",
    "IntegrityCheckFailed",
    "KeyActor",
    "KeyInfo",
    "KeyKind",
    "KeyRing",
    "KeyRingError",
    "KeyShreddedError",
    "KeyVersionInfo",
    "MasterSecret",
    "Pseudonymiser",
    "RingInfo",
    "ShredReason",
    "SigningPublicKey",
    "UnknownKeyError",
    "verify",
]
