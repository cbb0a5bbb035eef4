"""Where the migration scripts live, and their head revision read without alembic.

Its own module so that `database` (the start-up fast path) and `migrate` (alembic) both use it
without importing each other.
"""

from __future__ import annotations

import re
from pathlib import Path

_REVISION_LINE = re.compile(r"""^(revision|down_revision)\s*(?::[^=]*)?=\s*(?:["']([^"']+)["']|None)""", re.M)


def migrations_dir() -> Path:
    """The repository's `migrations/` folder (works from an editable install)."""
    here = Path(__file__).resolve()
    for parent in here.parents:
        candidate = parent / "migrations"
        if (candidate / "env.py").is_file():
            return candidate
    raise RuntimeError(f"cannot find the migrations folder above {here}")


def script_head_revision() -> str | None:
    """The head revision of the migration scripts, without alembic; None unless there is exactly one."""
    revisions: set[str] = set()
    parents: set[str] = set()
    for script in (migrations_dir() / "versions").glob("*.py"):
        found = dict((key, value) for key, value in _REVISION_LINE.findall(script.read_text(encoding="utf-8")))
        if not found.get("revision"):
            return None  # a script this reader does not understand: let alembic decide
        revisions.add(found["revision"])
        if found.get("down_revision"):
            parents.add(found["down_revision"])
    heads = revisions - parents
    return heads.pop() if len(heads) == 1 else None
