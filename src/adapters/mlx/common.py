"""Small MLX helpers shared by the MLX adapters. MLX is imported inside the functions."""

from __future__ import annotations

import gc
import json
from pathlib import Path
from typing import Any


def weights_nbytes(module: Any) -> int:
    """A model's own size: the bytes of its parameter arrays (never process-wide memory)."""
    import mlx.core as mx
    from mlx.utils import tree_flatten

    parameters = module.parameters() if hasattr(module, "parameters") else module
    return int(sum(v.nbytes for _, v in tree_flatten(parameters) if isinstance(v, mx.array)))


def free_buffer_cache() -> None:
    """Collect dropped arrays and return MLX's cached buffers to the system.

    `mx.clear_cache()` exists on every backend (CPU included); the Metal-only spelling is a
    fallback for older MLX versions, guarded so the code stays portable.
    """
    import mlx.core as mx

    gc.collect()
    if hasattr(mx, "clear_cache"):
        mx.clear_cache()
        return
    metal = getattr(mx, "metal", None)
    if metal is not None and getattr(metal, "is_available", lambda: False)():
        metal.clear_cache()  # pragma: no cover - old MLX on macOS only


def read_config(path: Path) -> dict:
    config = Path(path) / "config.json"
    if not config.is_file():
        return {}
    try:
        return json.loads(config.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
