"""research: provider consents, intake batches and rows, withdrawals, generalisations, releases

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-23 14:23:26.689365
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Apply this revision."""
    op.create_table(
        "research_generalisations",
        sa.Column("project", sqlmodel.sql.sqltypes.AutoString(length=80), nullable=False),
        sa.Column("agreement_id", sqlmodel.sql.sqltypes.AutoString(length=80), nullable=False),
        sa.Column("state", sa.Text(), nullable=False),
        sa.Column("state_sha256", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("fixed_by_release", sqlmodel.sql.sqltypes.AutoString(length=120), nullable=False),
        sa.Column("fixed_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("project"),
    )
    op.create_table(
        "research_releases",
        sa.Column("id", sqlmodel.sql.sqltypes.AutoString(length=120), nullable=False),
        sa.Column("agreement_id", sqlmodel.sql.sqltypes.AutoString(length=80), nullable=False),
        sa.Column("agreement_version", sa.Integer(), nullable=False),
        sa.Column("agreement_sha256", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("project", sqlmodel.sql.sqltypes.AutoString(length=80), nullable=False),
        sa.Column("policy_version", sqlmodel.sql.sqltypes.AutoString(length=80), nullable=False),
        sa.Column("manifest_sha256", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("state_sha256", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("bundle_name", sqlmodel.sql.sqltypes.AutoString(length=140), nullable=False),
        sa.Column("bundle_sha256", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("bundle_bytes", sa.Integer(), nullable=False),
        sa.Column("rows_in", sa.Integer(), nullable=False),
        sa.Column("rows_out", sa.Integer(), nullable=False),
        sa.Column("rows_suppressed", sa.Integer(), nullable=False),
        sa.Column("consenting_providers", sa.Text(), nullable=False),
        sa.Column("recipients", sa.Text(), nullable=False),
        sa.Column("expires_on", sa.Date(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("requested_by", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column(
            "requested_by_partner", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True
        ),
        sa.Column("audit_leaf_index", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("research_releases", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_research_releases_agreement_id"), ["agreement_id"], unique=False
        )

    op.create_table(
        "research_batches",
        sa.Column("id", sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
        sa.Column("agreement_id", sqlmodel.sql.sqltypes.AutoString(length=80), nullable=False),
        sa.Column("instrument_id", sqlmodel.sql.sqltypes.AutoString(length=80), nullable=False),
        sa.Column("provider_id", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("submitted_by", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("idempotency_key", sqlmodel.sql.sqltypes.AutoString(length=128), nullable=False),
        sa.Column("content_key", sqlmodel.sql.sqltypes.AutoString(length=80), nullable=False),
        sa.Column("row_count", sa.Integer(), nullable=False),
        sa.Column("invalid_identifiers", sa.Text(), nullable=False),
        sa.Column("policy_version", sqlmodel.sql.sqltypes.AutoString(length=80), nullable=False),
        sa.Column("rule_id", sqlmodel.sql.sqltypes.AutoString(length=120), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["provider_id"],
            ["partners.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("provider_id", "idempotency_key"),
    )
    with op.batch_alter_table("research_batches", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_research_batches_agreement_id"), ["agreement_id"], unique=False
        )

    op.create_table(
        "research_consents",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("agreement_id", sqlmodel.sql.sqltypes.AutoString(length=80), nullable=False),
        sa.Column("agreement_version", sa.Integer(), nullable=False),
        sa.Column("provider_id", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("decision", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("recorded_by", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("policy_version", sqlmodel.sql.sqltypes.AutoString(length=80), nullable=False),
        sa.Column("audit_leaf_index", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["provider_id"],
            ["partners.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("research_consents", schema=None) as batch_op:
        batch_op.create_index(
            "ix_research_consents_agreement", ["agreement_id", "provider_id"], unique=False
        )

    op.create_table(
        "research_withdrawals",
        sa.Column("agreement_id", sqlmodel.sql.sqltypes.AutoString(length=80), nullable=False),
        sa.Column("respondent_key", sqlmodel.sql.sqltypes.AutoString(length=80), nullable=False),
        sa.Column("provider_id", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("recorded_by", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["provider_id"],
            ["partners.id"],
        ),
        sa.PrimaryKeyConstraint("agreement_id", "respondent_key"),
    )
    op.create_table(
        "research_rows",
        sa.Column("batch_id", sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("agreement_id", sqlmodel.sql.sqltypes.AutoString(length=80), nullable=False),
        sa.Column("instrument_id", sqlmodel.sql.sqltypes.AutoString(length=80), nullable=False),
        sa.Column("provider_id", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("category", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("respondent_key", sqlmodel.sql.sqltypes.AutoString(length=80), nullable=True),
        sa.Column("payload_sealed", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["batch_id"],
            ["research_batches.id"],
        ),
        sa.PrimaryKeyConstraint("batch_id", "seq"),
    )
    with op.batch_alter_table("research_rows", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_research_rows_respondent_key"), ["respondent_key"], unique=False
        )
        batch_op.create_index(
            "ix_research_rows_selection",
            ["agreement_id", "provider_id", "instrument_id"],
            unique=False,
        )


def downgrade() -> None:
    """Revert this revision."""
    with op.batch_alter_table("research_rows", schema=None) as batch_op:
        batch_op.drop_index("ix_research_rows_selection")
        batch_op.drop_index(batch_op.f("ix_research_rows_respondent_key"))

    op.drop_table("research_rows")
    op.drop_table("research_withdrawals")
    with op.batch_alter_table("research_consents", schema=None) as batch_op:
        batch_op.drop_index("ix_research_consents_agreement")

    op.drop_table("research_consents")
    with op.batch_alter_table("research_batches", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_research_batches_agreement_id"))

    op.drop_table("research_batches")
    with op.batch_alter_table("research_releases", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_research_releases_agreement_id"))

    op.drop_table("research_releases")
    op.drop_table("research_generalisations")
