"""Who made an API key: `api_keys.trusted` (the owner's CLI or an admin).

`mlxm serve` on a non-loopback address only counts trusted keys, so a key minted by whoever reached
an open loopback server cannot be what lets it be exposed. Keys made before this revision cannot be
told apart, so they start untrusted (they keep working; the user makes a new key to expose the server).

Revision ID: 0008_api_key_trust
Revises: 0007_profile_enable_thinking
Create Date: 2026-12-01
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008_api_key_trust"
down_revision = "0007_profile_enable_thinking"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("api_keys", schema=None) as batch_op:
        batch_op.add_column(sa.Column("trusted", sa.Boolean(), nullable=False, server_default=sa.false()))


def downgrade() -> None:
    with op.batch_alter_table("api_keys", schema=None) as batch_op:
        batch_op.drop_column("trusted")
