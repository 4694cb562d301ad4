"""Sealing maps of values with a case's data key, one AES-GCM blob per field.

A sealed map is stored as JSON ``{field: base64(blob)}``; each blob's associated data
binds the case, the owning row and the field name (see ``gateway.keys``), so a value
moved to another row or field does not open.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping
from typing import Any

from gateway.keys import KeyRing


def seal_map(keys: KeyRing, case_id: str, owner_id: str, values: Mapping[str, Any]) -> str:
    """Return the sealed JSON text of ``values`` (each value JSON-encoded, then sealed)."""
    plaintexts = {name: json.dumps(value).encode() for name, value in values.items()}
    sealed = keys.seal_fields(case_id, owner_id, plaintexts)
    return json.dumps(
        {name: base64.b64encode(blob).decode() for name, blob in sealed.items()}, sort_keys=True
    )


def open_map(keys: KeyRing, case_id: str, owner_id: str, text: str) -> dict[str, Any]:
    """Return the values of a sealed map; raise IntegrityCheckFailed or KeyShreddedError."""
    sealed: dict[str, str] = json.loads(text)
    blobs = {name: base64.b64decode(blob) for name, blob in sealed.items()}
    opened = keys.open_fields(case_id, owner_id, blobs)
    return {name: json.loads(plaintext) for name, plaintext in opened.items()}


def seal_value(keys: KeyRing, case_id: str, owner_id: str, field: str, value: Any) -> str:
    """Return one value sealed as base64 text."""
    blob = keys.seal_field(case_id, owner_id, field, json.dumps(value).encode())
    return base64.b64encode(blob).decode()


def open_value(keys: KeyRing, case_id: str, owner_id: str, field: str, text: str) -> Any:
    """Return one sealed value."""
    return json.loads(keys.open_field(case_id, owner_id, field, base64.b64decode(text)))
