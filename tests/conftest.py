"""Suite-wide safety net: no test may touch the user's ~/.mlx-manager."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _isolated_mlx_manager_home(tmp_path_factory, monkeypatch):
    # A Container() built without settings resolves the database under MLX_MANAGER_HOME; point it
    # at a throw-away folder unless the test chose one itself.
    import os

    if "MLX_MANAGER_HOME" not in os.environ:
        monkeypatch.setenv("MLX_MANAGER_HOME", str(tmp_path_factory.mktemp("mlxm-home")))
