"""Inference profiles can switch a model's thinking off: `inference_profiles.enable_thinking`.

NULL leaves it to the request and the model's chat template (the existing profiles' behaviour).

Revision ID: 0007_profile_enable_thinking
Revises: 0006_link_fingerprints
Create Date: 2026-12-01
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007_profile_enable_thinking"
down_revision = "0006_link_fingerprints"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("inference_profiles", schema=None) as batch_op:
        batch_op.add_column(sa.Column("enable_thinking", sa.Boolean(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("inference_profiles", schema=None) as batch_op:
        batch_op.drop_column("enable_thinking")
