"""Typed obligation values: what an allow requires the gateway to do before release.

Each value is frozen, knows its catalogue ``kind`` and serialises to the JSON carried in
AuthZEN ``context.obligations`` and in recorded decisions (``to_json``/``from_json``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

from gateway.errors import InvalidInputError

BirthDateTarget = Literal["year", "age-band"]
PostcodeTarget = Literal["pc4", "municipality"]
TimestampTarget = Literal["week"]


@dataclass(frozen=True, slots=True)
class DropFields:
    """Remove the named fields from the record."""

    kind: ClassVar[str] = "drop-fields"
    fields: tuple[str, ...]

    def to_json(self) -> dict[str, Any]:
        """Return the JSON form."""
        return {"kind": self.kind, "fields": list(self.fields)}


@dataclass(frozen=True, slots=True)
class Pseudonymise:
    """Replace identifier fields (all, or only these identifier types) by keyed pseudonyms."""

    kind: ClassVar[str] = "pseudonymise"
    identifiers: tuple[str, ...] = ()  # empty: every identifier field of the category

    def to_json(self) -> dict[str, Any]:
        """Return the JSON form."""
        return {"kind": self.kind, "identifiers": list(self.identifiers)}


@dataclass(frozen=True, slots=True)
class GeneraliseBirthDate:
    """Replace birth dates by the year, or by an age band of ``band`` years."""

    kind: ClassVar[str] = "generalise-birth-date"
    to: BirthDateTarget = "year"
    band: int = 5

    def to_json(self) -> dict[str, Any]:
        """Return the JSON form."""
        return {"kind": self.kind, "to": self.to, "band": self.band}


@dataclass(frozen=True, slots=True)
class GeneralisePostcode:
    """Replace postcodes by their four digits (PC4) or by the municipality."""

    kind: ClassVar[str] = "generalise-postcode"
    to: PostcodeTarget = "pc4"

    def to_json(self) -> dict[str, Any]:
        """Return the JSON form."""
        return {"kind": self.kind, "to": self.to}


@dataclass(frozen=True, slots=True)
class GeneraliseTimestamp:
    """Replace timestamps and dates by their ISO week (``2026-W48``)."""

    kind: ClassVar[str] = "generalise-timestamp"
    to: TimestampTarget = "week"

    def to_json(self) -> dict[str, Any]:
        """Return the JSON form."""
        return {"kind": self.kind, "to": self.to}


@dataclass(frozen=True, slots=True)
class RemoveFreeText:
    """Remove every free-text field of the category."""

    kind: ClassVar[str] = "remove-free-text"

    def to_json(self) -> dict[str, Any]:
        """Return the JSON form."""
        return {"kind": self.kind}


@dataclass(frozen=True, slots=True)
class SummaryOnly:
    """Release only the provider's summary text, none of the fields."""

    kind: ClassVar[str] = "summary-only"

    def to_json(self) -> dict[str, Any]:
        """Return the JSON form."""
        return {"kind": self.kind}


@dataclass(frozen=True, slots=True)
class AggregateOnly:
    """Release only counts per group; groups smaller than ``k`` are suppressed."""

    kind: ClassVar[str] = "aggregate-only"
    k: int = 5

    def to_json(self) -> dict[str, Any]:
        """Return the JSON form."""
        return {"kind": self.kind, "k": self.k}


Obligation = (
    DropFields
    | Pseudonymise
    | GeneraliseBirthDate
    | GeneralisePostcode
    | GeneraliseTimestamp
    | RemoveFreeText
    | SummaryOnly
    | AggregateOnly
)

OBLIGATION_KINDS: tuple[str, ...] = (
    "drop-fields",
    "pseudonymise",
    "generalise-birth-date",
    "generalise-postcode",
    "generalise-timestamp",
    "remove-free-text",
    "summary-only",
    "aggregate-only",
)


def _strings(value: Any, name: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        return (value,)
    if isinstance(value, list | tuple) and all(isinstance(v, str) for v in value):
        return tuple(value)
    raise InvalidInputError(f"{name} must be a list of names")


def from_json(data: Mapping[str, Any]) -> Obligation:
    """Return the obligation for its JSON form; raise InvalidInputError if malformed."""
    kind = data.get("kind")
    params = {k: v for k, v in data.items() if k != "kind"}
    return build(str(kind), params)


def build(kind: str, params: Mapping[str, Any]) -> Obligation:
    """Return the obligation ``kind`` with ``params``; raise InvalidInputError if invalid."""
    allowed: dict[str, set[str]] = {
        "drop-fields": {"fields"},
        "pseudonymise": {"identifiers"},
        "generalise-birth-date": {"to", "band"},
        "generalise-postcode": {"to"},
        "generalise-timestamp": {"to"},
        "remove-free-text": set(),
        "summary-only": set(),
        "aggregate-only": {"k"},
    }
    if kind not in allowed:
        raise InvalidInputError(
            f"unknown obligation {kind!r}; known: {', '.join(OBLIGATION_KINDS)}"
        )
    extra = set(params) - allowed[kind]
    if extra:
        raise InvalidInputError(f"obligation {kind} has no parameter {sorted(extra)[0]!r}")
    if kind == "drop-fields":
        fields = _strings(params.get("fields"), "drop-fields.fields")
        if not fields:
            raise InvalidInputError("drop-fields needs at least one field")
        return DropFields(fields)
    if kind == "pseudonymise":
        return Pseudonymise(_strings(params.get("identifiers"), "pseudonymise.identifiers"))
    if kind == "generalise-birth-date":
        to = params.get("to", "year")
        band = params.get("band", 5)
        if to not in ("year", "age-band"):
            raise InvalidInputError("generalise-birth-date.to must be year or age-band")
        if not isinstance(band, int) or isinstance(band, bool) or not 1 <= band <= 50:
            raise InvalidInputError("generalise-birth-date.band must be a whole number 1-50")
        return GeneraliseBirthDate(to, band)
    if kind == "generalise-postcode":
        to = params.get("to", "pc4")
        if to not in ("pc4", "municipality"):
            raise InvalidInputError("generalise-postcode.to must be pc4 or municipality")
        return GeneralisePostcode(to)
    if kind == "generalise-timestamp":
        to = params.get("to", "week")
        if to != "week":
            raise InvalidInputError("generalise-timestamp.to must be week")
        return GeneraliseTimestamp(to)
    if kind == "remove-free-text":
        return RemoveFreeText()
    if kind == "summary-only":
        return SummaryOnly()
    k = params.get("k", 5)
    if not isinstance(k, int) or isinstance(k, bool) or k < 2:
        raise InvalidInputError("aggregate-only.k must be a whole number of at least 2")
    return AggregateOnly(k)


def to_json_list(obligations: tuple[Obligation, ...]) -> list[dict[str, Any]]:
    """Return the JSON form of a tuple of obligations."""
    return [o.to_json() for o in obligations]
