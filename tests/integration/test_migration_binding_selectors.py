"""Migration 0013: bindings stored before selectors were normalised apply where they applied before.

Before session 5 a selector's SYSTEM part was compared with `linux`, `darwin` or `win32` only (this machine's
`sys.platform`; `--platform macos` was converted first), its MACHINE part with the name as the consumer spelled
it (`--platform linux-aarch64` kept `aarch64`). Today both parts match any spelling. Rows are written at
0012 as `deps bind` stored them then (verbatim), upgraded, and checked on every platform with today's rule.
"""

from __future__ import annotations

import fnmatch

import pytest
from sqlalchemy import create_engine, text

from adapters.sqlalchemy.migrate import downgrade_database, migration_reports, upgrade_database
from domain.library.dependency_model import PlatformContext

BEFORE = "0012_model_overlays"
PLATFORMS = [f"{system}-{machine}" for system in ("linux", "darwin", "win32") for machine in ("arm64", "x86_64")]

# stored selector -> (the platforms it applied to before, the selector stored after the upgrade)
UNCHANGED = {
    "*": (set(PLATFORMS), "*"),
    "darwin-arm64": ({"darwin-arm64"}, "darwin-arm64"),
    "linux-aarch64": ({"linux-arm64"}, "linux-aarch64"),  # matched `--platform linux-aarch64`
    "Lin*": ({"linux-arm64", "linux-x86_64"}, "Lin*"),
    "*-amd64": ({"linux-x86_64", "darwin-x86_64", "win32-x86_64"}, "*-amd64"),
}
REWRITTEN = {
    # `mac`/`macos` fit `[lm]*` and `*x*` fits `osx` today: darwin would be added without the migration.
    "[lm]*-arm64": ({"linux-arm64"}, "linux-arm64"),
    "*x*": ({"linux-arm64", "linux-x86_64"}, "linux"),
    "[LWM]*": ({"linux-arm64", "linux-x86_64", "win32-arm64", "win32-x86_64"}, "[lw]*"),
}
# Applied nowhere before; today's form has no way to say so: kept as stored, and reported.
REPORTED = {"macos": "darwin", "osx-*": "darwin"}




def _matched_before(selector: str) -> set[str]:
    """The platforms a selector applied to before session 5, by that code (e17eec6, unchanged until a506edf):
    `PlatformContext.matches` against every context a consumer could make, this machine's (`sys.platform`,
    the machine renamed to arm64/x86_64) or `--platform`'s (the system converted, the machine as typed)."""
    def old_matches(system: str, machine: str) -> bool:
        text = (selector or "*").strip().lower()
        if text == "*":
            return True
        sel_system, _, sel_machine = text.partition("-")
        if not fnmatch.fnmatchcase(system, sel_system):
            return False
        return not sel_machine or fnmatch.fnmatchcase(machine, sel_machine)

    spellings = {"arm64": ("arm64", "aarch64"), "x86_64": ("x86_64", "amd64")}
    return {platform for platform in PLATFORMS
            if any(old_matches(platform.partition("-")[0], machine)
                   for machine in spellings[platform.partition("-")[2]])}


def test_the_expected_platforms_are_what_the_old_code_matched():
    for selector, (platforms, _) in {**UNCHANGED, **REWRITTEN}.items():
        assert _matched_before(selector) == platforms, selector
    for selector in REPORTED:
        assert _matched_before(selector) == set(), selector


@pytest.fixture(params=["sqlite", "postgresql"])
def url_at_0012(request, tmp_path):
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'old.db'}"
        upgrade_database(url, BEFORE)
        yield url
        return
    templates = request.getfixturevalue("postgres_templates")
    url = templates.empty_database()
    upgrade_database(url, BEFORE)
    yield url
    templates.drop(url)


def _store_old_bindings(url: str, selectors) -> None:
    engine = create_engine(url)
    try:
        with engine.begin() as connection:
            for number, selector in enumerate(selectors):
                connection.execute(text(
                    "INSERT INTO dependency_bindings (binding_id, model_id, profile_id, profile_version, "
                    "environment_kind, platform_selector, backend_key) "
                    "VALUES (:binding_id, 'tiny', 'mlx-lm', 1, 'python-venv', :selector, '*')"),
                    {"binding_id": f"b{number}", "selector": selector})
    finally:
        engine.dispose()


def _stored(url: str) -> dict[str, str]:
    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            rows = connection.execute(text("SELECT binding_id, platform_selector FROM dependency_bindings "
                                           "WHERE binding_id LIKE 'b%'")).all()
    finally:
        engine.dispose()
    return dict(rows)


def _applies_to(selector: str) -> set[str]:
    return {platform for platform in PLATFORMS if PlatformContext.parse(platform).matches(selector)}


def test_old_bindings_apply_where_they_applied_before_or_are_reported(url_at_0012):
    old = [*UNCHANGED, *REWRITTEN, *REPORTED]
    _store_old_bindings(url_at_0012, old)

    report = upgrade_database(url_at_0012)

    stored = _stored(url_at_0012)
    after = {selector: stored[f"b{number}"] for number, selector in enumerate(old)}
    for selector, (platforms, expected) in {**UNCHANGED, **REWRITTEN}.items():
        assert after[selector] == expected, selector
        assert _applies_to(after[selector]) == platforms, selector
    reports = {row["value"]: row for row in report.reports}
    assert set(reports) == set(REPORTED)
    for selector, system in REPORTED.items():
        assert after[selector] == selector  # the user's row is kept as it was
        row = reports[selector]
        assert row["entity"] == "dependency_bindings" and row["field"] == "platform_selector"
        assert row["entity_id"] == f"b{old.index(selector)}"
        assert f"applied nowhere; it now applies to {system}" in row["message"]
        assert f"mlxm deps unbind b{old.index(selector)}" in row["message"]
    assert [row["value"] for row in migration_reports(url_at_0012)] == [*REPORTED]  # `mlxm db reports`


def test_the_upgrade_changes_nothing_on_a_second_run_and_downgrades_by_one_unchanged(url_at_0012):
    _store_old_bindings(url_at_0012, [*REWRITTEN, *REPORTED])
    upgrade_database(url_at_0012)
    migrated = _stored(url_at_0012)
    assert sorted(migrated.values()) == sorted([*(new for _, new in REWRITTEN.values()), *REPORTED])
    assert not upgrade_database(url_at_0012).changed

    downgrade_database(url_at_0012, BEFORE)
    assert _stored(url_at_0012) == migrated
