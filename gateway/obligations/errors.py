"""The obligations' errors."""

from __future__ import annotations

from gateway.errors import InvalidInputError


class ObligationError(InvalidInputError):
    """An obligation cannot be applied to this record; nothing may be released."""

    code = "obligation-not-applicable"
    title = "Obligation cannot be applied"
