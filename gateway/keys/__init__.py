"""The key ring and the only code allowed to touch ``hmac``, ``pyrage`` and ``cryptography``.

Everything else uses the recipes here: seal and open a field of a case record,
blind-index an identifier, pseudonymise it for a research project, sign and verify, keyed
HMACs (``gateway.keys.hmacs``), age encryption (``gateway.keys.age``) and the key ring
operations (rotate, rewrap, shred). Integrity failures raise the one opaque
``IntegrityCheckFailedError``; a destroyed key raises ``KeyShreddedError``.

The modules, each importable on its own:

- ``errors``: the key ring's errors.
- ``documents``: key files and ``keyring.json`` (format, names, reading).
- ``ring``: ``KeyRing``, opening it, its cache (``cache``) and recipes.
- ``lifecycle``: creating the ring, rotating, activating, shredding, rewrapping (audited).
- ``master``, ``fields``, ``pseudonyms``, ``signing``, ``hmacs``, ``age``, ``files``: the
  primitives' recipes.

This package's face imports nothing until a name is asked for (``from gateway.keys
import KeyRing`` still works), so a process that needs one recipe (the witness signs
with ``gateway.keys.signing``) does not load the ring, the database or the audit log.
New code imports from the defining module.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from gateway.keys.documents import (
        KeyActor,
        KeyInfo,
        KeyKind,
        KeyVersionInfo,
        RingInfo,
        ShredReason,
    )
    from gateway.keys.errors import (
        IntegrityCheckFailedError,
        KeyRingError,
        KeyShreddedError,
        UnknownKeyError,
    )
    from gateway.keys.errors import IntegrityCheckFailedError as IntegrityCheckFailed
    from gateway.keys.master import MasterSecret
    from gateway.keys.pseudonyms import Pseudonymiser
    from gateway.keys.ring import KeyRing
    from gateway.keys.signing import Ed25519Signer, SigningPublicKey, verify

_WHERE = {
    "Ed25519Signer": ("signing", "Ed25519Signer"),
    "IntegrityCheckFailed": ("errors", "IntegrityCheckFailedError"),
    "IntegrityCheckFailedError": ("errors", "IntegrityCheckFailedError"),
    "KeyActor": ("documents", "KeyActor"),
    "KeyInfo": ("documents", "KeyInfo"),
    "KeyKind": ("documents", "KeyKind"),
    "KeyRing": ("ring", "KeyRing"),
    "KeyRingError": ("errors", "KeyRingError"),
    "KeyShreddedError": ("errors", "KeyShreddedError"),
    "KeyVersionInfo": ("documents", "KeyVersionInfo"),
    "MasterSecret": ("master", "MasterSecret"),
    "Pseudonymiser": ("pseudonyms", "Pseudonymiser"),
    "RingInfo": ("documents", "RingInfo"),
    "ShredReason": ("documents", "ShredReason"),
    "SigningPublicKey": ("signing", "SigningPublicKey"),
    "UnknownKeyError": ("errors", "UnknownKeyError"),
    "verify": ("signing", "verify"),
}

__all__ = [
    "Ed25519Signer",
    "IntegrityCheckFailed",
    "IntegrityCheckFailedError",
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


def __getattr__(name: str) -> Any:
    """Return a public name from its defining module, importing that module on first use."""
    if name not in _WHERE:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    module, attribute = _WHERE[name]
    return getattr(importlib.import_module(f"{__name__}.{module}"), attribute)
