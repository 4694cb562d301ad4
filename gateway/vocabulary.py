"""The shared vocabulary: roles as an enum, partner kinds and the rest from ``policies/``.

Roles are part of the code (authorisation checks name them); partner kinds and the
policy terms are data, read from ``policies/vocabulary.yaml`` by
``gateway.policy.vocabulary`` (which imports ``Role`` from here; nothing here imports
the policy).
"""

from __future__ import annotations

from enum import StrEnum


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
