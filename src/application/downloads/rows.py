"""The Download and Model rows' state after a pull stops or fails (a mixin of `DownloadService`)."""

from __future__ import annotations

from application.downloads.progress import _ActivePull
from application.downloads.targets import _failure_reason
from domain.enums import DownloadStatus


class DownloadRows:
    """Steps of `DownloadService` that write a pull's rows. A mixin, as `Transfer` and `CrossProcessStops`:
    it uses the service's units of work, clock and model store."""

    def _after_stop(self, active: _ActivePull, reason: str) -> None:
        key = active.target.key
        if reason == "cancel":  # the partial data went in `_run`, while the lock was held
            self._transition(active.download_id, DownloadStatus.CANCELLED, downloaded_bytes=0)
            self._forget_uninstalled_model(key)
        else:
            self._transition(active.download_id, DownloadStatus.PAUSED, **self._bytes_on_disk(active))
            self._set_model_status(key, DownloadStatus.PAUSED)

    def _fail(self, active: _ActivePull, exc: Exception) -> None:
        message = _failure_reason(exc)
        self._transition(active.download_id, DownloadStatus.FAILED, error=message, **self._bytes_on_disk(active))
        self._set_model_status(active.target.key, DownloadStatus.FAILED)

    def _bytes_on_disk(self, active: _ActivePull) -> dict:
        """The row's byte count after a stop: what a resume will not fetch again (not a throttled sample)."""
        revision = self.get(active.download_id).revision
        if not revision or not active.held_lock:
            return {}
        return {"downloaded_bytes": self.layout.staged_bytes(active.target.key, revision)}

    def _transition(self, download_id: int, status: DownloadStatus, *, error: str | None = None, **fields) -> None:
        with self._db_lock, self._uow_factory() as uow:
            row = uow.downloads.get(download_id)
            if row is None:
                return
            if row.status is not status:
                row.transition(status, now=self._clock.now(), error=error)
            for name, value in fields.items():
                setattr(row, name, value)
            uow.downloads.add(row)
            uow.commit()

    def _set_model_status(self, key: str, status: DownloadStatus) -> None:
        with self._db_lock, self._uow_factory() as uow:
            model = uow.models.get(key)
            if model is None or model.status is DownloadStatus.COMPLETED:
                return  # an installed model stays installed while a newer revision fails or pauses
            model.status = status
            uow.models.add(model)
            uow.commit()

    def _forget_uninstalled_model(self, key: str) -> None:
        with self._db_lock, self._uow_factory() as uow:
            model = uow.models.get(key)
            if model is not None and model.status is not DownloadStatus.COMPLETED:
                uow.models.remove(key)
                uow.commit()
