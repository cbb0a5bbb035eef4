"""Ports of the profiles context."""

from __future__ import annotations

from typing import Protocol

from domain.profiles.model import ExecutionProfile


class ProfileRepository(Protocol):
    def add(self, profile: ExecutionProfile) -> ExecutionProfile: ...
    def get(self, name: str) -> ExecutionProfile | None: ...
    def list(self) -> list[ExecutionProfile]: ...
    def remove(self, name: str) -> None: ...
