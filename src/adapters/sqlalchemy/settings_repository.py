"""Key/value settings (catalog context: the persisted model selection lives here)."""

from __future__ import annotations

from sqlalchemy.orm import Session

from adapters.sqlalchemy.settings_tables import SettingRecord
from adapters.sqlalchemy.tracking import _flush, _now


class SqlAlchemySettingsRepository:
    def __init__(self, session: Session) -> None:
        self._session = session

    def get(self, key: str) -> str | None:
        record = self._session.get(SettingRecord, key)
        return record.value if record is not None else None

    def set(self, key: str, value: str) -> None:
        record = self._session.get(SettingRecord, key)
        if record is None:
            record = SettingRecord(key=key)
            self._session.add(record)
        record.value = value
        record.updated_at = _now()
        _flush(self._session)

    def save_changes(self) -> None:
        """Settings are written as they are set."""
