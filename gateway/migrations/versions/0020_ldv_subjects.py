"""LDV lines: persons and identifier types of audit subject links, trace ids, research subjects

Revision ID: 0020_ldv_subjects
Revises: 0017_logboek_outbox
Create Date: 2026-11-30 05:00:00
"""

import json
from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "0020_ldv_subjects"
down_revision: str | None = "0017_logboek_outbox"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Apply this revision."""
    # Links logged before have neither: each of their keys is a person of its own.
    with op.batch_alter_table("audit_subjects", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("person", sqlmodel.sql.sqltypes.AutoString(length=80), nullable=True)
        )
        batch_op.add_column(
            sa.Column("id_type", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=True)
        )
    op.create_table(
        "research_row_subjects",
        sa.Column("batch_id", sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("subject_key", sqlmodel.sql.sqltypes.AutoString(length=80), nullable=False),
        sa.Column("id_type", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column("person", sqlmodel.sql.sqltypes.AutoString(length=80), nullable=False),
        sa.ForeignKeyConstraint(["batch_id"], ["research_batches.id"]),
        sa.PrimaryKeyConstraint("batch_id", "seq", "subject_key"),
    )
    with op.batch_alter_table("research_row_subjects", schema=None) as batch_op:
        batch_op.create_index("ix_research_row_subjects_subject_key", ["subject_key"], unique=False)
    with op.batch_alter_table("audit_entries", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("trace_id", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=True)
        )
        batch_op.create_index("ix_audit_entries_trace_id", ["trace_id"], unique=False)
    bind = op.get_bind()
    rows = bind.execute(sa.text("SELECT leaf_index, leaf FROM audit_entries")).all()
    traces = [
        {"i": index, "t": trace}
        for index, leaf in rows
        if isinstance(trace := json.loads(leaf).get("trace"), str)
    ]
    if traces:
        bind.execute(
            sa.text("UPDATE audit_entries SET trace_id = :t WHERE leaf_index = :i"), traces
        )


def downgrade() -> None:
    """Revert this revision."""
    op.drop_table("research_row_subjects")
    with op.batch_alter_table("audit_entries", schema=None) as batch_op:
        batch_op.drop_index("ix_audit_entries_trace_id")
        batch_op.drop_column("trace_id")
    with op.batch_alter_table("audit_subjects", schema=None) as batch_op:
        batch_op.drop_column("id_type")
        batch_op.drop_column("person")
