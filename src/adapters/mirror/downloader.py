"""`HttpMirrorDownloader`: plain HTTP mirrors at `MLX_MIRROR_BASE_URL/{repo}/{path}?revision=sha`.

A mirror has no listing API. It may publish, beside a repo's files (the distribution layout):

* `{base}/{repo}/manifest.json[?revision=sha]`: `{"repo_id", "revision", "files": [{"path", "size", "sha256"}]}`;
* `{base}/{repo}/checksums.sha256?revision=sha`: `sha256sum` lines (`<hex>  <path>`), no sizes.

`list_files` reads them (the manifest first); with neither it raises a (non-fatal) `SourceError`
and the pull takes its listing from another source or from the catalog. The download service
also uses them to fill in sha256s a hub listing lacks. Unset `MLX_MIRROR_BASE_URL` ->
`SourceNotConfigured`, and the failover moves on.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Callable
from urllib.parse import quote

from application.errors import SourceError, SourceNotConfigured
from application.downloads.ports import ProgressCallback, RemoteFile, RemoteListing
from domain.catalog.model import ModelSource
from domain.library.layout import is_commit_sha
from domain.enums import SourceKind

from adapters.downloads.http_transfer import fetch_resumable
from adapters.downloads.http_transports import HttpxHttp, StdlibHttp, checked_base_url, proxy_configured


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
        return checked_base_url(value.rstrip("/"), what="mirror", setting="MLX_MIRROR_BASE_URL",
                                example="https://mirror.example/models")

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
        base = self._check(source)
        query = f"?revision={quote(revision)}" if revision else ""
        manifest = self._small_file(f"{base}/{source.value}/manifest.json{query}")
        if manifest is not None:
            return _listing_from_manifest(source.value, revision, manifest, staging)
        if revision and is_commit_sha(revision):
            checksums = self._small_file(f"{base}/{source.value}/checksums.sha256{query}")
            if checksums is not None:
                return _listing_from_checksums(source.value, revision, checksums, staging)
        raise SourceError("the mirror publishes no manifest.json (or checksums.sha256 for a pinned revision)")

    def _small_file(self, url: str) -> bytes | None:
        """A listing file's bytes; None when the mirror has none (404). Capped: it is metadata."""
        transport = self._transport(url)
        try:
            with transport.get(url, {"Accept-Encoding": "gzip"}) as response:
                if response.status == 404:
                    return None
                if response.status != 200:
                    raise SourceError(f"mirror answered HTTP {response.status} for {url}")
                body = bytearray()
                for chunk in response.chunks():
                    body += chunk
                    if len(body) > _LISTING_MAX_BYTES:
                        raise SourceError(f"{url}: listing larger than {_LISTING_MAX_BYTES} bytes")
                return bytes(body)
        except SourceError:
            raise
        except transport.errors as exc:
            raise SourceError(f"cannot reach the mirror: {exc}") from exc

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


_LISTING_MAX_BYTES = 4 * 1024 * 1024
_CHECKSUM_LINE = re.compile(r"^([0-9a-fA-F]{64}) [ *](.+)$")


def _listing_from_manifest(repo: str, revision: str | None, raw: bytes, staging: Path) -> RemoteListing:
    try:
        data = json.loads(raw.decode("utf-8"))
        sha = data["revision"]
        entries = [(f["path"], f.get("size"), f.get("sha256")) for f in data["files"]]
    except (UnicodeDecodeError, ValueError, KeyError, TypeError) as exc:
        raise SourceError(f"the mirror's manifest.json is malformed ({type(exc).__name__}: {exc})") from None
    if not isinstance(sha, str) or not is_commit_sha(sha):
        raise SourceError("the mirror's manifest.json names no 40-hex commit revision")
    if revision and is_commit_sha(revision) and revision.lower() != sha.lower():
        raise SourceError(f"the mirror's manifest.json is for revision {sha[:12]}, not {revision[:12]}")
    files = []
    for path, size, sha256 in entries:
        if not isinstance(path, str) or (size is not None and not isinstance(size, int)) or (
                sha256 is not None and not re.fullmatch(r"[0-9a-fA-F]{64}", str(sha256))):
            raise SourceError(f"the mirror's manifest.json has a malformed entry for {str(path)[:80]!r}")
        files.append(RemoteFile(path, size, sha256.lower() if sha256 else None, sha, staging / (path + ".part")))
    return RemoteListing(repo, sha, tuple(sorted(files, key=lambda f: f.path)))


def _listing_from_checksums(repo: str, revision: str, raw: bytes, staging: Path) -> RemoteListing:
    files = []
    for line in raw.decode("utf-8", "replace").splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        match = _CHECKSUM_LINE.match(line.strip())
        if match is None:
            raise SourceError(f"the mirror's checksums.sha256 has a malformed line: {line[:80]!r}")
        digest, path = match.groups()
        files.append(RemoteFile(path, None, digest.lower(), revision, staging / (path + ".part")))
    return RemoteListing(repo, revision, tuple(sorted(files, key=lambda f: f.path)))
