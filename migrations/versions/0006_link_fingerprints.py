"""A copied link remembers what it looked like: `model_links.fingerprint`.

A link made by copy used to count as mlxm's whenever its size matched the library file, so
deleting a model could delete a same-size file the user put there since. Existing copy records
get no fingerprint: they are treated as the user's from now on (kept, never deleted).

Revision ID: 0006_link_fingerprints
Revises: 0005_vision_embedding_dependencies
Create Date: 2026-11-23
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006_link_fingerprints"
down_revision = "0005_vision_embedding_dependencies"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("model_links", schema=None) as batch_op:
        batch_op.add_column(sa.Column("fingerprint", sa.String(length=128), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("model_links", schema=None) as batch_op:
        batch_op.drop_column("fingerprint")
