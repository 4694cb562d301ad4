"""policy decisions: keep only the index a query reads (decided_at)

Every request that is decided inserts a ``policy_decisions`` row in its own transaction;
each secondary index costs a page written per insert (and copied again at checkpoint).
Replays and proposals select by ``decided_at`` only; the other six indexes were never
read.

Revision ID: 0021_decision_indexes
Revises: 0019_retention
Create Date: 2026-11-30 18:00:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0021_decision_indexes"
down_revision: str | None = "0019_retention"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_UNREAD = ("action", "case_id", "partner_id", "policy_version", "request_sha256", "rule_id")


def upgrade() -> None:
    """Apply this revision."""
    with op.batch_alter_table("policy_decisions", schema=None) as batch_op:
        for column in _UNREAD:
            batch_op.drop_index(f"ix_policy_decisions_{column}")


def downgrade() -> None:
    """Revert this revision."""
    with op.batch_alter_table("policy_decisions", schema=None) as batch_op:
        for column in _UNREAD:
            batch_op.create_index(f"ix_policy_decisions_{column}", [column], unique=False)
