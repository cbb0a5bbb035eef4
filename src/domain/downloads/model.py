"""The download lifecycle and its allowed transitions."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from domain.enums import DownloadStatus as S
from domain.errors import IllegalTransition

ALLOWED_TRANSITIONS: dict[S, frozenset[S]] = {
    S.PENDING: frozenset({S.STARTING, S.DOWNLOADING, S.PAUSED, S.CANCELLED, S.FAILED}),
    S.STARTING: frozenset({S.DOWNLOADING, S.PAUSED, S.CANCELLED, S.FAILED, S.COMPLETED}),
    S.DOWNLOADING: frozenset({S.PAUSED, S.CANCELLED, S.FAILED, S.COMPLETED}),
    S.PAUSED: frozenset({S.PENDING, S.STARTING, S.DOWNLOADING, S.CANCELLED, S.FAILED}),
    S.FAILED: frozenset({S.PENDING}),
    S.CANCELLED: frozenset({S.PENDING}),
    S.COMPLETED: frozenset(),
}

ACTIVE_STATUSES = frozenset({S.PENDING, S.STARTING, S.DOWNLOADING})


def can_transition(current: S, target: S) -> bool:
    return target in ALLOWED_TRANSITIONS[S(current)]


@dataclass
class Download:
    model_id: str
    status: S = S.PENDING
    total_bytes: int | None = None
    downloaded_bytes: int = 0
    error: str | None = None
    started_at: datetime | None = None
    completed_at: datetime | None = None
    revision: str | None = None
    source: str | None = None
    id: int | None = None
    speed_bps: float | None = None
    files: list[str] = field(default_factory=list)

    def transition(self, target: S, *, now: datetime | None = None, error: str | None = None) -> None:
        target = S(target)
        if not can_transition(self.status, target):
            raise IllegalTransition(self.status, target)
        self.status = target
        if target is S.FAILED:
            self.error = error or self.error or "failed"
        elif target in (S.PENDING, S.DOWNLOADING):
            self.error = None
        if target is S.COMPLETED:
            self.completed_at = now
            if self.total_bytes is not None:
                self.downloaded_bytes = self.total_bytes

    @property
    def is_active(self) -> bool:
        return self.status in ACTIVE_STATUSES

    @property
    def progress(self) -> float | None:
        if not self.total_bytes:
            return None
        return min(1.0, self.downloaded_bytes / self.total_bytes)

    def reconcile_after_crash(self) -> bool:
        """A row left active by a crash becomes paused so it can be resumed."""
        if self.is_active:
            self.transition(S.PAUSED)
            return True
        return False
