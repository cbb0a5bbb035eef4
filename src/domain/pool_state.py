"""What one host's model pool holds, as other hosts sharing the database see it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True)
class HostPoolEntry:
    host: str
    model_id: str
    model_type: str
    size_bytes: int
    loaded_at: datetime
    last_used_at: datetime
    use_count: int
    updated_at: datetime | None = None  # when the host last published its pool
