"""Dependency bindings stored before selectors were normalised keep applying where they applied.

Until session 5 `deps bind --platform` stored any text, and a selector `SYSTEM[-MACHINE]` was fnmatch'ed
against the consumer's platform. The SYSTEM part was only ever compared with `linux`, `darwin` or `win32`:
`sys.platform` for this machine, and `--platform macos`/`windows` were converted before matching. The MACHINE
part was compared with the name as the consumer spelled it (`--platform linux-aarch64` kept `aarch64`).
Today a selector matches every spelling of both parts (domain.library.dependency_model), so a SYSTEM part
that fits only another spelling (`macos`, `mac*`, `*x*` through `osx`) now applies where it never did.

This revision rewrites the SYSTEM part of such rows into today's form of the systems it matched before
(`[lm]*-arm64` -> `linux-arm64`). A row whose SYSTEM part matched no system before (`macos`, `osx-*`: a
binding that applied nowhere) cannot be written in today's form (`deps bind` refuses a selector that applies
nowhere); it is left as it is, so it now applies to the system it names, and is reported in
`migration_reports` (`mlxm db reports`) so the user can rebind or unbind it. Rows that behave the same under
both rules (almost all: `*`, `darwin-arm64`, `linux-aarch64`, `lin*`) are not touched.

The rules are copied here, not imported: a migration must keep meaning what it meant when it was written.

Revision ID: 0013_binding_platform_selectors
Revises: 0012_model_overlays
Create Date: 2026-12-02
"""
from __future__ import annotations

import fnmatch
import logging
from datetime import datetime, timezone

import sqlalchemy as sa
from alembic import op

revision = "0013_binding_platform_selectors"
down_revision = "0012_model_overlays"
branch_labels = None
depends_on = None

log = logging.getLogger("alembic.runtime.migration")

# Every spelling of each system, as dependency_model._SYSTEMS had it when this revision was written.
_SYSTEM_SPELLINGS = {"linux": ("linux",), "darwin": ("darwin", "macos", "mac", "osx"), "win32": ("win32", "windows")}


def _system_part(selector: str | None) -> str:
    """The SYSTEM part as both rules read it: the text before the first `-`, stripped, lower case."""
    text = (selector or "*").strip().lower()
    return "*" if text == "*" else text.partition("-")[0]


def systems_before(part: str) -> set[str]:
    """The systems a SYSTEM part matched before: fnmatch on the canonical name only."""
    return {system for system in _SYSTEM_SPELLINGS if fnmatch.fnmatchcase(system, part)}


def systems_today(part: str) -> set[str]:
    """The systems a SYSTEM part matches today: fnmatch on any spelling."""
    return {system for system, names in _SYSTEM_SPELLINGS.items()
            if any(fnmatch.fnmatchcase(name, part) for name in names)}


def _today_form(systems: set[str]) -> str:
    """A SYSTEM part that matches exactly `systems` (non-empty) today: `*`, a name, or a first-letter class
    (`[lw]*`: no other spelling starts with l, d or w)."""
    if systems == set(_SYSTEM_SPELLINGS):
        return "*"
    if len(systems) == 1:
        return next(iter(systems))
    return "[" + "".join(sorted(system[0] for system in systems)) + "]*"


def migrated_selector(selector: str | None) -> str | None:
    """The selector to store instead (None: keep the row as it is, it means the same or cannot be expressed)."""
    part = _system_part(selector)
    before = systems_before(part)
    if before == systems_today(part) or not before:
        return None
    _, dash, machine = (selector or "").strip().lower().partition("-")
    return _today_form(before) + dash + machine


def upgrade() -> None:
    bind = op.get_bind()
    rows = bind.execute(sa.text("SELECT id, binding_id, platform_selector FROM dependency_bindings ORDER BY id")).all()
    now = datetime.now(timezone.utc).replace(tzinfo=None)
    for pk, binding_id, selector in rows:
        part = _system_part(selector)
        if systems_before(part) == systems_today(part):
            continue
        new = migrated_selector(selector)
        if new is not None:
            bind.execute(sa.text("UPDATE dependency_bindings SET platform_selector = :new WHERE id = :pk"),
                         {"new": new, "pk": pk})
            log.info("upgrade: binding %s: platform selector %r stored as %r (same platforms)", binding_id, selector,
                     new)
            continue
        now_matches = ", ".join(sorted(systems_today(part)))
        message = (f"this platform selector matched no system before (its system part was compared with linux, "
                   f"darwin and win32 only), so the binding applied nowhere; it now applies to {now_matches}. "
                   f"If that is wrong: mlxm deps unbind {binding_id}")
        bind.execute(sa.text("INSERT INTO migration_reports (revision, created_at, entity, entity_id, field, value, "
                             "message) VALUES (:revision, :created_at, 'dependency_bindings', :entity_id, "
                             "'platform_selector', :value, :message)"),
                     {"revision": revision, "created_at": now, "entity_id": binding_id, "value": selector,
                      "message": message})
        log.warning("upgrade: binding %s: platform_selector=%r %s", binding_id, selector, message)


def downgrade() -> None:
    # Nothing to undo: a rewritten selector matches the same systems under the old rule as the one it replaced.
    pass
