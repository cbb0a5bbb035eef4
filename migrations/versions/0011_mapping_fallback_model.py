"""A backend mapping's local fallback can name its model: `backend_mappings.fallback_model` (`--fallback local:NAME`).

NULL keeps the old behaviour (the requested name is looked up locally).

Revision ID: 0011_mapping_fallback_model
Revises: 0010_hosts
Create Date: 2026-12-02
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011_mapping_fallback_model"
down_revision = "0010_hosts"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("backend_mappings", schema=None) as batch_op:
        batch_op.add_column(sa.Column("fallback_model", sa.String(length=255), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("backend_mappings", schema=None) as batch_op:
        batch_op.drop_column("fallback_model")
