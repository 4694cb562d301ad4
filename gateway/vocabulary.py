"""The shared vocabulary: roles as an enum, partner kinds and the rest from ``policies/``.

Roles are part of the code (authorisation checks name them); partner kinds and the
policy terms are data, read from ``policies/vocabulary.yaml`` by
``gateway.policy.vocabulary``.
"""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path

from gateway.errors import InvalidInputError


class Role(StrEnum):
    """What a principal does for its partner. A principal has exactly one role."""

    PARTNER_SYSTEM = "partner-system"
    ANALYST = "analyst"
    RIEC_ANALYST = "riec-analyst"
    PRIVACY_OFFICER = "privacy-officer"
    RESEARCHER = "researcher"
    OPERATOR = "operator"


class IdentifierType(StrEnum):
    """How a partner organisation is identified in Dutch registers."""

    OIN = "oin"  # Organisatie-identificatienummer: 20 digits
    KVK = "kvk"  # Kamer van Koophandel number: 8 digits


def partner_kinds(policies_dir: Path) -> frozenset[str]:
    """Return the partner kinds defined in ``policies_dir/vocabulary.yaml``.

    Raises InvalidInputError (with every ``file:line: message``) if the vocabulary is broken.
    """
    from gateway.policy.vocabulary import load_vocabulary  # here: it imports Role from us
    from gateway.yamlsource import SourceError

    try:
        return load_vocabulary(policies_dir).partner_kinds
    except SourceError as exc:
        raise InvalidInputError(f"the vocabulary is not valid:\n{exc}") from exc
