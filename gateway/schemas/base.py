"""The base of every request body: strict types, no unknown members, sane integer bounds.

Strict means no type juggling: ``"to_step": true`` or ``"7"`` is not an integer, ``1`` is
not a string. FastAPI validates a parsed JSON body in pydantic's Python mode, where strict
would also refuse the strings JSON uses for enumeration values and date-times: an enum
field says ``Field(strict=False)`` (its validator takes only its members' values) and a
date-time field is a ``Timestamp`` (a string, never a number).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

# Database row ids (policy versions, proposals) are 32-bit serials on PostgreSQL.
MAX_ROW_ID = 2**31 - 1
# Audit log indexes and tree sizes: far below 64-bit overflow, exact as JSON numbers.
MAX_LOG_INDEX = 2**53 - 1


class StrictIn(BaseModel):
    """A request body: strictly typed, unknown members refused."""

    model_config = ConfigDict(strict=True, extra="forbid")


def _text_only(value: Any) -> Any:
    """Let only text through to a lax validator (a number is never a date-time or a term)."""
    if not isinstance(value, str | datetime):
        raise ValueError("must be a string")
    return value


# An RFC 3339 date-time given as a JSON string (strict pydantic would want a datetime object).
Timestamp = Annotated[datetime, Field(strict=False), BeforeValidator(_text_only)]
