"""policy decisions: every decision with its request, outcome, rule and policy version

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23 13:22:00.787538
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Apply this revision."""
    op.create_table(
        "policy_decisions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor_principal_id", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
        sa.Column("actor_partner_id", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
        sa.Column("case_id", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
        sa.Column("request_sha256", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("partner_id", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("partner_kind", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("role", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column("action", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("process", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("step", sa.Integer(), nullable=True),
        sa.Column("purpose", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("category", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("legal_basis", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("provider_kind", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("relation", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("consent", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("allowed", sa.Boolean(), nullable=False),
        sa.Column("rule_id", sqlmodel.sql.sqltypes.AutoString(length=128), nullable=False),
        sa.Column("policy_version", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("obligations", sa.Text(), nullable=False),
        sa.Column("audit_leaf_index", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("policy_decisions", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_policy_decisions_action"), ["action"], unique=False)
        batch_op.create_index(batch_op.f("ix_policy_decisions_case_id"), ["case_id"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_policy_decisions_decided_at"), ["decided_at"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_policy_decisions_partner_id"), ["partner_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_policy_decisions_policy_version"), ["policy_version"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_policy_decisions_request_sha256"), ["request_sha256"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_policy_decisions_rule_id"), ["rule_id"], unique=False)


def downgrade() -> None:
    """Revert this revision."""
    with op.batch_alter_table("policy_decisions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_policy_decisions_rule_id"))
        batch_op.drop_index(batch_op.f("ix_policy_decisions_request_sha256"))
        batch_op.drop_index(batch_op.f("ix_policy_decisions_policy_version"))
        batch_op.drop_index(batch_op.f("ix_policy_decisions_partner_id"))
        batch_op.drop_index(batch_op.f("ix_policy_decisions_decided_at"))
        batch_op.drop_index(batch_op.f("ix_policy_decisions_case_id"))
        batch_op.drop_index(batch_op.f("ix_policy_decisions_action"))

    op.drop_table("policy_decisions")
