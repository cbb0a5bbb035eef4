"""Library pipelines: dependency profiles, their requirements and bindings; links made into apps.

Seeds the dependency profiles of the MLX runtimes mlxm uses (exact pins, with platform markers:
`mlx[cpu]` on Linux, `mlx` on macOS) and binds them to the embedded catalog's text and audio
models. The seed is data frozen at this revision; later profile versions come in later revisions
or from users (`mlxm deps bind`).

Revision ID: 0004_library_pipelines
Revises: 0003_api_keys
Create Date: 2026-11-23
"""
from __future__ import annotations

from datetime import datetime, timezone

import sqlalchemy as sa
from alembic import op

revision = "0004_library_pipelines"
down_revision = "0003_api_keys"
branch_labels = None
depends_on = None

_MLX = [
    # (name, extras, pin, markers, python_requires)
    ("mlx", [], "==0.32.4", 'sys_platform == "darwin"', ">=3.10"),
    ("mlx", ["cpu"], "==0.32.4", 'sys_platform == "linux"', ">=3.10"),
]
SEED_PROFILES = [
    ("mlx-lm", 1, "Text generation with mlx-lm", _MLX + [("mlx-lm", [], "==0.32.2", None, ">=3.11")]),
    ("mlx-audio", 1, "Speech (TTS and STT) with mlx-audio", _MLX + [("mlx-audio", [], "==0.6.2", None, ">=3.10")]),
]
# The embedded catalog's models at this revision, by the runtime that serves them.
SEED_BINDINGS = {
    "mlx-lm": [
        "qwen3-0.6b-4bit-v1", "qwen3-4b-4bit-v1", "qwen3-4b-instruct-2507-4bit-v1", "qwen3-8b-4bit-v1",
        "llama-3.2-1b-instruct-4bit-v1", "llama-3.2-3b-instruct-4bit-v1", "gemma-3-1b-it-4bit-v1",
        "smollm3-3b-4bit-v1",
    ],
    "mlx-audio": ["whisper-large-v3-turbo-v1", "kokoro-82m-bf16-v1"],
}


def upgrade() -> None:
    profiles = op.create_table(
        "dependency_profiles",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("profile_id", sa.String(length=128), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("environment_kind", sa.String(length=32), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_dependency_profiles")),
        sa.UniqueConstraint("profile_id", "version", name="uq_dependency_profiles_profile_id_version"),
    )
    with op.batch_alter_table("dependency_profiles", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_dependency_profiles_profile_id"), ["profile_id"], unique=False)

    requirements = op.create_table(
        "dependency_requirements",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("profile_pk", sa.Integer(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=128), nullable=False),
        sa.Column("extras", sa.JSON(), nullable=False),
        sa.Column("pin", sa.String(length=64), nullable=False),
        sa.Column("markers", sa.Text(), nullable=True),
        sa.Column("python_requires", sa.String(length=64), nullable=True),
        sa.ForeignKeyConstraint(["profile_pk"], ["dependency_profiles.id"],
                                name=op.f("fk_dependency_requirements_profile_pk_dependency_profiles"),
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_dependency_requirements")),
    )
    with op.batch_alter_table("dependency_requirements", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_dependency_requirements_profile_pk"), ["profile_pk"], unique=False)

    bindings = op.create_table(
        "dependency_bindings",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("binding_id", sa.String(length=255), nullable=False),
        sa.Column("model_id", sa.String(length=255), nullable=False),
        sa.Column("profile_id", sa.String(length=128), nullable=False),
        sa.Column("profile_version", sa.Integer(), nullable=True),
        sa.Column("environment_kind", sa.String(length=32), nullable=False),
        sa.Column("platform_selector", sa.String(length=64), nullable=False),
        sa.Column("backend_key", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_dependency_bindings")),
        sa.UniqueConstraint("binding_id", name=op.f("uq_dependency_bindings_binding_id")),
    )
    with op.batch_alter_table("dependency_bindings", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_dependency_bindings_model_id"), ["model_id"], unique=False)

    op.create_table(
        "model_links",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("app", sa.String(length=64), nullable=False),
        sa.Column("model_id", sa.String(length=255), nullable=False),
        sa.Column("rule_target", sa.Text(), nullable=False),
        sa.Column("folder", sa.String(length=255), nullable=False),
        sa.Column("source_path", sa.Text(), nullable=False),
        sa.Column("target_path", sa.String(length=1024), nullable=False),
        sa.Column("method", sa.String(length=16), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_model_links")),
        sa.UniqueConstraint("target_path", name=op.f("uq_model_links_target_path")),
    )
    with op.batch_alter_table("model_links", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_model_links_app"), ["app"], unique=False)
        batch_op.create_index(batch_op.f("ix_model_links_model_id"), ["model_id"], unique=False)

    _seed(profiles, requirements, bindings)


def _seed(profiles: sa.Table, requirements: sa.Table, bindings: sa.Table) -> None:
    now = datetime.now(timezone.utc).replace(tzinfo=None)
    profile_rows, requirement_rows = [], []
    for pk, (profile_id, version, description, reqs) in enumerate(SEED_PROFILES, start=1):
        profile_rows.append({"id": pk, "profile_id": profile_id, "version": version, "environment_kind": "python-venv",
                             "description": description, "created_at": now})
        for position, (name, extras, pin, markers, python_requires) in enumerate(reqs):
            requirement_rows.append({"profile_pk": pk, "position": position, "name": name, "extras": extras,
                                     "pin": pin, "markers": markers, "python_requires": python_requires})
    binding_rows = [
        {"binding_id": f"{model_id}:{profile_id}", "model_id": model_id, "profile_id": profile_id,
         "profile_version": 1, "environment_kind": "python-venv", "platform_selector": "*",
         "backend_key": profile_id, "created_at": now}
        for profile_id, model_ids in SEED_BINDINGS.items()
        for model_id in model_ids
    ]
    op.bulk_insert(profiles, profile_rows)
    op.bulk_insert(requirements, requirement_rows)
    op.bulk_insert(bindings, binding_rows)


def _refuse_to_lose_user_rows() -> None:
    """Only this revision's own seed may go: links and user-made profiles or bindings would be lost."""
    bind = op.get_bind()
    if bind.execute(sa.text("SELECT COUNT(*) FROM model_links")).scalar():
        raise RuntimeError("downgrade would lose the rows of 'model_links'; restore a backup instead")
    seeded_bindings = {f"{model_id}:{profile_id}" for profile_id, ids in SEED_BINDINGS.items() for model_id in ids}
    bindings = {r[0] for r in bind.execute(sa.text("SELECT binding_id FROM dependency_bindings"))}
    seeded_profiles = {(profile_id, version) for profile_id, version, _, _ in SEED_PROFILES}
    profiles = {(r[0], r[1]) for r in bind.execute(sa.text("SELECT profile_id, version FROM dependency_profiles"))}
    extra = sorted(bindings - seeded_bindings) + sorted(f"{p}@{v}" for p, v in profiles - seeded_profiles)
    if extra:
        raise RuntimeError(
            f"downgrade would lose dependency bindings/profiles not seeded by mlxm ({', '.join(extra[:5])}); "
            "restore a backup instead"
        )


def downgrade() -> None:
    _refuse_to_lose_user_rows()
    with op.batch_alter_table("model_links", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_model_links_model_id"))
        batch_op.drop_index(batch_op.f("ix_model_links_app"))
    op.drop_table("model_links")
    with op.batch_alter_table("dependency_bindings", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_dependency_bindings_model_id"))
    op.drop_table("dependency_bindings")
    with op.batch_alter_table("dependency_requirements", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_dependency_requirements_profile_pk"))
    op.drop_table("dependency_requirements")
    with op.batch_alter_table("dependency_profiles", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_dependency_profiles_profile_id"))
    op.drop_table("dependency_profiles")
