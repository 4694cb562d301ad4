"""Subject identifiers in cases: canonical spelling, then a keyed index (never plaintext).

The identifier types are those of the category field schemas (``identifier:<type>``):
``bsn``, ``kvk``, ``iban``, ``phone``, ``name``, ``address`` and ``plate``. Two
partners writing the same identifier differently get the same index, so hit/no-hit
and the per-subject processing log find each other's records.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from gateway import identifiers
from gateway.errors import InvalidInputError
from gateway.keys import KeyRing
from gateway.policy.schema import CategorySchema

_ADDRESS_JUNK = re.compile(r"[^a-z0-9]+")
_PLATE_JUNK = re.compile(r"[^A-Z0-9]+")


def _address(value: str) -> str:
    folded = unicodedata.normalize("NFKD", value)
    folded = "".join(c for c in folded if not unicodedata.combining(c)).casefold()
    canonical = _ADDRESS_JUNK.sub(" ", folded).strip()
    if not canonical:
        raise InvalidInputError("address: must not be empty", id_type="address")
    return canonical


def _plate(value: str) -> str:
    canonical = _PLATE_JUNK.sub("", value.upper())
    if not 4 <= len(canonical) <= 8:
        raise InvalidInputError("plate: must have 4 to 8 letters and digits", id_type="plate")
    return canonical


CANONICAL: dict[str, Callable[[str], str]] = {
    "bsn": identifiers.bsn,
    "kvk": identifiers.kvk,
    "iban": identifiers.iban,
    "phone": identifiers.phone,
    "name": identifiers.canonical_name,
    "address": _address,
    "plate": _plate,
}


@dataclass(frozen=True, slots=True)
class Subject:
    """One identifier of a data subject: its type, canonical value and keyed index."""

    id_type: str
    value: str
    key: str


def canonical(id_type: str, value: Any) -> str:
    """Return the canonical spelling of an identifier; raise InvalidInputError naming the type."""
    normalise = CANONICAL.get(id_type)
    if normalise is None:
        raise InvalidInputError("unknown identifier type", field="type")
    if not isinstance(value, str):
        raise InvalidInputError(f"{id_type}: must be text", id_type=id_type)
    return normalise(value)


def subject(keys: KeyRing, id_type: str, value: Any) -> Subject:
    """Return the subject for an identifier, with its keyed index."""
    text = canonical(id_type, value)
    return Subject(id_type=id_type, value=text, key=keys.blind_index(id_type, text))


def subjects_of(keys: KeyRing, schema: CategorySchema, fields: Mapping[str, Any]) -> list[Subject]:
    """Return the subjects named in a record's identifier fields (empty values skipped)."""
    found = []
    for name, id_type in schema.identifier_fields().items():
        value = fields.get(name)
        if value not in (None, ""):
            found.append(subject(keys, id_type, value))
    return found


def unique(subjects: Iterable[Subject]) -> list[Subject]:
    """Return subjects without duplicate keys, in first-seen order."""
    seen: dict[str, Subject] = {}
    for item in subjects:
        seen.setdefault(item.key, item)
    return list(seen.values())
