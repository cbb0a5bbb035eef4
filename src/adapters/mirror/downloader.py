"""`HttpMirrorDownloader`: plain HTTP mirrors at `MLX_MIRROR_BASE_URL/{repo}/{path}?revision=sha`.

A mirror serves bytes only; it has no listing API, so `list_files` raises a (non-fatal)
`SourceError` and the pull takes its listing from another source or from the catalog.
Unset `MLX_MIRROR_BASE_URL` -> `SourceNotConfigured`, and the failover moves on.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Callable
from urllib.parse import quote

from application.errors import SourceError, SourceNotConfigured
from application.downloads.ports import ProgressCallback, RemoteFile, RemoteListing
from domain.catalog.model import ModelSource
from domain.enums import SourceKind

from adapters.downloads.http_transfer import HttpxHttp, StdlibHttp, fetch_resumable, proxy_configured


class HttpMirrorDownloader:
    kind = SourceKind.HTTP_MIRROR

    def __init__(
        self,
        base_url: Callable[[], str | None] | str | None = None,
        offline: Callable[[], bool] | bool = False,
        retries: int = 3,
        backoff_seconds: float = 0.2,
        timeout_seconds: float = 60.0,
    ) -> None:
        self._base_url = base_url
        self._offline = offline
        self._retries = retries
        self._backoff = backoff_seconds
        self._timeout = timeout_seconds
        self._client = None
        self._stdlib = StdlibHttp(timeout_seconds=timeout_seconds)

    def base_url(self) -> str:
        value = self._base_url() if callable(self._base_url) else self._base_url
        value = value or os.environ.get("MLX_MIRROR_BASE_URL")
        if not value:
            raise SourceNotConfigured("MLX_MIRROR_BASE_URL is not set")
        return value.rstrip("/")

    def _check(self, source: ModelSource) -> str:
        if source.kind is not SourceKind.HTTP_MIRROR:
            raise SourceError(f"{source.label}: not an HTTP mirror source")
        base = self.base_url()
        offline = self._offline() if callable(self._offline) else self._offline
        if offline:
            raise SourceError("offline mode is on: the mirror is not contacted")
        return base

    def url_for(self, source: ModelSource, file: RemoteFile) -> str:
        return f"{self.base_url()}/{source.value}/{quote(file.path)}?revision={quote(file.revision)}"

    def list_files(self, source: ModelSource, revision: str | None, staging: Path) -> RemoteListing:
        self._check(source)
        raise SourceError("a plain HTTP mirror cannot list files")

    def download_from_source(self, source: ModelSource, file: RemoteFile, progress: ProgressCallback) -> Path:
        self._check(source)
        url = self.url_for(source, file)
        return fetch_resumable(
            self._transport(url), url, file.dest, label=file.path, expected_size=file.size,
            progress=progress, retries=self._retries, backoff_seconds=self._backoff,
        )

    def _transport(self, url: str):
        if not proxy_configured(url):
            return self._stdlib
        import httpx

        if self._client is None:
            self._client = httpx.Client(timeout=httpx.Timeout(self._timeout), follow_redirects=True)
        return HttpxHttp(self._client, (httpx.TransportError, OSError))
