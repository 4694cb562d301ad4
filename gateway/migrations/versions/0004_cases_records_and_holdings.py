"""cases, records and holdings

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-23 14:03:36.308985
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Apply this revision."""
    op.create_table(
        "cases",
        sa.Column("id", sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
        sa.Column("process", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column("step", sa.Integer(), nullable=False),
        sa.Column("status", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("riec_partner_id", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("purpose", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
        sa.Column("legal_basis", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
        sa.Column("created_by", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["riec_partner_id"],
            ["partners.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("cases", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_cases_status"), ["status"], unique=False)

    op.create_table(
        "holdings",
        sa.Column("partner_id", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("subject_key", sqlmodel.sql.sqltypes.AutoString(length=80), nullable=False),
        sa.Column("category", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("id_type", sqlmodel.sql.sqltypes.AutoString(length=24), nullable=False),
        sa.Column("registered_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["partner_id"],
            ["partners.id"],
        ),
        sa.PrimaryKeyConstraint("partner_id", "subject_key", "category"),
    )
    with op.batch_alter_table("holdings", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_holdings_subject_key"), ["subject_key"], unique=False)

    op.create_table(
        "case_outputs",
        sa.Column("id", sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
        sa.Column("case_id", sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
        sa.Column("step", sa.Integer(), nullable=False),
        sa.Column("kind", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column(
            "author_principal_id", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False
        ),
        sa.Column("author_partner_id", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("purpose", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
        sa.Column("legal_basis", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
        sa.Column("assigned_partners", sa.Text(), nullable=False),
        sa.Column("content_sealed", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["case_id"],
            ["cases.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("case_outputs", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_case_outputs_case_id"), ["case_id"], unique=False)

    op.create_table(
        "case_participants",
        sa.Column("case_id", sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
        sa.Column("partner_id", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("added_by", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("added_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["case_id"],
            ["cases.id"],
        ),
        sa.ForeignKeyConstraint(
            ["partner_id"],
            ["partners.id"],
        ),
        sa.PrimaryKeyConstraint("case_id", "partner_id"),
    )
    op.create_table(
        "case_subjects",
        sa.Column("case_id", sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
        sa.Column("subject_key", sqlmodel.sql.sqltypes.AutoString(length=80), nullable=False),
        sa.Column("id_type", sqlmodel.sql.sqltypes.AutoString(length=24), nullable=False),
        sa.Column("value_sealed", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["case_id"],
            ["cases.id"],
        ),
        sa.PrimaryKeyConstraint("case_id", "subject_key"),
    )
    op.create_table(
        "case_transitions",
        sa.Column("id", sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
        sa.Column("case_id", sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("from_step", sa.Integer(), nullable=False),
        sa.Column("to_step", sa.Integer(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("principal_id", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("partner_id", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("reason", sqlmodel.sql.sqltypes.AutoString(length=500), nullable=True),
        sa.Column("policy_version", sqlmodel.sql.sqltypes.AutoString(length=80), nullable=False),
        sa.Column("rule_id", sqlmodel.sql.sqltypes.AutoString(length=120), nullable=False),
        sa.ForeignKeyConstraint(
            ["case_id"],
            ["cases.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("case_transitions", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_case_transitions_case_id"), ["case_id"], unique=False)

    op.create_table(
        "records",
        sa.Column("id", sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
        sa.Column("case_id", sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
        sa.Column(
            "provider_partner_id", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False
        ),
        sa.Column("provided_by", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("step", sa.Integer(), nullable=False),
        sa.Column("category", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("legal_basis", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("purposes", sa.Text(), nullable=False),
        sa.Column("onward", sqlmodel.sql.sqltypes.AutoString(length=24), nullable=False),
        sa.Column("retention_days", sa.Integer(), nullable=False),
        sa.Column("retention_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("idempotency_key", sqlmodel.sql.sqltypes.AutoString(length=128), nullable=False),
        sa.Column("content_key", sqlmodel.sql.sqltypes.AutoString(length=80), nullable=False),
        sa.Column("fields_sealed", sa.Text(), nullable=False),
        sa.Column("summary_sealed", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["case_id"],
            ["cases.id"],
        ),
        sa.ForeignKeyConstraint(
            ["provider_partner_id"],
            ["partners.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("provider_partner_id", "idempotency_key"),
    )
    with op.batch_alter_table("records", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_records_case_id"), ["case_id"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_records_provider_partner_id"), ["provider_partner_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_records_retention_until"), ["retention_until"], unique=False
        )

    op.create_table(
        "record_subjects",
        sa.Column("record_id", sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
        sa.Column("subject_key", sqlmodel.sql.sqltypes.AutoString(length=80), nullable=False),
        sa.Column("id_type", sqlmodel.sql.sqltypes.AutoString(length=24), nullable=False),
        sa.ForeignKeyConstraint(
            ["record_id"],
            ["records.id"],
        ),
        sa.PrimaryKeyConstraint("record_id", "subject_key"),
    )
    with op.batch_alter_table("record_subjects", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_record_subjects_subject_key"), ["subject_key"], unique=False
        )


def downgrade() -> None:
    """Revert this revision."""
    with op.batch_alter_table("record_subjects", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_record_subjects_subject_key"))

    op.drop_table("record_subjects")
    with op.batch_alter_table("records", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_records_retention_until"))
        batch_op.drop_index(batch_op.f("ix_records_provider_partner_id"))
        batch_op.drop_index(batch_op.f("ix_records_case_id"))

    op.drop_table("records")
    with op.batch_alter_table("case_transitions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_case_transitions_case_id"))

    op.drop_table("case_transitions")
    op.drop_table("case_subjects")
    op.drop_table("case_participants")
    with op.batch_alter_table("case_outputs", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_case_outputs_case_id"))

    op.drop_table("case_outputs")
    with op.batch_alter_table("holdings", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_holdings_subject_key"))

    op.drop_table("holdings")
    with op.batch_alter_table("cases", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_cases_status"))

    op.drop_table("cases")
