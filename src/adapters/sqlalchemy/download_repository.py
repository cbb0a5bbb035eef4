"""The download-row repository (downloads context)."""

from __future__ import annotations

from typing import Iterable

from sqlalchemy import select
from sqlalchemy.orm import Session

from adapters.sqlalchemy.download_tables import DownloadRecord
from adapters.sqlalchemy.tracking import _flush, _now, _Tracker
from domain.downloads.model import Download
from domain.enums import DownloadStatus


def _download_from_record(record: DownloadRecord) -> Download:
    return Download(
        model_id=record.model_id, status=DownloadStatus(record.status), total_bytes=record.total_bytes,
        downloaded_bytes=record.downloaded_bytes or 0, error=record.error, started_at=record.started_at,
        completed_at=record.completed_at, revision=record.revision, source=record.source, id=record.id,
        files=list(record.files or []),
    )


class SqlAlchemyDownloadRepository:
    def __init__(self, session: Session) -> None:
        self._session = session
        self._tracker: _Tracker[Download] = _Tracker()

    def _to_domain(self, record: DownloadRecord) -> Download:
        return self._tracker.track(record.id, _download_from_record(record))

    def add(self, download: Download) -> Download:
        record = self._session.get(DownloadRecord, download.id) if download.id is not None else None
        if record is None:
            record = DownloadRecord(id=download.id)
            self._session.add(record)
        record.model_id = download.model_id
        record.status = DownloadStatus(download.status).value
        record.total_bytes = download.total_bytes
        record.downloaded_bytes = download.downloaded_bytes
        record.error = download.error
        record.started_at = download.started_at or _now()
        record.completed_at = download.completed_at
        record.revision = download.revision
        record.source = download.source
        record.files = list(download.files)
        _flush(self._session)
        download.id = record.id
        download.started_at = record.started_at
        self._tracker.retrack(record.id, download)
        return download

    def get(self, download_id: int) -> Download | None:
        record = self._session.get(DownloadRecord, download_id)
        return self._to_domain(record) if record is not None else None

    def latest_for(self, model_id: str) -> Download | None:
        record = self._session.scalars(
            select(DownloadRecord).where(DownloadRecord.model_id == model_id).order_by(DownloadRecord.id.desc()).limit(1)
        ).first()
        return self._to_domain(record) if record is not None else None

    def list(self, statuses: Iterable[DownloadStatus] | None = None) -> list[Download]:
        statement = select(DownloadRecord).order_by(DownloadRecord.id)
        if statuses is not None:
            statement = statement.where(DownloadRecord.status.in_([DownloadStatus(s).value for s in statuses]))
        return [self._to_domain(r) for r in self._session.scalars(statement)]

    def save_changes(self) -> None:
        for download in self._tracker.changed():
            self.add(download)
