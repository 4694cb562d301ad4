"""Who a principal is as a person: a normalised identifier, kept only as a keyed HMAC.

Four-eyes means two people, not two principals: one person may hold principals at
several partners. A principal that is a person carries the keyed HMAC of a person
identifier given at its creation (an e-mail address or an employee number). The key is
the key ring's (``KeyRing.person_key``), so the stored value reveals nothing and cannot
be enumerated; the identifier itself is never stored, logged or returned.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Callable

from gateway.errors import InvalidInputError
from gateway.vocabulary import Role

PersonKeyer = Callable[[str], str]
"""Returns the keyed HMAC of a normalised person identifier (``KeyRing.person_key``)."""

SYSTEM_ROLES = frozenset({Role.PARTNER_SYSTEM})
"""Roles held by systems, which have no person identifier."""

PERSON_REQUIRED_ROLES = frozenset({Role.PRIVACY_OFFICER})
"""Roles whose principals must name their person: those who approve under four eyes."""

MIN_LENGTH = 3
MAX_LENGTH = 254


def normalise_person(text: str) -> str:
    """Return the canonical form of a person identifier: NFKC, trimmed, case-folded.

    Raises InvalidInputError (without echoing the value) when it is too short, too
    long, or holds control characters or inner whitespace.
    """
    value = unicodedata.normalize("NFKC", text).strip().casefold()
    if not MIN_LENGTH <= len(value) <= MAX_LENGTH:
        raise InvalidInputError(
            f"a person identifier (e-mail address or employee number) has {MIN_LENGTH}-"
            f"{MAX_LENGTH} characters",
            field="person",
        )
    if any(c.isspace() or not c.isprintable() for c in value):
        raise InvalidInputError(
            "a person identifier (e-mail address or employee number) has no spaces or "
            "control characters",
            field="person",
        )
    return value


def person_key(text: str, keyer: PersonKeyer) -> str:
    """Return the keyed HMAC of the person identifier ``text`` (normalised first)."""
    return keyer(normalise_person(text))


def check_person(role: Role, key: str | None) -> None:
    """Raise InvalidInputError when ``role`` needs a person and has none, or is a system."""
    if key is None and role in PERSON_REQUIRED_ROLES:
        raise InvalidInputError(
            f"a {role.value} is a person: give their person identifier (e-mail address or "
            "employee number), so that four-eyes checks can tell people apart",
            field="person",
        )
    if key is not None and role in SYSTEM_ROLES:
        raise InvalidInputError(f"a {role.value} is a system and has no person", field="person")
