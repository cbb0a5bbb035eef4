"""Library metadata overlays: the user's corrections over what import, probe and pulls inferred.

`model_overlays` holds one row per (model, field) with the overlay (the user's value and the
inferred value beneath it); `models.display_name` is the effective display name (NULL: the id).

Revision ID: 0012_model_overlays
Revises: 0011_mapping_fallback_model
Create Date: 2026-12-02
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012_model_overlays"
down_revision = "0011_mapping_fallback_model"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("models", schema=None) as batch_op:
        batch_op.add_column(sa.Column("display_name", sa.String(length=255), nullable=True))
    op.create_table(
        "model_overlays",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("model_pk", sa.Integer(), nullable=False),
        sa.Column("field", sa.String(length=32), nullable=False),
        sa.Column("data", sa.JSON(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=True),
        sa.ForeignKeyConstraint(["model_pk"], ["models.id"], name="fk_model_overlays_model_pk_models",
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name="pk_model_overlays"),
        sa.UniqueConstraint("model_pk", "field", name="uq_model_overlays_model_pk"),
    )
    with op.batch_alter_table("model_overlays", schema=None) as batch_op:
        batch_op.create_index("ix_model_overlays_model_pk", ["model_pk"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("model_overlays", schema=None) as batch_op:
        batch_op.drop_index("ix_model_overlays_model_pk")
    op.drop_table("model_overlays")
    with op.batch_alter_table("models", schema=None) as batch_op:
        batch_op.drop_column("display_name")
