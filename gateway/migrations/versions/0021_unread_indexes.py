"""indexes no query reads: six of policy_decisions', and records' provider_partner_id

Every request that is decided inserts a ``policy_decisions`` row in its own transaction,
every share a ``records`` row; each secondary index costs a page written per insert (and
copied again at checkpoint). Replays and proposals select decisions by ``decided_at``
only; the other six indexes were never read. ``records.provider_partner_id`` leads the
unique (provider_partner_id, idempotency_key) index, which serves every look-up by it.

Revision ID: 0021_unread_indexes
Revises: 0019_retention
Create Date: 2026-11-30 18:00:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0021_unread_indexes"
down_revision: str | None = "0019_retention"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_UNREAD = (
    ("policy_decisions", "action"),
    ("policy_decisions", "case_id"),
    ("policy_decisions", "partner_id"),
    ("policy_decisions", "policy_version"),
    ("policy_decisions", "request_sha256"),
    ("policy_decisions", "rule_id"),
    ("records", "provider_partner_id"),
)


def upgrade() -> None:
    """Apply this revision."""
    for table, column in _UNREAD:
        op.drop_index(f"ix_{table}_{column}", table_name=table)


def downgrade() -> None:
    """Revert this revision."""
    for table, column in _UNREAD:
        op.create_index(f"ix_{table}_{column}", table, [column], unique=False)
