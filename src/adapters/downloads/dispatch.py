"""`SourceDispatchingDownloader`: one `ModelDownloader` that hands each call to the adapter of `source.kind`."""

from __future__ import annotations

from pathlib import Path

from application.errors import SourceNotConfigured
from application.downloads.ports import ModelDownloader, ProgressCallback, RemoteFile, RemoteListing
from domain.catalog.model import ModelSource
from domain.enums import SourceKind


class SourceDispatchingDownloader:
    def __init__(self, by_kind: dict[SourceKind, ModelDownloader]) -> None:
        self._by_kind = {SourceKind(k): v for k, v in by_kind.items()}

    def _for(self, source: ModelSource) -> ModelDownloader:
        adapter = self._by_kind.get(source.kind)
        if adapter is None:
            raise SourceNotConfigured(f"no downloader for source kind {source.kind.value}")
        return adapter

    def list_files(self, source: ModelSource, revision: str | None, staging: Path) -> RemoteListing:
        return self._for(source).list_files(source, revision, staging)

    def download_from_source(self, source: ModelSource, file: RemoteFile, progress: ProgressCallback) -> Path:
        return self._for(source).download_from_source(source, file, progress)
