"""Each partner's Logboek endpoint and the outbox of lines waiting to be delivered to it."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Column, Identity, Index, Integer, Text
from sqlmodel import Field, SQLModel

from gateway.models.base import utc_column

OUTBOX_ID_TYPE = BigInteger().with_variant(Integer, "sqlite")


class LogboekEndpoint(SQLModel, table=True):
    """Where a partner's own Logboek Dataverwerkingen receives the lines about it (OTLP).

    The TLS options are paths on the gateway's host (a CA bundle to trust, and a client
    certificate and key for mutual TLS); the files themselves are never stored here.
    """

    __tablename__ = "logboek_endpoints"

    partner_id: str = Field(primary_key=True, foreign_key="partners.id", max_length=64)
    url: str = Field(max_length=500)
    protocol: str = Field(max_length=16)
    ca_file: str | None = Field(default=None, max_length=500)
    client_cert_file: str | None = Field(default=None, max_length=500)
    client_key_file: str | None = Field(default=None, max_length=500)
    updated_at: datetime = utc_column()


class LogboekOutboxRow(SQLModel, table=True):
    """One line waiting for one partner's Logboek; deleted once that Logboek acknowledged it.

    Inserted in the transaction that gives the audit entry its leaf index, so a line
    exists exactly when its entry does. ``line`` is the span to send (JSON: ids, times,
    status, resource, attributes; keyed subject indexes, never identifiers). A batch
    being sent is leased (``lease_token`` until ``lease_until``) so no other exporter
    sends it at the same time; a failed batch waits until ``next_attempt_at``.
    """

    __tablename__ = "logboek_outbox"
    __table_args__ = (
        Index("ix_logboek_outbox_partner_id", "partner_id", "id"),
        {"sqlite_autoincrement": True},
    )

    id: int | None = Field(
        default=None,
        sa_column=Column(OUTBOX_ID_TYPE, Identity(start=1), primary_key=True, autoincrement=True),
    )
    partner_id: str = Field(max_length=64)
    leaf_index: int = Field(sa_column=Column(BigInteger, nullable=False))
    span_id: str = Field(max_length=16)
    line: str = Field(sa_column=Column(Text, nullable=False))
    created_at: datetime = utc_column()
    attempts: int = Field(default=0)
    next_attempt_at: datetime | None = utc_column(nullable=True)
    last_error: str | None = Field(default=None, max_length=200)
    lease_token: str | None = Field(default=None, max_length=32)
    lease_until: datetime | None = utc_column(nullable=True)
