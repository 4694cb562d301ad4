"""retention per data category: when each data-subject index row is purged

Revision ID: 0019_retention
Revises: 0020_ldv_subjects
Create Date: 2026-11-30 05:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0019_retention"
down_revision: str | None = "0020_ldv_subjects"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Apply this revision.

    Rows integrated before it keep NULL: the purge gives them the default four years
    from their entry's time, as ``audit verify`` does for leaves without ``subjects_until``.
    """
    with op.batch_alter_table("audit_subjects", schema=None) as batch_op:
        batch_op.add_column(sa.Column("delete_after", sa.DateTime(timezone=True), nullable=True))
        batch_op.create_index(
            batch_op.f("ix_audit_subjects_delete_after"), ["delete_after"], unique=False
        )


def downgrade() -> None:
    """Revert this revision."""
    with op.batch_alter_table("audit_subjects", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_audit_subjects_delete_after"))
        batch_op.drop_column("delete_after")
