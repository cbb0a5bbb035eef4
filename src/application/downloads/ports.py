"""Ports of the downloads context: the downloader (remote listings and files) and the download rows."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Protocol

from domain.catalog.model import ModelSource
from domain.downloads.model import Download
from domain.enums import DownloadStatus


@dataclass(frozen=True)
class RemoteFile:
    """One file of a model at a pinned revision, and where its partial bytes live."""

    path: str
    size: int | None
    sha256: str | None
    revision: str
    dest: Path
    # The git blob id of a non-LFS file (sha1 of b"blob <size>\0" + bytes), when the source lists it.
    git_blob_sha1: str | None = None


@dataclass(frozen=True)
class RemoteListing:
    repo_id: str
    revision: str  # the resolved 40-hex commit sha
    files: tuple[RemoteFile, ...]


# progress(path, bytes_done_for_this_file, total_for_this_file)
ProgressCallback = Callable[[str, int, int | None], None]


class ModelDownloader(Protocol):
    def list_files(self, source: ModelSource, revision: str | None, staging: Path) -> RemoteListing:
        """Resolve `revision` to a commit and list the files with sizes and sha256s."""
        ...

    def download_from_source(self, source: ModelSource, file: RemoteFile, progress: ProgressCallback) -> Path:
        """Fetch one file into `file.dest`, resuming from bytes already there.

        Raises `SourceNotConfigured` (non-fatal) for a source kind that is not configured.
        """
        ...


class DownloadRepository(Protocol):
    def add(self, download: Download) -> Download: ...
    def get(self, download_id: int) -> Download | None: ...
    def latest_for(self, model_id: str) -> Download | None: ...
    def list(self, statuses: Iterable[DownloadStatus] | None = None) -> list[Download]: ...
