"""enrolment codes and person keys of principals

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-29 22:45:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Apply this revision."""
    op.create_table(
        "enrolment_codes",
        sa.Column("id", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column("principal_id", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("secret_sha256", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("used_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["principal_id"], ["principals.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("enrolment_codes", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_enrolment_codes_principal_id"), ["principal_id"], unique=False
        )
    with op.batch_alter_table("principals", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("person_key", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True)
        )
        batch_op.create_index(batch_op.f("ix_principals_person_key"), ["person_key"], unique=False)


def downgrade() -> None:
    """Revert this revision."""
    with op.batch_alter_table("principals", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_principals_person_key"))
    # Plain ALTER (SQLite 3.35+ and PostgreSQL): a batch rebuild of ``principals`` would
    # drop a table that api_tokens and enrolment_codes still reference.
    op.execute("ALTER TABLE principals DROP COLUMN person_key")
    with op.batch_alter_table("enrolment_codes", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_enrolment_codes_principal_id"))
    op.drop_table("enrolment_codes")
