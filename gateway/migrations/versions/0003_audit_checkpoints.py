"""audit checkpoints and the partners each audit entry concerns

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23 13:14:48.143399
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Apply this revision."""
    op.create_table(
        "audit_checkpoints",
        sa.Column("tree_size", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("root", sa.LargeBinary(length=32), nullable=False),
        sa.Column("note", sa.Text(), nullable=False),
        sa.Column("key_name", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
        sa.Column("key_id", sqlmodel.sql.sqltypes.AutoString(length=8), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("tree_size"),
    )
    with op.batch_alter_table("audit_checkpoints", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_audit_checkpoints_created_at"), ["created_at"], unique=False
        )

    op.create_table(
        "audit_parties",
        sa.Column("leaf_index", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("partner_id", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.PrimaryKeyConstraint("leaf_index", "partner_id"),
    )
    with op.batch_alter_table("audit_parties", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_audit_parties_partner_id"), ["partner_id"], unique=False
        )


def downgrade() -> None:
    """Revert this revision."""
    with op.batch_alter_table("audit_parties", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_audit_parties_partner_id"))
    op.drop_table("audit_parties")
    with op.batch_alter_table("audit_checkpoints", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_audit_checkpoints_created_at"))
    op.drop_table("audit_checkpoints")
