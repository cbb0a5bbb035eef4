"""DownloadRepository contract."""

from __future__ import annotations

from datetime import datetime, timezone

from domain.downloads.model import Download
from domain.enums import DownloadStatus

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=timezone.utc)


def test_round_trip_with_every_value(uow_factory):
    download = Download("qwen3-4b", status=DownloadStatus.DOWNLOADING, total_bytes=5_000_000_000,
                        downloaded_bytes=3_000_000_000, started_at=T0, revision="r1", source="huggingface_repo",
                        files=["config.json", "model.safetensors"])
    with uow_factory() as uow:
        added = uow.downloads.add(download)
        uow.commit()
    with uow_factory() as uow:
        loaded = uow.downloads.get(added.id)
    assert loaded == Download("qwen3-4b", status=DownloadStatus.DOWNLOADING, total_bytes=5_000_000_000,
                              downloaded_bytes=3_000_000_000, started_at=T0, revision="r1",
                              source="huggingface_repo", files=["config.json", "model.safetensors"], id=added.id)


def test_latest_for_and_list_by_status(uow_factory):
    with uow_factory() as uow:
        first = uow.downloads.add(Download("a", status=DownloadStatus.FAILED, error="boom", started_at=T0))
        uow.downloads.add(Download("b", status=DownloadStatus.PAUSED, started_at=T0))
        latest = uow.downloads.add(Download("a", status=DownloadStatus.PENDING, started_at=T0))
        uow.commit()
    with uow_factory() as uow:
        assert uow.downloads.latest_for("a").id == latest.id
        assert uow.downloads.latest_for("zzz") is None
        assert uow.downloads.get(9999) is None
        assert [d.id for d in uow.downloads.list()] == sorted([first.id, latest.id, first.id + 1])
        assert [d.model_id for d in uow.downloads.list([DownloadStatus.PAUSED, DownloadStatus.PENDING])] == ["b", "a"]
        assert uow.downloads.list([DownloadStatus.COMPLETED]) == []
        assert uow.downloads.get(first.id).error == "boom"


def test_transition_of_a_loaded_download_is_saved_by_commit(uow_factory):
    with uow_factory() as uow:
        download = uow.downloads.add(Download("a", started_at=T0, total_bytes=10))
        uow.commit()
    with uow_factory() as uow:
        loaded = uow.downloads.get(download.id)
        loaded.transition(DownloadStatus.DOWNLOADING)
        loaded.transition(DownloadStatus.COMPLETED, now=T0)
        uow.commit()
    with uow_factory() as uow:
        done = uow.downloads.get(download.id)
    assert done.status is DownloadStatus.COMPLETED
    assert done.completed_at == T0
    assert done.downloaded_bytes == 10
