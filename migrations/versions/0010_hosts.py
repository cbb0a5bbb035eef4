"""Several servers on one database: audit rows and pool state per host.

`audit_logs.host` names the server that served the request (NULL for rows written before);
`pool_state` holds what each host's pool has loaded, one row per (host, model).

Revision ID: 0010_hosts
Revises: 0009_profile_output_constraint
Create Date: 2026-12-01
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op


revision = "0010_hosts"
down_revision = "0009_profile_output_constraint"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("audit_logs", schema=None) as batch_op:
        batch_op.add_column(sa.Column("host", sa.String(length=255), nullable=True))
        batch_op.create_index("ix_audit_logs_host", ["host"], unique=False)
    op.create_table(
        "pool_state",
        sa.Column("host", sa.String(length=255), nullable=False),
        sa.Column("model_id", sa.String(length=255), nullable=False),
        sa.Column("model_type", sa.String(length=32), nullable=False),
        sa.Column("size_bytes", sa.BigInteger(), nullable=False),
        sa.Column("loaded_at", sa.DateTime(), nullable=False),
        sa.Column("last_used_at", sa.DateTime(), nullable=False),
        sa.Column("use_count", sa.Integer(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("host", "model_id", name="pk_pool_state"),
    )


def downgrade() -> None:
    op.drop_table("pool_state")
    with op.batch_alter_table("audit_logs", schema=None) as batch_op:
        batch_op.drop_index("ix_audit_logs_host")
        batch_op.drop_column("host")
