"""transformers' log, quiet while mlxm calls into it for an MLX model (loading one, templating a prompt).

Its warnings there are nothing an MLX user can act on: "PyTorch was not found", mlx-audio's model types
it does not know (`soprano`), a hub config's special token outside a (tiny) vocabulary, or a template
kwarg mlx-vlm adds itself (`enable_thinking`). Only transformers' own loggers are raised to errors, and
only inside `transformers_quiet()`: mlxm's messages, and transformers' errors, still show.
"""

from __future__ import annotations

import threading

_lock = threading.Lock()
_depth = 0  # callers inside transformers_quiet() right now, across threads
_saved_level: int | None = None


def import_transformers_logging():
    """transformers.utils.logging, imported without transformers' "PyTorch was not found" advice: mlxm runs
    on MLX, so it is noise. Only transformers' advisory warnings are off, and only while it is first imported
    (mlx-lm, mlx-audio and mlx-vlm set TRANSFORMERS_NO_ADVISORY_WARNINGS for good when they are imported first;
    here transformers can come first)."""
    import os
    import sys

    if "transformers" in sys.modules:
        from transformers.utils import logging as hf_logging

        return hf_logging
    before = os.environ.get("TRANSFORMERS_NO_ADVISORY_WARNINGS")
    os.environ["TRANSFORMERS_NO_ADVISORY_WARNINGS"] = "1"
    try:
        from transformers.utils import logging as hf_logging
    finally:
        if before is None:
            os.environ.pop("TRANSFORMERS_NO_ADVISORY_WARNINGS", None)
        else:
            os.environ["TRANSFORMERS_NO_ADVISORY_WARNINGS"] = before
    return hf_logging


class transformers_quiet:
    """transformers' verbosity at errors while any caller is inside; the level it had comes back after the last.

    Counted, not saved per caller: server threads template prompts concurrently, and a per-caller
    save/restore that overlaps would leave transformers quiet for good."""

    def __enter__(self) -> None:
        global _depth, _saved_level
        try:
            hf_logging = import_transformers_logging()
        except ImportError:  # pragma: no cover - transformers is a dependency
            self._logging = None
            return
        self._logging = hf_logging
        with _lock:
            if _depth == 0:
                _saved_level = hf_logging.get_verbosity()
                hf_logging.set_verbosity_error()
            _depth += 1

    def __exit__(self, *exc: object) -> None:
        global _depth
        if self._logging is None:
            return
        with _lock:
            _depth -= 1
            if _depth == 0 and _saved_level is not None:
                self._logging.set_verbosity(_saved_level)
