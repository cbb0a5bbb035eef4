"""What a `BatchEngine`'s thread holds between iterations (see `adapters.mlx.engine`)."""

from __future__ import annotations

from collections import deque
from typing import Any

from adapters.mlx.shared_prefill import SharedPrefill
from adapters.mlx.solo import Solo


class EngineState:
    """What the engine thread holds: at most one solo sequence, or a batch, plus the queue."""

    def __init__(self) -> None:
        self.solo: Solo | None = None
        self.generator = None  # mlx-lm BatchGenerator, made on first need
        self.active: dict[int, Any] = {}
        self.waiting: deque[Any] = deque()
        self.prefills: list[SharedPrefill] = []  # same-prompt groups prefilling once, before joining the batch

    @property
    def busy(self) -> bool:
        return self.solo is not None or bool(self.active) or bool(self.waiting) or bool(self.prefills)

    def requests(self) -> list[Any]:
        solo = [self.solo.request] if self.solo is not None else []
        shared = [r for prefill in self.prefills for r in prefill.requests]
        return solo + list(self.active.values()) + list(self.waiting) + shared

    def reset(self) -> None:
        self.solo = None
        self.prefills.clear()
        self.active.clear()
        self.waiting.clear()
        if self.generator is not None:
            self.generator.close()
            self.generator = None
