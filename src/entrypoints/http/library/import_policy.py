"""Which server-side paths `POST /api/models/import` may read (`MLX_MANAGER_ALLOWED_MODEL_DIRS`).

The route reads files on the server's machine for whoever calls it, so it is confined to the listed
folders. With none listed, HTTP import is off unless auth is on and the caller holds an admin key.
"""

from __future__ import annotations

import os

from starlette.requests import Request

from application.errors import Forbidden
from entrypoints.http.auth import auth_required, reached_from_outside


def check_import_path(request: Request, path: str) -> None:
    """Raise Forbidden (403) when the caller may not import `path` over HTTP."""
    settings = request.app.state.container.settings()
    allowed = settings.manager.allowed_model_dirs
    if not allowed:
        principal = request.scope.get("state", {}).get("principal")
        auth_on = auth_required(settings) or reached_from_outside(request.scope)
        if auth_on and principal is not None and principal.is_admin:
            return
        raise Forbidden(
            "import over HTTP is off: set MLX_MANAGER_ALLOWED_MODEL_DIRS to the folders it may read "
            "(or turn auth on and use an admin key); `mlxm import` on the server's machine always works"
        )
    # realpath: a symlink or `..` inside an allowed folder must not reach outside it.
    target = os.path.realpath(os.path.expanduser(path))
    for folder in allowed:
        root = os.path.realpath(folder)
        if target == root or target.startswith(root.rstrip(os.sep) + os.sep):
            return
    raise Forbidden(
        f"{path} is outside the folders HTTP import may read (MLX_MANAGER_ALLOWED_MODEL_DIRS: "
        f"{', '.join(str(folder) for folder in allowed)})"
    )
