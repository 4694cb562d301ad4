"""What kind of information a source field holds, so agreements cannot keep what they must not.

Until the vocabulary's category schemas say this per field, the research code knows
these field names. A field that is a direct identifier may only be pseudonymised or
dropped; a quasi-identifier or a timestamp must be generalised or dropped; free text is
always dropped. Unknown field names are treated as coded values that may be kept.
"""

from __future__ import annotations

from enum import StrEnum


class FieldKind(StrEnum):
    """How a field may be released."""

    DIRECT_IDENTIFIER = "direct-identifier"
    QUASI_IDENTIFIER = "quasi-identifier"
    TIMESTAMP = "timestamp"
    FREE_TEXT = "free-text"
    PROVENANCE = "provenance"
    CODED = "coded"


DIRECT_IDENTIFIERS = frozenset(
    {
        "bsn",
        "name",
        "first_name",
        "last_name",
        "iban",
        "phone",
        "kvk",
        "email",
        "address",
        "street",
        "house_number",
        "respondent_id",
        "license_plate",
        "ip_address",
        "imei",
        "account_holder",
    }
)
QUASI_IDENTIFIERS = frozenset({"birth_date", "postcode"})
FREE_TEXT = frozenset(
    {"notes", "narrative", "free_text", "comment", "comments", "description", "toelichting"}
)
PROVENANCE = frozenset({"provider", "category"})
"""Attached by the gateway to every row: who provided it and in which data category."""


def field_kind(name: str) -> FieldKind:
    """Return the kind of the source field ``name``."""
    if name in PROVENANCE:
        return FieldKind.PROVENANCE
    if name in DIRECT_IDENTIFIERS:
        return FieldKind.DIRECT_IDENTIFIER
    if name in QUASI_IDENTIFIERS:
        return FieldKind.QUASI_IDENTIFIER
    if name in FREE_TEXT or name.endswith(("_text", "_notes")):
        return FieldKind.FREE_TEXT
    if name.endswith(("_at", "_date")):
        return FieldKind.TIMESTAMP
    return FieldKind.CODED
