"""partners' OpenID Connect providers, the people they sign in, partner systems' client keys (issue 21)

Revision ID: 0014_oidc
Revises: 0013
Create Date: 2026-11-30 02:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "0014_oidc"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Apply this revision."""
    op.create_table(
        "oidc_providers",
        sa.Column("partner_id", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("issuer", sqlmodel.sql.sqltypes.AutoString(length=255), nullable=False),
        sa.Column("client_id", sqlmodel.sql.sqltypes.AutoString(length=255), nullable=False),
        sa.Column("client_auth", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column("client_credential_sealed", sa.LargeBinary(), nullable=False),
        sa.Column("acr_values", sqlmodel.sql.sqltypes.AutoString(length=500), nullable=False),
        sa.Column("api_audience", sqlmodel.sql.sqltypes.AutoString(length=255), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["partner_id"], ["partners.id"]),
        sa.PrimaryKeyConstraint("partner_id"),
        sa.UniqueConstraint("issuer"),
    )
    op.create_table(
        "oidc_people",
        sa.Column("principal_id", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("partner_id", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("person_key", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["partner_id"], ["partners.id"]),
        sa.ForeignKeyConstraint(["principal_id"], ["principals.id"]),
        sa.PrimaryKeyConstraint("principal_id"),
    )
    with op.batch_alter_table("oidc_people", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_oidc_people_partner_id"), ["partner_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_oidc_people_person_key"), ["person_key"], unique=False)
    op.create_table(
        "oauth_client_keys",
        sa.Column("principal_id", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("jwk", sqlmodel.sql.sqltypes.AutoString(length=8000), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["principal_id"], ["principals.id"]),
        sa.PrimaryKeyConstraint("principal_id"),
    )
    op.create_table(
        "oauth_assertion_uses",
        sa.Column("jti_sha256", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("jti_sha256"),
    )
    with op.batch_alter_table("oauth_assertion_uses", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_oauth_assertion_uses_expires_at"), ["expires_at"], unique=False
        )


def downgrade() -> None:
    """Revert this revision."""
    op.drop_table("oauth_assertion_uses")
    op.drop_table("oauth_client_keys")
    op.drop_table("oidc_people")
    op.drop_table("oidc_providers")
