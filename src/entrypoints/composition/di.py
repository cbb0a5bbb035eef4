"""dependency-injector, imported without the optional framework integrations mlxm never uses.

At import, dependency-injector probes for FastAPI, fast-depends, Starlette and Werkzeug (markers for its
`wiring` module), PyYAML (`Configuration.from_yaml`) and pydantic(-settings) (`from_pydantic`). mlxm uses
none of them: the container is resolved explicitly, never wired, and settings are our own `EnvSettings`.
FastAPI is installed for the HTTP server, so the probe alone cost every `mlxm` command ~180 ms of
importing FastAPI and building its OpenAPI pydantic models (issue 19). While dependency-injector loads,
a finder reports those packages as absent (its probes catch ImportError); it is removed right after,
so the server imports FastAPI normally. A package already imported is left alone.
"""

from __future__ import annotations

import sys
from importlib.abc import MetaPathFinder

# Probed by dependency_injector.providers / .containers / .wiring with `try: import ... except ImportError`.
_UNUSED_INTEGRATIONS = frozenset(
    {"fastapi", "fast_depends", "starlette", "werkzeug", "yaml", "pydantic_settings", "pydantic"}
)


class _Absent(MetaPathFinder):
    def __init__(self, names: frozenset[str]) -> None:
        self._names = names

    def find_spec(self, fullname, path, target=None):
        if fullname.partition(".")[0] in self._names:
            raise ModuleNotFoundError(f"No module named {fullname!r}", name=fullname)
        return None


def _import_dependency_injector():
    finder = _Absent(frozenset(name for name in _UNUSED_INTEGRATIONS if name not in sys.modules))
    sys.meta_path.insert(0, finder)
    try:
        from dependency_injector import containers, providers
    finally:
        sys.meta_path.remove(finder)
    return containers, providers


containers, providers = _import_dependency_injector()
