"""partners' Logboek endpoints and the outbox of lines waiting for them (issue 20)

Revision ID: 0017_logboek_outbox
Revises: 0016_sequencing
Create Date: 2026-11-30 05:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "0017_logboek_outbox"
down_revision: str | None = "0016_sequencing"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Apply this revision."""
    op.create_table(
        "logboek_endpoints",
        sa.Column("partner_id", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("url", sqlmodel.sql.sqltypes.AutoString(length=500), nullable=False),
        sa.Column("protocol", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("ca_file", sqlmodel.sql.sqltypes.AutoString(length=500), nullable=True),
        sa.Column("client_cert_file", sqlmodel.sql.sqltypes.AutoString(length=500), nullable=True),
        sa.Column("client_key_file", sqlmodel.sql.sqltypes.AutoString(length=500), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["partner_id"], ["partners.id"]),
        sa.PrimaryKeyConstraint("partner_id"),
    )
    op.create_table(
        "logboek_outbox",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            sa.Identity(start=1),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("partner_id", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("leaf_index", sa.BigInteger(), nullable=False),
        sa.Column("span_id", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("line", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_error", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=True),
        sa.Column("lease_token", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=True),
        sa.Column("lease_until", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_logboek_outbox_partner_id", "logboek_outbox", ["partner_id", "id"])


def downgrade() -> None:
    """Revert this revision (refused while lines wait: they would be lost)."""
    waiting = op.get_bind().execute(sa.text("SELECT COUNT(*) FROM logboek_outbox")).scalar_one()
    if waiting:
        raise RuntimeError(
            f"{waiting} Logboek lines are waiting; run `gateway logboek flush` before downgrading"
        )
    op.drop_index("ix_logboek_outbox_partner_id", table_name="logboek_outbox")
    op.drop_table("logboek_outbox")
    op.drop_table("logboek_endpoints")
