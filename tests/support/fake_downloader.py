"""An in-memory `ModelDownloader` for unit tests of the pull use case.

Repos live in a dict; each source kind/value pair serves them. It honours the port's
contract: resolve a revision to a 40-hex sha, list files with sizes and sha256s, append
to the partial file (resume), call progress per chunk, raise `SourceError` subclasses.
Knobs: `fail[source_label] = exception`, `corrupt_paths`, `block_paths` (an Event to wait on),
`served` (bytes sent per path) and `listings` (count of list_files calls).
With `store=` (an `InMemoryModelStore`) the partial files are written into that store, as the real
downloader writes them on the filesystem the `FilesystemModelStore` manages; without it, real files.
"""

from __future__ import annotations

import hashlib
import threading
from pathlib import Path

from application.errors import SourceError, SourceNotConfigured
from application.downloads.ports import ProgressCallback, RemoteFile, RemoteListing
from domain.catalog.model import ModelSource
from domain.enums import SourceKind


class FakeDownloader:
    def __init__(self, chunk_size: int = 1024, lfs_threshold: int = 64, store=None) -> None:
        self.store = store
        self.repos: dict[str, dict[str, dict[str, bytes]]] = {}  # repo -> sha -> files
        self.refs: dict[str, dict[str, str]] = {}  # repo -> ref -> sha
        self.fail: dict[str, Exception] = {}  # source label (or label + ":" + path) -> error
        self.corrupt_paths: set[str] = set()
        self.block_paths: dict[str, threading.Event] = {}
        self.started: dict[str, threading.Event] = {}
        self.mirror_configured = True
        self.served: dict[str, int] = {}
        self.listings = 0
        self.chunk_size = chunk_size
        self.lfs_threshold = lfs_threshold
        self._lock = threading.Lock()
        self._counter = 0

    def add_repo(self, repo_id: str, files: dict[str, bytes], ref: str = "main") -> str:
        with self._lock:
            self._counter += 1
            sha = hashlib.sha1(f"{repo_id}:{self._counter}".encode()).hexdigest()
        self.repos.setdefault(repo_id, {})[sha] = dict(files)
        self.refs.setdefault(repo_id, {})[ref] = sha
        return sha

    # -- the port ------------------------------------------------------------------------
    def _check(self, source: ModelSource, path: str | None = None) -> None:
        if source.kind is SourceKind.HTTP_MIRROR and not self.mirror_configured:
            raise SourceNotConfigured("MLX_MIRROR_BASE_URL is not set")
        for key in (source.label, f"{source.label}:{path}" if path else None):
            if key and key in self.fail:
                raise self.fail[key]

    def list_files(self, source: ModelSource, revision: str | None, staging: Path) -> RemoteListing:
        self._check(source)
        self.listings += 1
        if source.kind is SourceKind.HTTP_MIRROR:
            raise SourceError(f"{source.label}: a plain HTTP mirror cannot list files")
        commits = self.repos.get(source.value)
        if commits is None:
            raise SourceError(f"{source.label}: repository not found")
        rev = revision or "main"
        sha = self.refs[source.value].get(rev, rev)
        if sha not in commits:
            raise SourceError(f"{source.label}: revision {rev!r} not found")
        files = tuple(
            RemoteFile(path, len(data), hashlib.sha256(data).hexdigest() if len(data) >= self.lfs_threshold else None,
                       sha, staging / (path + ".part"))
            for path, data in sorted(commits[sha].items())
        )
        return RemoteListing(source.value, sha, files)

    def download_from_source(self, source: ModelSource, file: RemoteFile, progress: ProgressCallback) -> Path:
        self._check(source, file.path)
        try:
            data = self.repos[source.value][file.revision][file.path]
        except KeyError:
            raise SourceError(f"{source.label}: {file.path} not found at {file.revision}") from None
        if file.path in self.corrupt_paths:
            data = bytes(b ^ 0xFF for b in data)
        if self.store is not None:
            return self._download_into_store(file, data, progress)
        file.dest.parent.mkdir(parents=True, exist_ok=True)
        have = file.dest.stat().st_size if file.dest.exists() else 0
        if have > len(data):
            file.dest.unlink()
            have = 0
        progress(file.path, have, len(data))
        if file.path in self.started:
            self.started[file.path].set()
        with open(file.dest, "ab") as out:
            pos = have
            while pos < len(data):
                gate = self.block_paths.get(file.path)
                if gate is not None and pos >= len(data) // 2:
                    while not gate.wait(0.01):
                        progress(file.path, pos, len(data))  # lets a pause/cancel request stop us
                chunk = data[pos : pos + self.chunk_size]
                out.write(chunk)
                out.flush()
                pos += len(chunk)
                with self._lock:
                    self.served[file.path] = self.served.get(file.path, 0) + len(chunk)
                progress(file.path, pos, len(data))
        return file.dest

    def _download_into_store(self, file: RemoteFile, data: bytes, progress: ProgressCallback) -> Path:
        store = self.store
        store.mkdir(file.dest.parent, parents=True, exist_ok=True)
        have = store.file_size(file.dest) if store.exists(file.dest) else 0
        if have > len(data):
            store.unlink(file.dest)
            have = 0
        progress(file.path, have, len(data))
        if file.path in self.started:
            self.started[file.path].set()
        if have == len(data):
            store.append_file(file.dest, b"")  # an empty file exists after a fetch, like open("ab")
        pos = have
        while pos < len(data):
            gate = self.block_paths.get(file.path)
            if gate is not None and pos >= len(data) // 2:
                while not gate.wait(0.01):
                    progress(file.path, pos, len(data))  # lets a pause/cancel request stop us
            chunk = data[pos : pos + self.chunk_size]
            store.append_file(file.dest, chunk)
            pos += len(chunk)
            with self._lock:
                self.served[file.path] = self.served.get(file.path, 0) + len(chunk)
            progress(file.path, pos, len(data))
        return file.dest
