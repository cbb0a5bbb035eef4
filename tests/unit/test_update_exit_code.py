"""`mlxm update --all` with several failures: one exit code (entrypoints/cli/downloads/commands.py)."""

from __future__ import annotations

import pytest

from entrypoints.cli.downloads.commands import _update_exit_code


@pytest.mark.parametrize(("codes", "expected"), [
    ({6}, 6),  # sources failed
    ({10}, 10),  # full disk
    ({7}, 7),  # the database, for every model
    ({6, 10}, 10),  # a full disk must be freed before any retry
    ({6, 7}, 6),
])
def test_the_failures_own_code_when_they_agree_else_a_full_disk_else_a_failed_source(codes, expected):
    assert _update_exit_code(codes) == expected
