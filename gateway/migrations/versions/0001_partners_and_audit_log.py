"""partners and audit log

Revision ID: 0001
Revises:
Create Date: 2026-11-23 12:53:12.361728
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

# SHA-256 of the empty string: the RFC 9162 root of an empty tree.
EMPTY_ROOT = bytes.fromhex("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Apply this revision."""
    op.create_table(
        "audit_details",
        sa.Column("leaf_index", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("salt", sa.LargeBinary(length=16), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("delete_after", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("leaf_index"),
    )
    with op.batch_alter_table("audit_details", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_audit_details_delete_after"), ["delete_after"], unique=False
        )

    op.create_table(
        "audit_entries",
        sa.Column("leaf_index", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("event_type", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor_partner_id", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
        sa.Column("actor_principal_id", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
        sa.Column("case_id", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
        sa.Column("leaf", sa.Text(), nullable=False),
        sa.Column("leaf_hash", sa.LargeBinary(length=32), nullable=False),
        sa.PrimaryKeyConstraint("leaf_index"),
    )
    with op.batch_alter_table("audit_entries", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_audit_entries_actor_partner_id"), ["actor_partner_id"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_audit_entries_case_id"), ["case_id"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_audit_entries_event_type"), ["event_type"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_audit_entries_occurred_at"), ["occurred_at"], unique=False
        )

    op.create_table(
        "audit_nodes",
        sa.Column("level", sa.Integer(), nullable=False),
        sa.Column("node_index", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("hash", sa.LargeBinary(length=32), nullable=False),
        sa.PrimaryKeyConstraint("level", "node_index"),
    )
    op.create_table(
        "audit_subjects",
        sa.Column("leaf_index", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("subject_key", sqlmodel.sql.sqltypes.AutoString(length=80), nullable=False),
        sa.PrimaryKeyConstraint("leaf_index", "subject_key"),
    )
    with op.batch_alter_table("audit_subjects", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_audit_subjects_subject_key"), ["subject_key"], unique=False
        )

    op.create_table(
        "audit_tree_head",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("root", sa.LargeBinary(length=32), nullable=False),
        sa.Column("frontier", sa.Text(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_table(
        "partners",
        sa.Column("id", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("kind", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column("name", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
        sa.Column("identifier_type", sqlmodel.sql.sqltypes.AutoString(length=8), nullable=False),
        sa.Column("identifier", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("is_demo", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("identifier"),
    )
    with op.batch_alter_table("partners", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_partners_kind"), ["kind"], unique=False)

    op.create_table(
        "principals",
        sa.Column("id", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("partner_id", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("role", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column("label", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["partner_id"],
            ["partners.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("principals", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_principals_partner_id"), ["partner_id"], unique=False)

    op.create_table(
        "api_tokens",
        sa.Column("id", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column("principal_id", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("secret_sha256", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["principal_id"],
            ["principals.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("api_tokens", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_api_tokens_principal_id"), ["principal_id"], unique=False
        )
    head = sa.table(
        "audit_tree_head",
        sa.column("id", sa.Integer),
        sa.column("size", sa.BigInteger),
        sa.column("root", sa.LargeBinary),
        sa.column("frontier", sa.Text),
    )
    op.bulk_insert(head, [{"id": 1, "size": 0, "root": EMPTY_ROOT, "frontier": "[]"}])


def downgrade() -> None:
    """Revert this revision."""
    with op.batch_alter_table("api_tokens", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_api_tokens_principal_id"))

    op.drop_table("api_tokens")
    with op.batch_alter_table("principals", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_principals_partner_id"))

    op.drop_table("principals")
    with op.batch_alter_table("partners", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_partners_kind"))

    op.drop_table("partners")
    op.drop_table("audit_tree_head")
    with op.batch_alter_table("audit_subjects", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_audit_subjects_subject_key"))

    op.drop_table("audit_subjects")
    op.drop_table("audit_nodes")
    with op.batch_alter_table("audit_entries", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_audit_entries_occurred_at"))
        batch_op.drop_index(batch_op.f("ix_audit_entries_event_type"))
        batch_op.drop_index(batch_op.f("ix_audit_entries_case_id"))
        batch_op.drop_index(batch_op.f("ix_audit_entries_actor_partner_id"))

    op.drop_table("audit_entries")
    with op.batch_alter_table("audit_details", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_audit_details_delete_after"))

    op.drop_table("audit_details")
