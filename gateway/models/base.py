"""Column helpers shared by the tables."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Column, DateTime
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator
from sqlmodel import Field

from gateway.clock import as_utc


class UtcDateTime(TypeDecorator[datetime]):
    """A timestamp that is always aware UTC in Python, on SQLite as on PostgreSQL."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        """Refuse naive datetimes; store aware ones in UTC."""
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given for a UTC column")
        return as_utc(value)

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        """Return stored values as aware UTC datetimes."""
        return None if value is None else as_utc(value)


def utc_column(*, nullable: bool = False, index: bool = False) -> Any:
    """Return a Field stored as a timezone-aware UTC timestamp column."""
    return Field(
        default=None if nullable else ...,
        sa_column=Column(UtcDateTime(), nullable=nullable, index=index),
    )
