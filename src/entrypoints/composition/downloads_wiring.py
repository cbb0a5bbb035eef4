"""Builders the container uses for the download area (kept here so container.py stays declarative)."""

from __future__ import annotations

import os


def model_store(settings, engine=None):
    """The library on disk; on a database several hosts share (PostgreSQL), model locks also take a
    database advisory lock. `engine` is a callable, resolved only when a lock is first taken."""
    from adapters.filesystem.model_store import FilesystemModelStore

    shared_lock = None
    if engine is not None and _is_postgresql(settings.manager.resolved_database_url):
        from adapters.sqlalchemy.advisory_lock import PostgresAdvisoryLock

        shared_lock = PostgresAdvisoryLock(engine)
    return FilesystemModelStore(settings.manager.home, shared_lock=shared_lock)


def _is_postgresql(url: str) -> bool:
    return url.split(":", 1)[0].split("+", 1)[0] in ("postgresql", "postgres")


def source_downloader(settings):
    from adapters.downloads.dispatch import SourceDispatchingDownloader
    from adapters.huggingface import HuggingFaceDownloader
    from adapters.mirror import HttpMirrorDownloader
    from domain.enums import SourceKind

    offline = lambda: bool(settings.manager.offline)  # noqa: E731
    mirror_from_settings = settings.distribution.mirror_base_url
    return SourceDispatchingDownloader({
        SourceKind.HUGGINGFACE_REPO: HuggingFaceDownloader(offline=offline, limits=transfer_limits(settings)),
        SourceKind.HTTP_MIRROR: HttpMirrorDownloader(
            base_url=lambda: os.environ.get("MLX_MIRROR_BASE_URL") or mirror_from_settings, offline=offline),
    })


def transfer_limits(settings):
    from adapters.downloads.http_transfer import TransferLimits

    m = settings.manager
    return TransferLimits(
        connect_timeout_seconds=m.download_connect_timeout_seconds, read_timeout_seconds=m.download_read_timeout_seconds,
        stall_seconds=m.download_stall_seconds, stall_bytes=m.download_stall_bytes, retries=m.download_retries,
        backoff_seconds=m.download_backoff_seconds, receive_buffer_bytes=m.download_receive_buffer_bytes)


def download_service(uow_factory, catalog_provider, downloader, clock, layout, settings):
    from application.downloads.service import DownloadService

    return DownloadService(uow_factory, catalog_provider, downloader, clock, layout,
                           max_workers=settings.manager.download_workers,
                           default_organization=settings.manager.hf_organization)


def update_service(downloads, downloader):
    from application.downloads.updates import UpdateService

    return UpdateService(downloads, downloader)
