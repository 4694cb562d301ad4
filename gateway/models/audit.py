"""Audit log tables: entries (Merkle leaves), their deletable details, tree nodes, the head."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Column, Identity, Integer, LargeBinary, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

from gateway.models.base import utc_column


class AuditEntry(SQLModel, table=True):
    """One leaf: the canonical event (hashes and ids only) and its RFC 9162 leaf hash."""

    __tablename__ = "audit_entries"
    __table_args__ = (UniqueConstraint("entry_id", name="uq_audit_entries_entry_id"),)

    leaf_index: int = Field(sa_column=Column(BigInteger, primary_key=True, autoincrement=False))
    event_type: str = Field(max_length=64, index=True)
    occurred_at: datetime = utc_column(index=True)
    actor_partner_id: str | None = Field(default=None, max_length=64, index=True)
    actor_principal_id: str | None = Field(default=None, max_length=64)
    case_id: str | None = Field(default=None, max_length=64, index=True)
    leaf: str = Field(sa_column=Column(Text, nullable=False))
    leaf_hash: bytes = Field(sa_column=Column(LargeBinary(32), nullable=False))
    entry_id: int | None = Field(default=None, sa_column=Column(BigInteger, nullable=True))
    """The id ``append`` returned (None for entries logged before sequencing)."""
    trace_id: str | None = Field(default=None, max_length=32, index=True)
    """The W3C trace id the leaf names, for the read extension's query by trace."""


ENTRY_ID_TYPE = BigInteger().with_variant(Integer, "sqlite")


class AuditPending(SQLModel, table=True):
    """An event committed with its change but not yet given a leaf index (see sequencer).

    Insert-only for requests; the integrator moves rows into the tree in id order and
    deletes them in the same transaction. ``document`` is the canonical leaf document
    without its index; the details (salt, body) move to ``audit_details``.
    """

    __tablename__ = "audit_pending"
    __table_args__ = {"sqlite_autoincrement": True}

    entry_id: int | None = Field(
        default=None,
        sa_column=Column(ENTRY_ID_TYPE, Identity(start=1), primary_key=True, autoincrement=True),
    )
    event_type: str = Field(max_length=64)
    occurred_at: datetime = utc_column()
    actor_partner_id: str | None = Field(default=None, max_length=64)
    actor_principal_id: str | None = Field(default=None, max_length=64)
    case_id: str | None = Field(default=None, max_length=64)
    document: str = Field(sa_column=Column(Text, nullable=False))
    salt: bytes | None = Field(default=None, sa_column=Column(LargeBinary(16), nullable=True))
    body: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    delete_after: datetime | None = utc_column(nullable=True)


class AuditDetail(SQLModel, table=True):
    """Details of an entry that may hold personal data; deletable after retention.

    The leaf commits to ``SHA-256(salt || body)``; once the row (and its salt) is
    deleted, the commitment reveals nothing about the body.
    """

    __tablename__ = "audit_details"

    leaf_index: int = Field(sa_column=Column(BigInteger, primary_key=True, autoincrement=False))
    salt: bytes = Field(sa_column=Column(LargeBinary(16), nullable=False))
    body: str = Field(sa_column=Column(Text, nullable=False))
    delete_after: datetime = utc_column(index=True)


class AuditSubject(SQLModel, table=True):
    """Links an entry to the keyed-hash key of each data subject it concerns.

    ``person`` is the key that stands for the person the key belongs to within this
    entry (one of the person's keys; a BSN and a name of one person share it), so the
    processing log answers one line per person; None (entries logged before persons
    were recorded): the key is a person of its own. ``id_type`` is the identifier type
    (``bsn``, ``name``, ...) when the entry named it.
    """

    __tablename__ = "audit_subjects"

    leaf_index: int = Field(sa_column=Column(BigInteger, primary_key=True, autoincrement=False))
    subject_key: str = Field(primary_key=True, max_length=80, index=True)
    person: str | None = Field(default=None, max_length=80)
    id_type: str | None = Field(default=None, max_length=32)
    delete_after: datetime | None = utc_column(nullable=True, index=True)
    """When the purge deletes the row (the leaf's ``subjects_until``); None for rows
    integrated before retention per category, which keep the default four years."""


class AuditNode(SQLModel, table=True):
    """A perfect subtree hash completed by an append (level >= 1), for fast proofs."""

    __tablename__ = "audit_nodes"

    level: int = Field(primary_key=True)
    node_index: int = Field(sa_column=Column(BigInteger, primary_key=True, autoincrement=False))
    hash: bytes = Field(sa_column=Column(LargeBinary(32), nullable=False))


class AuditTreeHead(SQLModel, table=True):
    """The single row holding the tree size, root and frontier; locked by the integrator."""

    __tablename__ = "audit_tree_head"

    id: int = Field(primary_key=True)
    size: int = Field(sa_column=Column(BigInteger, nullable=False))
    root: bytes = Field(sa_column=Column(LargeBinary(32), nullable=False))
    frontier: str = Field(sa_column=Column(Text, nullable=False))
    updated_at: datetime | None = utc_column(nullable=True)


class AuditParty(SQLModel, table=True):
    """Links an entry to each partner it concerns besides the actor (provider, recipient)."""

    __tablename__ = "audit_parties"

    leaf_index: int = Field(sa_column=Column(BigInteger, primary_key=True, autoincrement=False))
    partner_id: str = Field(primary_key=True, max_length=64, index=True)


class AuditCheckpoint(SQLModel, table=True):
    """A signed checkpoint (C2SP tlog-checkpoint in a signed note) of the tree at one size."""

    __tablename__ = "audit_checkpoints"

    tree_size: int = Field(sa_column=Column(BigInteger, primary_key=True, autoincrement=False))
    root: bytes = Field(sa_column=Column(LargeBinary(32), nullable=False))
    note: str = Field(sa_column=Column(Text, nullable=False))
    key_name: str = Field(max_length=200)
    key_id: str = Field(max_length=8)
    created_at: datetime = utc_column(index=True)
    witnessed_at: datetime | None = utc_column(nullable=True)
    """When the configured quorum of witnesses had cosigned it (None: not yet)."""


class AuditCosignature(SQLModel, table=True):
    """A witness's cosignature/v1 line on the checkpoint of one tree size.

    Not trusted when read back: verifiers check the line against the witness's key.
    """

    __tablename__ = "audit_cosignatures"

    tree_size: int = Field(sa_column=Column(BigInteger, primary_key=True, autoincrement=False))
    key_id: str = Field(primary_key=True, max_length=8)
    witness_name: str = Field(max_length=200)
    timestamp: int = Field(sa_column=Column(BigInteger, nullable=False))
    line: str = Field(sa_column=Column(Text, nullable=False))
