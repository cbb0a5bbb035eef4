"""Lazy references for the composition root.

The container names every adapter and use case, but a command should import only the ones it
resolves: `mlxm list` must not pay for the HF client, MLX or the audit writer. A `LazyCallable`
imports its target on first call; dependency-injector only needs the provider's target to be callable.
"""

from __future__ import annotations

import importlib
import threading
from typing import Any

_import_lock = threading.Lock()


class LazyCallable:
    """`module:attribute`, imported when first called (or resolved)."""

    __slots__ = ("_module", "_attribute", "_target")

    def __init__(self, module: str, attribute: str) -> None:
        self._module = module
        self._attribute = attribute
        self._target: Any = None

    def resolve(self) -> Any:
        if self._target is None:
            with _import_lock:  # server worker threads may resolve the same provider at once
                if self._target is None:
                    self._target = getattr(importlib.import_module(self._module), self._attribute)
        return self._target

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.resolve()(*args, **kwargs)

    def __repr__(self) -> str:
        return f"<lazy {self._module}:{self._attribute}>"


class LazyModule:
    """A module whose attributes are `LazyCallable`s: `wiring.make_x` imports `wiring` at the first call."""

    def __init__(self, module: str) -> None:
        self._module = module

    def __getattr__(self, attribute: str) -> LazyCallable:
        if attribute.startswith("__"):
            raise AttributeError(attribute)
        return LazyCallable(self._module, attribute)


def lazy(path: str) -> LazyCallable:
    """`lazy("package.module:Name")`."""
    module, _, attribute = path.partition(":")
    return LazyCallable(module, attribute)
