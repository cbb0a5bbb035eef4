"""Whether `mlxm service install` set up a login service for this home: what `launchd_installed`
on profiles reports (for `auto_start` profiles: their models load when that service starts)."""

from __future__ import annotations

import os
from pathlib import Path


def serves_this_home(home: Path) -> bool:
    """The service file of this platform exists and runs `mlxm serve` with this MLX_MANAGER_HOME.

    Read from the file only (no launchctl/systemctl call): cheap enough for every profile response.
    """
    from adapters.system.login_service import LoginService, current_platform

    platform = current_platform()
    if platform not in ("macos", "linux"):
        return False
    try:
        status = LoginService(platform, Path.home()).status(ask=False)
        served = status.environment.get("MLX_MANAGER_HOME") or status.home
    except (OSError, ValueError, KeyError):  # unreadable or not ours: not a service for this home
        return False
    return bool(status.installed and served) and os.path.realpath(served) == os.path.realpath(home)
