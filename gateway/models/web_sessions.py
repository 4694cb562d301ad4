"""Server-side sessions of the privacy officers' web workbench.

Only the SHA-256 of the random session id is stored; the id itself lives in the
browser's cookie. A session is bound to the bearer token it was opened with, so
revoking or expiring that token ends the session too.
"""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Field, SQLModel

from gateway.models.base import utc_column


class WorkbenchSession(SQLModel, table=True):
    """One signed-in privacy officer: who, with which token, since when, until when."""

    __tablename__ = "workbench_sessions"

    id_sha256: str = Field(primary_key=True, max_length=64)
    principal_id: str = Field(foreign_key="principals.id", index=True, max_length=64)
    token_id: str = Field(foreign_key="api_tokens.id", max_length=32)
    created_at: datetime = utc_column()
    last_seen_at: datetime = utc_column()
    expires_at: datetime = utc_column(index=True)
