"""audit sequencing: pending entries and the entry id of each leaf

Revision ID: 0016_sequencing
Revises: 0014_oidc
Create Date: 2026-11-30 02:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "0016_sequencing"
down_revision: str | None = "0014_oidc"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Apply this revision."""
    op.create_table(
        "audit_pending",
        sa.Column(
            "entry_id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            sa.Identity(start=1),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("event_type", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor_partner_id", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
        sa.Column("actor_principal_id", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
        sa.Column("case_id", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
        sa.Column("document", sa.Text(), nullable=False),
        sa.Column("salt", sa.LargeBinary(length=16), nullable=True),
        sa.Column("body", sa.Text(), nullable=True),
        sa.Column("delete_after", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("entry_id"),
        sqlite_autoincrement=True,
    )
    with op.batch_alter_table("audit_entries", schema=None) as batch_op:
        batch_op.add_column(sa.Column("entry_id", sa.BigInteger(), nullable=True))
        batch_op.create_unique_constraint("uq_audit_entries_entry_id", ["entry_id"])
    # Entries logged before sequencing keep their index as their id (so the decision
    # records that named them by index still do); new ids start above them.
    op.execute("UPDATE audit_entries SET entry_id = leaf_index")
    bind = op.get_bind()
    size = bind.execute(sa.text("SELECT size FROM audit_tree_head WHERE id = 1")).scalar() or 0
    if bind.dialect.name == "sqlite":
        bind.execute(
            sa.text("INSERT INTO sqlite_sequence (name, seq) VALUES ('audit_pending', :size)"),
            {"size": size},
        )
    else:
        bind.execute(
            sa.text(
                "SELECT setval(pg_get_serial_sequence('audit_pending', 'entry_id'), :n, false)"
            ),
            {"n": size + 1},
        )
    with op.batch_alter_table("policy_decisions", schema=None) as batch_op:
        batch_op.alter_column("audit_leaf_index", new_column_name="audit_entry_id")


def downgrade() -> None:
    """Revert this revision (refused while entries are pending: they would be lost)."""
    bind = op.get_bind()
    pending = bind.execute(sa.text("SELECT COUNT(*) FROM audit_pending")).scalar_one()
    if pending:
        raise RuntimeError(
            f"{pending} audit entries are pending; run the gateway (or `gateway audit verify`) "
            "to integrate them before downgrading"
        )
    with op.batch_alter_table("policy_decisions", schema=None) as batch_op:
        batch_op.alter_column("audit_entry_id", new_column_name="audit_leaf_index")
    op.execute(
        "UPDATE policy_decisions SET audit_leaf_index = (SELECT leaf_index FROM audit_entries "
        "WHERE audit_entries.entry_id = policy_decisions.audit_leaf_index) WHERE EXISTS "
        "(SELECT 1 FROM audit_entries WHERE audit_entries.entry_id = policy_decisions.audit_leaf_index)"
    )
    with op.batch_alter_table("audit_entries", schema=None) as batch_op:
        batch_op.drop_constraint("uq_audit_entries_entry_id", type_="unique")
        batch_op.drop_column("entry_id")
    op.drop_table("audit_pending")
