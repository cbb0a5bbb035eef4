"""Inference profiles can carry structured output: `inference_profiles.output_constraint` ({"kind", "spec"}).

NULL (every existing profile) means plain text unless the request asks for a response_format.

Revision ID: 0009_profile_output_constraint
Revises: 0008_api_key_trust
Create Date: 2026-12-02
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009_profile_output_constraint"
down_revision = "0008_api_key_trust"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("inference_profiles", schema=None) as batch_op:
        batch_op.add_column(sa.Column("output_constraint", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("inference_profiles", schema=None) as batch_op:
        batch_op.drop_column("output_constraint")
