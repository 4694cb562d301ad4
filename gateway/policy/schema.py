"""Field schemas of data categories: which fields a record may carry, and their types.

The vocabulary declares them (``identifier:bsn``, ``birth_date``, ``postcode``,
``timestamp``, ``date``, ``code``, ``number``, ``text``, ``free-text``); the workflow
validates shared records against them and the obligations use the types.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

IDENTIFIER_TYPES = ("bsn", "kvk", "iban", "phone", "name", "address", "plate")
BASE_TYPES = ("birth_date", "postcode", "timestamp", "date", "code", "number", "text", "free-text")

_POSTCODE = re.compile(r"^[1-9][0-9]{3}\s?[A-Za-z]{2}$|^[1-9][0-9]{3}$")


@dataclass(frozen=True, slots=True)
class FieldType:
    """A field's type: ``identifier`` with its ``id_type``, or one of the base types."""

    base: str
    id_type: str | None = None

    def __str__(self) -> str:
        return f"identifier:{self.id_type}" if self.base == "identifier" else self.base

    @property
    def is_identifier(self) -> bool:
        """True for identifier fields (pseudonymised by the ``pseudonymise`` obligation)."""
        return self.base == "identifier"


def parse_field_type(text: str) -> FieldType:
    """Return the FieldType written as ``text``; raise ValueError naming the known types."""
    if text.startswith("identifier:"):
        id_type = text.removeprefix("identifier:")
        if id_type in IDENTIFIER_TYPES:
            return FieldType("identifier", id_type)
        raise ValueError(
            f"unknown identifier type {id_type!r}; known: {', '.join(IDENTIFIER_TYPES)}"
        )
    if text in BASE_TYPES:
        return FieldType(text)
    known = ", ".join((*BASE_TYPES, "identifier:<" + "|".join(IDENTIFIER_TYPES) + ">"))
    raise ValueError(f"unknown field type {text!r}; known: {known}")


@dataclass(frozen=True, slots=True)
class CategorySchema:
    """The fields a record of one data category may carry."""

    category: str
    fields: Mapping[str, FieldType] = field(default_factory=dict)

    def identifier_fields(self) -> dict[str, str]:
        """Return ``{field: identifier type}`` for every identifier field."""
        return {n: t.id_type for n, t in self.fields.items() if t.id_type is not None}

    def fields_of(self, base: str) -> list[str]:
        """Return the names of the fields of one base type, in schema order."""
        return [n for n, t in self.fields.items() if t.base == base]


def _type_problem(ftype: FieldType, value: Any) -> str | None:
    if value is None:
        return None
    base = ftype.base
    if base == "number":
        ok = isinstance(value, int | float) and not isinstance(value, bool)
        return None if ok else "must be a number"
    if base in ("timestamp", "date", "birth_date"):
        if isinstance(value, datetime | date):
            return None
        if isinstance(value, str):
            try:
                if base == "timestamp":
                    datetime.fromisoformat(value)
                else:
                    date.fromisoformat(value)
            except ValueError:
                return f"must be an ISO {'timestamp' if base == 'timestamp' else 'date'}"
            return None
        return f"must be an ISO {'timestamp' if base == 'timestamp' else 'date'}"
    if not isinstance(value, str):
        return "must be text"
    if base == "postcode" and not _POSTCODE.fullmatch(value.strip()):
        return "must be a Dutch postcode (1234 AB)"
    return None


def validate_record(schema: CategorySchema, record: Mapping[str, Any]) -> list[str]:
    """Return the problems of ``record`` against ``schema`` (empty when valid).

    Problems name fields and types only, never values (which may be personal data).
    """
    problems = []
    unknown = sum(1 for name in record if name not in schema.fields)
    if unknown:
        # The unknown names are input: count them and list the category's fields instead.
        problems.append(
            f"{unknown} field(s) not part of category {schema.category}; its fields are "
            f"{', '.join(schema.fields) or 'none'}"
        )
    for name, ftype in schema.fields.items():
        if name in record:
            problem = _type_problem(ftype, record[name])
            if problem:
                problems.append(f"field {name!r} ({ftype}) {problem}")
    return problems
