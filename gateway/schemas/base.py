"""The base of every request body: strict types, no unknown members, no NUL, sane bounds.

Strict means no type juggling: ``"to_step": true`` or ``"7"`` is not an integer, ``1`` is
not a string. FastAPI validates a parsed JSON body in pydantic's Python mode, where strict
would also refuse the strings JSON uses for enumeration values and date-times: an enum
field says ``Field(strict=False)`` (its validator takes only its members' values) and a
date-time field is a ``Timestamp`` (a string, never a number) between 1900 and 9000.
Integer ids and log indexes have the bounds below (the path parameters that use them are
in ``gateway.api.deps``), so no number reaches the database driver out of its range.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, model_validator
from pydantic_core import PydanticCustomError

# Database row ids (policy versions, proposals) are 32-bit serials on PostgreSQL.
MAX_ROW_ID = 2**31 - 1
# Audit log indexes and tree sizes: far below 64-bit overflow, exact as JSON numbers.
MAX_LOG_INDEX = 2**53 - 1
# Date-times outside these years are mistakes, and near year 1 or 9999 a time zone or a
# default period would overflow Python's datetime.
EARLIEST = datetime(1900, 1, 1, tzinfo=UTC)
LATEST = datetime(9000, 1, 1, tzinfo=UTC)


def _holds_nul(value: Any) -> bool:
    """Return whether a string anywhere in ``value`` (keys included) holds a NUL character.

    A loop over a stack, not a recursion: it runs on every request body, and one call
    per member cost more than the checks themselves.
    """
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            if "\x00" in item:
                return True
        elif isinstance(item, dict):
            stack.extend(item)
            stack.extend(item.values())
        elif isinstance(item, list | tuple):
            stack.extend(item)
    return False


class StrictIn(BaseModel):
    """A request body: strictly typed, unknown members refused."""

    model_config = ConfigDict(strict=True, extra="forbid")

    @model_validator(mode="before")
    @classmethod
    def _no_nul(cls, data: Any) -> Any:
        # PostgreSQL text cannot hold NUL, and no field of the gateway needs one.
        if _holds_nul(data):
            raise PydanticCustomError("string_nul", "text must not contain NUL characters")
        return data


def _text_only(value: Any) -> Any:
    """Let only text through to a lax validator (a number is never a date-time or a term)."""
    if not isinstance(value, str | datetime):
        raise ValueError("must be a string")
    return value


def _in_range(value: datetime) -> datetime:
    """Refuse a date-time outside [EARLIEST, LATEST] (naive ones are taken to be UTC)."""
    try:
        utc = value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    except OverflowError:
        utc = None
    if utc is None or not EARLIEST <= utc <= LATEST:
        raise PydanticCustomError("datetime_range", "must be a date-time from 1900 up to 9000")
    return value


# A date-time within sane years (query parameters and body fields).
BoundedDateTime = Annotated[datetime, AfterValidator(_in_range)]

# An RFC 3339 date-time given as a JSON string (strict pydantic would want a datetime object).
Timestamp = Annotated[BoundedDateTime, Field(strict=False), BeforeValidator(_text_only)]
