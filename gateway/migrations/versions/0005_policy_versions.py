"""policy versions, the active-version pointer, proposals and workbench sessions

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-23 13:53:58.428306
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ONE_ACTIVE = sa.text("state = 'active'")


def upgrade() -> None:
    """Apply this revision."""
    op.create_table(
        "policy_versions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("policy_version", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("sources_sha256", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("sources", sa.Text(), nullable=False),
        sa.Column("rule_count", sa.Integer(), nullable=False),
        sa.Column("origin", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("proposal_id", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column(
            "created_by_principal_id", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False
        ),
        sa.Column(
            "created_by_partner_id", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True
        ),
        sa.Column("state", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("activated_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("sources_sha256"),
    )
    with op.batch_alter_table("policy_versions", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_policy_versions_policy_version"), ["policy_version"], unique=False
        )
        # At most one active version, whatever the code does (partial unique index).
        batch_op.create_index(
            "uq_policy_versions_one_active",
            ["state"],
            unique=True,
            sqlite_where=ONE_ACTIVE,
            postgresql_where=ONE_ACTIVE,
        )

    op.create_table(
        "policy_active",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("version_id", sa.Integer(), nullable=False),
        sa.Column("generation", sa.Integer(), nullable=False),
        sa.Column("activated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("id = 1", name="ck_policy_active_single_row"),
        sa.ForeignKeyConstraint(["version_id"], ["policy_versions.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_table(
        "policy_proposals",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("kind", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("status", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("title", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column(
            "proposer_principal_id", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False
        ),
        sa.Column(
            "proposer_partner_id", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True
        ),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("base_version_id", sa.Integer(), nullable=False),
        sa.Column("rollback_to_version_id", sa.Integer(), nullable=True),
        sa.Column("sources", sa.Text(), nullable=False),
        sa.Column("sources_sha256", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("policy_version", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("changed_files", sa.Text(), nullable=False),
        sa.Column("lint", sa.Text(), nullable=False),
        sa.Column(
            "decided_by_principal_id", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True
        ),
        sa.Column(
            "decided_by_partner_id", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True
        ),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("decision_note", sa.Text(), nullable=True),
        sa.Column("result_version_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(["base_version_id"], ["policy_versions.id"]),
        sa.ForeignKeyConstraint(["result_version_id"], ["policy_versions.id"]),
        sa.ForeignKeyConstraint(["rollback_to_version_id"], ["policy_versions.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("policy_proposals", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_policy_proposals_created_at"), ["created_at"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_policy_proposals_proposer_principal_id"),
            ["proposer_principal_id"],
            unique=False,
        )
        batch_op.create_index(batch_op.f("ix_policy_proposals_status"), ["status"], unique=False)

    op.create_table(
        "workbench_sessions",
        sa.Column("id_sha256", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("principal_id", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("token_id", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["principal_id"], ["principals.id"]),
        sa.ForeignKeyConstraint(["token_id"], ["api_tokens.id"]),
        sa.PrimaryKeyConstraint("id_sha256"),
    )
    with op.batch_alter_table("workbench_sessions", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_workbench_sessions_expires_at"), ["expires_at"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_workbench_sessions_principal_id"), ["principal_id"], unique=False
        )


def downgrade() -> None:
    """Revert this revision."""
    with op.batch_alter_table("workbench_sessions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_workbench_sessions_principal_id"))
        batch_op.drop_index(batch_op.f("ix_workbench_sessions_expires_at"))
    op.drop_table("workbench_sessions")

    with op.batch_alter_table("policy_proposals", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_policy_proposals_status"))
        batch_op.drop_index(batch_op.f("ix_policy_proposals_proposer_principal_id"))
        batch_op.drop_index(batch_op.f("ix_policy_proposals_created_at"))
    op.drop_table("policy_proposals")
    op.drop_table("policy_active")

    with op.batch_alter_table("policy_versions", schema=None) as batch_op:
        batch_op.drop_index("uq_policy_versions_one_active")
        batch_op.drop_index(batch_op.f("ix_policy_versions_policy_version"))
    op.drop_table("policy_versions")
