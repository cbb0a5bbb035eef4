"""Dependency profiles for the catalog's vision and embeddings models (mlx-vlm, mlx-embeddings).

0004 seeded only the runtimes of text and audio models, so the vision and embeddings entries
resolved to an empty list, as if they needed nothing. The pins are the registry's current
releases at this revision (mlx-vlm 0.7.10, mlx-embeddings 0.1.0) on the same `mlx` as 0004.

Revision ID: 0005_vision_embedding_dependencies
Revises: 0004_library_pipelines
Create Date: 2026-11-23
"""
from __future__ import annotations

from datetime import datetime, timezone

import sqlalchemy as sa
from alembic import op

revision = "0005_vision_embedding_dependencies"
down_revision = "0004_library_pipelines"
branch_labels = None
depends_on = None

_MLX = [
    # (name, extras, pin, markers, python_requires)
    ("mlx", [], "==0.32.4", 'sys_platform == "darwin"', ">=3.10"),
    ("mlx", ["cpu"], "==0.32.4", 'sys_platform == "linux"', ">=3.10"),
]
SEED_PROFILES = [
    ("mlx-vlm", 1, "Vision-language models with mlx-vlm", _MLX + [("mlx-vlm", [], "==0.7.10", None, ">=3.10")]),
    ("mlx-embeddings", 1, "Text embeddings with mlx-embeddings",
     _MLX + [("mlx-embeddings", [], "==0.1.0", None, ">=3.10")]),
]
SEED_BINDINGS = {
    "mlx-vlm": ["gemma-3-4b-it-4bit-v1", "qwen2.5-vl-3b-instruct-4bit-v1"],
    "mlx-embeddings": ["all-minilm-l6-v2-4bit-v1"],
}

_profiles = sa.table(
    "dependency_profiles",
    sa.column("id", sa.Integer), sa.column("profile_id", sa.String), sa.column("version", sa.Integer),
    sa.column("environment_kind", sa.String), sa.column("description", sa.Text), sa.column("created_at", sa.DateTime),
)
_requirements = sa.table(
    "dependency_requirements",
    sa.column("profile_pk", sa.Integer), sa.column("position", sa.Integer), sa.column("name", sa.String),
    sa.column("extras", sa.JSON), sa.column("pin", sa.String), sa.column("markers", sa.Text),
    sa.column("python_requires", sa.String),
)
_bindings = sa.table(
    "dependency_bindings",
    sa.column("binding_id", sa.String), sa.column("model_id", sa.String), sa.column("profile_id", sa.String),
    sa.column("profile_version", sa.Integer), sa.column("environment_kind", sa.String),
    sa.column("platform_selector", sa.String), sa.column("backend_key", sa.String),
    sa.column("created_at", sa.DateTime),
)


def _seed_binding_ids() -> set[str]:
    return {f"{model_id}:{profile_id}" for profile_id, ids in SEED_BINDINGS.items() for model_id in ids}


def upgrade() -> None:
    bind = op.get_bind()
    now = datetime.now(timezone.utc).replace(tzinfo=None)
    existing_profiles = {(r[0], r[1]) for r in bind.execute(sa.text("SELECT profile_id, version FROM dependency_profiles"))}
    existing_bindings = {r[0] for r in bind.execute(sa.text("SELECT binding_id FROM dependency_bindings"))}
    next_pk = (bind.execute(sa.text("SELECT MAX(id) FROM dependency_profiles")).scalar() or 0) + 1
    profile_rows, requirement_rows = [], []
    for profile_id, version, description, reqs in SEED_PROFILES:
        if (profile_id, version) in existing_profiles:
            continue  # a user made one first (`mlxm deps profile add`): theirs stays
        profile_rows.append({"id": next_pk, "profile_id": profile_id, "version": version,
                             "environment_kind": "python-venv", "description": description, "created_at": now})
        for position, (name, extras, pin, markers, python_requires) in enumerate(reqs):
            requirement_rows.append({"profile_pk": next_pk, "position": position, "name": name, "extras": extras,
                                     "pin": pin, "markers": markers, "python_requires": python_requires})
        next_pk += 1
    binding_rows = [
        {"binding_id": f"{model_id}:{profile_id}", "model_id": model_id, "profile_id": profile_id,
         "profile_version": 1, "environment_kind": "python-venv", "platform_selector": "*",
         "backend_key": profile_id, "created_at": now}
        for profile_id, model_ids in SEED_BINDINGS.items()
        for model_id in model_ids
        if f"{model_id}:{profile_id}" not in existing_bindings
    ]
    if profile_rows:
        op.bulk_insert(_profiles, profile_rows)
        op.bulk_insert(_requirements, requirement_rows)
    if binding_rows:
        op.bulk_insert(_bindings, binding_rows)


def downgrade() -> None:
    """Remove this revision's seed; refused when a user's binding relies on one of its profiles."""
    bind = op.get_bind()
    seeded_ids = _seed_binding_ids()
    for profile_id, _, _, _ in SEED_PROFILES:
        users = [r[0] for r in bind.execute(
            sa.text("SELECT binding_id FROM dependency_bindings WHERE profile_id = :p"), {"p": profile_id})
            if r[0] not in seeded_ids]
        if users:
            raise RuntimeError(
                f"downgrade would remove profile {profile_id!r} that bindings rely on ({', '.join(sorted(users)[:5])})"
            )
    for binding_id in sorted(seeded_ids):
        bind.execute(sa.text("DELETE FROM dependency_bindings WHERE binding_id = :b"), {"b": binding_id})
    for profile_id, version, _, _ in SEED_PROFILES:
        pks = [r[0] for r in bind.execute(
            sa.text("SELECT id FROM dependency_profiles WHERE profile_id = :p AND version = :v"),
            {"p": profile_id, "v": version})]
        for pk in pks:
            bind.execute(sa.text("DELETE FROM dependency_requirements WHERE profile_pk = :pk"), {"pk": pk})
            bind.execute(sa.text("DELETE FROM dependency_profiles WHERE id = :pk"), {"pk": pk})
