"""Port for remote (cloud) backends: a ModelRuntime per endpoint."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from application.ports.runtime import ModelRuntime
from domain.enums import ApiType


@dataclass(frozen=True)
class CloudEndpoint:
    api_type: ApiType
    base_url: str
    api_key: str = field(repr=False)  # never in reprs, hence never in logs or tracebacks


class CloudRuntimeFactory(Protocol):
    def __call__(self, endpoint: CloudEndpoint) -> ModelRuntime:
        """A runtime whose `generate` calls the endpoint; errors are BackendError / BackendTimeout."""
        ...
