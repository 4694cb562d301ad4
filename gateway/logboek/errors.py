"""The Logboek export's errors."""

from __future__ import annotations

from gateway.errors import InvalidInputError


class LogboekEndpointInvalidError(InvalidInputError):
    """A partner's Logboek endpoint is not acceptable (plain http in production, no such file)."""

    code = "logboek-endpoint-invalid"
    title = "Logboek endpoint invalid"
