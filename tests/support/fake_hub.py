"""A loopback Hugging Face Hub that the *real* ``huggingface_hub`` client downloads from.

Stdlib only. The hub runs a ``ThreadingHTTPServer`` on ``127.0.0.1`` (free port) in a
background thread and answers the calls the client makes (see
``/work/shared/notes/hf-hub-protocol.md``)::

    from tests.support.fake_hub import FakeHub, Fault

    with FakeHub() as hub:
        sha = hub.add_repo("org/tiny", {"config.json": b"{}", "model.safetensors": b"\\0" * 4096})
        path = snapshot_download("org/tiny", endpoint=hub.url, cache_dir=tmp_path)
        hub.inject("*.safetensors", Fault.drop_connection_after(1000, times=1))

Pass ``endpoint=hub.url`` explicitly to the client: ``HF_ENDPOINT`` is read when
``huggingface_hub`` is imported.

Endpoints
---------
* ``GET /api/models``                                     search (``search``, ``author``, ``filter``, ``sort``, ``direction``, ``limit``)
* ``GET /api/models/{repo}``                              model_info of ``main``
* ``GET /api/models/{repo}/revision/{rev}``               model_info of a revision
* ``GET /api/models/{repo}/tree/{rev}[/{dir}]``           tree listing (``recursive``; ``Link`` pagination)
* ``POST /api/models/{repo}/paths-info/{rev}``            get_paths_info
* ``GET /api/models/{repo}/refs``                         list_repo_refs
* ``HEAD|GET /{repo}/resolve/{rev}/{path}``               file metadata / bytes (Range aware)
* ``HEAD|GET /mirror/{repo}/{path}[?revision=rev]``       the same bytes as a plain HTTP mirror

Like the real Hub, ``siblings`` in model_info carry ``size``/``blobId``/``lfs`` only when
``?blobs=true`` is passed (``HfApi.model_info(..., files_metadata=True)``).

No Xet header (``X-Xet-Hash``, ``Link: rel="xet-auth"``) and no ``xetHash`` tree field is
ever sent, so ``hf-xet`` is never used by the client.
"""

from __future__ import annotations

import fnmatch
import hashlib
import json
import os
import socket
import threading
import time
from dataclasses import dataclass, field
from enum import Enum
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Iterator, Mapping, NamedTuple
from urllib.parse import parse_qs, unquote, urlsplit

__all__ = [
    "FakeHub",
    "Fault",
    "FaultKind",
    "HubFile",
    "RequestRecord",
    "corrupt",
    "drop_connection_after",
    "git_blob_sha1",
    "lfs_pointer",
    "slow",
    "status",
]

CHUNK_SIZE = 256 * 1024
_FLIP = bytes(b ^ 0xFF for b in range(256))  # translate table used by the `corrupt` fault
_HEX40 = frozenset("0123456789abcdef")


# --------------------------------------------------------------------------- hashing helpers


def git_blob_sha1(data: bytes) -> str:
    """Git blob id of ``data`` (``sha1(b"blob <len>\\0" + data)``), as the Hub uses for non-LFS files."""
    h = hashlib.sha1(b"blob %d\0" % len(data))
    h.update(data)
    return h.hexdigest()


def lfs_pointer(sha256: str, size: int) -> bytes:
    """The git-lfs pointer file that stands in the git tree for an LFS file."""
    return f"version https://git-lfs.github.com/spec/v1\noid sha256:{sha256}\nsize {size}\n".encode()


_DISK_HASH_CACHE: dict[tuple[str, int, int], tuple[str, str | None]] = {}
_DISK_HASH_LOCK = threading.Lock()


def _hash_disk_file(path: Path, *, want_git_sha1: bool) -> tuple[str, str | None]:
    """(sha256, git blob sha1 or None) of a file on disk, cached by (path, size, mtime)."""
    st = path.stat()
    key = (str(path.resolve()), st.st_size, st.st_mtime_ns)
    with _DISK_HASH_LOCK:
        cached = _DISK_HASH_CACHE.get(key)
    if cached is not None and (cached[1] is not None or not want_git_sha1):
        return cached
    sha256 = hashlib.sha256()
    sha1 = hashlib.sha1(b"blob %d\0" % st.st_size) if want_git_sha1 else None
    with open(path, "rb") as fh:
        while block := fh.read(4 * 1024 * 1024):
            sha256.update(block)
            if sha1 is not None:
                sha1.update(block)
    result = (sha256.hexdigest(), sha1.hexdigest() if sha1 is not None else None)
    with _DISK_HASH_LOCK:
        _DISK_HASH_CACHE[key] = result
    return result


# --------------------------------------------------------------------------- files, commits, repos


@dataclass(frozen=True)
class HubFile:
    """One file of one commit.

    ``data`` holds the bytes, or is ``None`` when the file is streamed from ``source`` on disk.
    ``lfs`` files are served with their sha256 as ETag and listed with ``lfs`` info in the tree.
    ``size``, ``sha256`` and ``blob_id`` (git oid shown in the tree: the blob sha1 for regular
    files, the sha1 of the LFS pointer for LFS files) are computed when not given.
    """

    path: str
    data: bytes | None
    lfs: bool
    size: int = -1
    sha256: str = ""
    blob_id: str = ""
    source: Path | None = None

    def __post_init__(self) -> None:
        if self.data is None and self.source is None:
            raise ValueError(f"HubFile {self.path!r} needs data or a source path")
        if self.data is not None:
            if self.size < 0:
                object.__setattr__(self, "size", len(self.data))
            if not self.sha256:
                object.__setattr__(self, "sha256", hashlib.sha256(self.data).hexdigest())
            if not self.blob_id:
                object.__setattr__(
                    self,
                    "blob_id",
                    git_blob_sha1(self.pointer()) if self.lfs else git_blob_sha1(self.data),
                )
        else:
            assert self.source is not None
            src = Path(self.source)
            object.__setattr__(self, "source", src)
            if self.size < 0:
                object.__setattr__(self, "size", src.stat().st_size)
            need_sha1 = not self.lfs and not self.blob_id
            if not self.sha256 or need_sha1:
                sha256, sha1 = _hash_disk_file(src, want_git_sha1=need_sha1)
                if not self.sha256:
                    object.__setattr__(self, "sha256", sha256)
                if need_sha1:
                    object.__setattr__(self, "blob_id", sha1)
            if self.lfs and not self.blob_id:
                object.__setattr__(self, "blob_id", git_blob_sha1(self.pointer()))

    @property
    def etag(self) -> str:
        """Unquoted ETag: the sha256 for LFS files, the git blob sha1 otherwise."""
        return self.sha256 if self.lfs else self.blob_id

    def pointer(self) -> bytes:
        return lfs_pointer(self.sha256, self.size)

    def iter_bytes(self, start: int = 0, end: int | None = None, chunk_size: int = CHUNK_SIZE) -> Iterator[bytes]:
        """Yield bytes ``[start, end)`` in chunks, without loading disk files into memory."""
        end = self.size if end is None else min(end, self.size)
        if self.data is not None:
            view = memoryview(self.data)
            for pos in range(start, end, chunk_size):
                yield bytes(view[pos : min(pos + chunk_size, end)])
            return
        assert self.source is not None
        with open(self.source, "rb") as fh:
            fh.seek(start)
            pos = start
            while pos < end:
                block = fh.read(min(chunk_size, end - pos))
                if not block:
                    raise OSError(f"{self.source} shrank while being served")
                pos += len(block)
                yield block

    def read(self) -> bytes:
        return self.data if self.data is not None else b"".join(self.iter_bytes())


@dataclass
class _Commit:
    sha: str
    files: dict[str, HubFile]
    created: float


@dataclass
class _Repo:
    repo_id: str
    refs: dict[str, str] = field(default_factory=dict)
    commits: dict[str, _Commit] = field(default_factory=dict)
    meta: dict[str, Any] = field(default_factory=dict)
    created: float = field(default_factory=time.time)

    def resolve(self, rev: str) -> _Commit | None:
        if rev in self.refs:
            return self.commits[self.refs[rev]]
        return self.commits.get(rev)


# --------------------------------------------------------------------------- faults


class FaultKind(str, Enum):
    DROP_CONNECTION = "drop_connection"
    CORRUPT = "corrupt"
    STATUS = "status"
    SLOW = "slow"
    EXTRA_BYTES = "extra_bytes"


@dataclass(frozen=True)
class Fault:
    """A fault to inject with :meth:`FakeHub.inject`. Build it with the class methods.

    ``times``: apply to the first ``times`` matching requests only (``None`` = every one).
    ``methods``: HTTP methods the fault applies to.
    """

    kind: FaultKind
    after_bytes: int = 0
    status_code: int = 500
    error_code: str | None = None
    bytes_per_sec: float | None = None
    delay_per_chunk: float = 0.0
    times: int | None = None
    methods: tuple[str, ...] = ("GET",)
    omit_length: bool = False

    @classmethod
    def drop_connection_after(cls, n_bytes: int, *, times: int | None = None) -> "Fault":
        """Send the headers and ``n_bytes`` of the body, then close the socket."""
        return cls(FaultKind.DROP_CONNECTION, after_bytes=int(n_bytes), times=times)

    @classmethod
    def corrupt(cls, *, times: int | None = None) -> "Fault":
        """Serve every body byte XOR 0xFF: same length, same advertised ETag/sha256, wrong content."""
        return cls(FaultKind.CORRUPT, times=times)

    @classmethod
    def status(
        cls,
        code: int,
        *,
        error_code: str | None = None,
        times: int | None = None,
        methods: tuple[str, ...] = ("GET", "HEAD", "POST"),
    ) -> "Fault":
        """Answer with HTTP ``code`` (and ``X-Error-Code: error_code`` if given) instead of the real reply."""
        return cls(FaultKind.STATUS, status_code=int(code), error_code=error_code, times=times, methods=tuple(methods))

    @classmethod
    def slow(
        cls,
        *,
        bytes_per_sec: float | None = None,
        delay_per_chunk: float = 0.0,
        times: int | None = None,
    ) -> "Fault":
        """Throttle the body to ``bytes_per_sec`` and/or sleep ``delay_per_chunk`` s before each chunk."""
        if bytes_per_sec is None and not delay_per_chunk:
            raise ValueError("slow() needs bytes_per_sec or delay_per_chunk")
        return cls(FaultKind.SLOW, bytes_per_sec=bytes_per_sec, delay_per_chunk=delay_per_chunk, times=times)


    @classmethod
    def extra_bytes(cls, n_bytes: int, *, omit_length: bool = False, times: int | None = None) -> "Fault":
        """Send the body plus ``n_bytes`` more; Content-Length counts them, or is left out (close-delimited)."""
        return cls(FaultKind.EXTRA_BYTES, after_bytes=int(n_bytes), omit_length=omit_length, times=times)


drop_connection_after = Fault.drop_connection_after
corrupt = Fault.corrupt
status = Fault.status
slow = Fault.slow


@dataclass
class _Injection:
    glob: str
    fault: Fault
    remaining: int | None
    hits: int = 0


class _Headers(dict):
    """A dict of request headers with case-insensitive lookup (keys stored lower-case)."""

    def __init__(self, items: Any = ()) -> None:
        super().__init__()
        for k, v in items:
            super().__setitem__(k.lower(), v)

    def __getitem__(self, key: str) -> str:
        return super().__getitem__(key.lower())

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and super().__contains__(key.lower())

    def get(self, key: str, default: Any = None) -> Any:  # type: ignore[override]
        return super().get(key.lower(), default)


class RequestRecord(NamedTuple):
    method: str
    path: str  # raw request target, query string included
    headers: _Headers  # case-insensitive


class _StopServing(Exception):
    pass


# --------------------------------------------------------------------------- the hub


class FakeHub:
    """A loopback Hub. See the module docstring."""

    def __init__(self, *, tree_page_size: int = 1000) -> None:
        self.url: str = ""
        self.tree_page_size = tree_page_size
        self.requests: list[RequestRecord] = []
        self.bytes_served: dict[str, int] = {}  # "org/name/path/in/repo" -> body bytes written
        self.tokens: set[str] = set()  # bearer tokens that may read gated repos
        self._repos: dict[str, _Repo] = {}
        self._injections: list[_Injection] = []
        self._lock = threading.RLock()
        self._commit_counter = 0
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()
        self._connections: set[socket.socket] = set()

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> "FakeHub":
        if self._server is not None:
            return self
        hub = self

        class Handler(_Handler):
            pass

        Handler.hub = hub
        server = _Server(("127.0.0.1", 0), Handler)
        server.daemon_threads = False  # server_close() joins handler threads: nothing leaks
        server.block_on_close = True
        self._server = server
        self._stopping.clear()
        host, port = server.server_address[:2]
        self.url = f"http://{host}:{port}"
        self._thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                                        name=f"fake-hub-{port}", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        server, thread = self._server, self._thread
        if server is None:
            return
        self._stopping.set()
        server.shutdown()
        with self._lock:
            conns = list(self._connections)
        for conn in conns:  # wake handler threads blocked on idle keep-alive sockets
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        server.server_close()
        if thread is not None:
            thread.join(timeout=5)
        self._server = None
        self._thread = None

    def __enter__(self) -> "FakeHub":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ------------------------------------------------------------------ content

    def add_repo(
        self,
        repo_id: str,
        files: Mapping[str, bytes | str | os.PathLike[str]],
        revision: str = "main",
        lfs_threshold: int = 1024,
        *,
        tags: list[str] | None = None,
        downloads: int | None = None,
        likes: int | None = None,
        library_name: str | None = None,
        pipeline_tag: str | None = None,
        gated: bool | str | None = None,
    ) -> str:
        """Create a commit holding exactly ``files`` and point ``revision`` at it. Returns its sha.

        Values are bytes (``str`` is UTF-8 encoded) or paths to stream from disk. Files of
        ``lfs_threshold`` bytes or more are LFS files. Calling again for the same repo makes a new
        commit (the whole file set is replaced); older commits stay served by their sha.
        Metadata keywords (tags, downloads, ...) update the repo's model_info/search entry.
        """
        hub_files: dict[str, HubFile] = {}
        for path, value in files.items():
            path = path.strip("/")
            if isinstance(value, (bytes, bytearray, memoryview, str)):
                data = value.encode() if isinstance(value, str) else bytes(value)
                hub_files[path] = HubFile(path, data, lfs=len(data) >= lfs_threshold)
            else:
                src = Path(value)
                hub_files[path] = HubFile(path, None, lfs=src.stat().st_size >= lfs_threshold, source=src)
        meta = {
            k: v
            for k, v in dict(
                tags=tags, downloads=downloads, likes=likes, library_name=library_name,
                pipeline_tag=pipeline_tag, gated=gated,
            ).items()
            if v is not None
        }
        return self._commit(repo_id, hub_files, revision, meta)

    def add_file_from_disk(
        self,
        repo_id: str,
        path_in_repo: str,
        disk_path: str | os.PathLike[str],
        revision: str = "main",
        *,
        lfs: bool = True,
        sha256: str | None = None,
    ) -> str:
        """New commit = current ``revision`` files + one file streamed from ``disk_path``. Returns its sha.

        ``sha256`` may be given to skip hashing a big file.
        """
        path_in_repo = path_in_repo.strip("/")
        hf = HubFile(path_in_repo, None, lfs=lfs, source=Path(disk_path), sha256=sha256 or "")
        with self._lock:
            repo = self._repos.get(repo_id)
            current = repo.resolve(revision) if repo else None
            files = dict(current.files) if current else {}
        files[path_in_repo] = hf
        return self._commit(repo_id, files, revision, {})

    def add_repo_from_dir(self, repo_id: str, root: str | os.PathLike[str], revision: str = "main",
                          lfs_threshold: int = 1024, **meta: Any) -> str:
        """Serve every file under ``root`` (streamed from disk) as one commit of ``repo_id``."""
        root = Path(root)
        files = {p.relative_to(root).as_posix(): p for p in sorted(root.rglob("*")) if p.is_file()}
        return self.add_repo(repo_id, files, revision=revision, lfs_threshold=lfs_threshold, **meta)

    def set_ref(self, repo_id: str, ref: str, sha: str) -> None:
        """Point branch/tag ``ref`` at an existing commit ``sha``."""
        with self._lock:
            repo = self._repos[repo_id]
            if sha not in repo.commits:
                raise KeyError(sha)
            repo.refs[ref] = sha

    def delete_repo(self, repo_id: str) -> None:
        with self._lock:
            self._repos.pop(repo_id, None)

    def commit_sha(self, repo_id: str, revision: str = "main") -> str:
        with self._lock:
            commit = self._repos[repo_id].resolve(revision)
            if commit is None:
                raise KeyError(revision)
            return commit.sha

    def file(self, repo_id: str, path: str, revision: str = "main") -> HubFile:
        with self._lock:
            commit = self._repos[repo_id].resolve(revision)
            if commit is None:
                raise KeyError(revision)
            return commit.files[path]

    def _commit(self, repo_id: str, files: dict[str, HubFile], revision: str, meta: dict[str, Any]) -> str:
        if not repo_id or repo_id.startswith("/") or repo_id.endswith("/"):
            raise ValueError(f"bad repo_id {repo_id!r}")
        with self._lock:
            self._commit_counter += 1
            seed = json.dumps(
                [repo_id, revision, self._commit_counter, time.time_ns(),
                 sorted((p, f.etag, f.size) for p, f in files.items())]
            )
            sha = hashlib.sha1(seed.encode()).hexdigest()
            repo = self._repos.setdefault(repo_id, _Repo(repo_id))
            repo.commits[sha] = _Commit(sha, dict(files), time.time())
            repo.refs[revision] = sha
            repo.meta.update(meta)
            return sha

    # ------------------------------------------------------------------ faults and logs

    def inject(self, path_glob: str, fault: Fault) -> None:
        """Apply ``fault`` to requests matching ``path_glob``.

        The glob is tried (fnmatch) against the file path in the repo (``model.safetensors``),
        ``org/name/path`` and the URL path (``/api/models/org/name/tree/...``); ``*`` matches all.
        Drop/corrupt/slow act on response bodies of file GETs (resolve and mirror); status faults
        act on any matching request, API calls included.
        """
        with self._lock:
            self._injections.append(_Injection(path_glob, fault, fault.times))

    def clear_faults(self) -> None:
        with self._lock:
            self._injections.clear()

    def clear_log(self) -> None:
        with self._lock:
            self.requests.clear()
            self.bytes_served.clear()

    def requests_for(self, path_substring: str, method: str | None = None) -> list[RequestRecord]:
        """Logged requests whose (unquoted) target contains ``path_substring``."""
        with self._lock:
            return [
                r for r in self.requests
                if path_substring in unquote(r.path) and (method is None or r.method == method)
            ]

    def _take_faults(self, method: str, keys: list[str], body: bool) -> list[Fault]:
        taken: list[Fault] = []
        with self._lock:
            for inj in self._injections:
                f = inj.fault
                if method not in f.methods:
                    continue
                if f.kind is not FaultKind.STATUS and not body:
                    continue
                if inj.remaining is not None and inj.remaining <= 0:
                    continue
                if not any(fnmatch.fnmatchcase(k, inj.glob) for k in keys):
                    continue
                if inj.remaining is not None:
                    inj.remaining -= 1
                inj.hits += 1
                taken.append(f)
        return taken

    def _log(self, record: RequestRecord) -> None:
        with self._lock:
            self.requests.append(record)

    def _count(self, key: str, n: int) -> None:
        with self._lock:
            self.bytes_served[key] = self.bytes_served.get(key, 0) + n

    def _find_repo(self, segments: list[str]) -> tuple[_Repo | None, str, list[str]]:
        """Split ``org/name/rest...`` (or a legacy ``name/rest...``) into repo and rest."""
        with self._lock:
            if len(segments) >= 2 and "/".join(segments[:2]) in self._repos:
                return self._repos["/".join(segments[:2])], "/".join(segments[:2]), segments[2:]
            if segments and segments[0] in self._repos:
                return self._repos[segments[0]], segments[0], segments[1:]
        repo_id = "/".join(segments[:2])
        return None, repo_id, segments[2:]

    def _repo_public_info(self, repo: _Repo, commit: _Commit, blobs: bool) -> dict[str, Any]:
        meta = repo.meta
        siblings = []
        for path in sorted(commit.files):
            f = commit.files[path]
            sib: dict[str, Any] = {"rfilename": path}
            if blobs:
                sib["blobId"] = f.blob_id
                sib["size"] = f.size
                if f.lfs:
                    sib["lfs"] = {"sha256": f.sha256, "size": f.size, "pointerSize": len(f.pointer())}
            siblings.append(sib)
        author = repo.repo_id.split("/")[0] if "/" in repo.repo_id else None
        return {
            "_id": hashlib.sha1(repo.repo_id.encode()).hexdigest()[:24],
            "id": repo.repo_id,
            "modelId": repo.repo_id,
            "author": author,
            "sha": commit.sha,
            "lastModified": _iso(commit.created),
            "createdAt": _iso(repo.created),
            "private": False,
            "gated": meta.get("gated", False),
            "disabled": False,
            "downloads": meta.get("downloads", 0),
            "likes": meta.get("likes", 0),
            "tags": list(meta.get("tags", [])),
            "library_name": meta.get("library_name"),
            "pipeline_tag": meta.get("pipeline_tag"),
            "siblings": siblings,
            "usedStorage": sum(f.size for f in commit.files.values()),
        }


def _iso(ts: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ts)) + f".{int(ts * 1000) % 1000:03d}Z"


def _is_sha(rev: str) -> bool:
    return len(rev) == 40 and set(rev) <= _HEX40


def _truthy(values: list[str] | None) -> bool:
    return bool(values) and values[-1].lower() in ("1", "true", "yes")


# --------------------------------------------------------------------------- request handler


class _Server(ThreadingHTTPServer):
    def handle_error(self, request: Any, client_address: Any) -> None:
        import sys

        exc = sys.exc_info()[1]
        if isinstance(exc, (OSError, _StopServing)):
            return  # client went away / hub stopping: not interesting
        super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    hub: FakeHub
    protocol_version = "HTTP/1.1"
    server_version = "FakeHub/1.0"
    # Headers and body go out in separate writes: without TCP_NODELAY, Nagle + the client's delayed
    # ACK stall every small keep-alive reply by ~40 ms, which the real Hub does not do.
    disable_nagle_algorithm = True

    # -- plumbing

    timeout = 60  # socket timeout: idle keep-alive / stuck clients cannot pin a thread forever

    def setup(self) -> None:
        super().setup()
        with self.hub._lock:
            self.hub._connections.add(self.connection)
        if self.hub._stopping.is_set():
            try:
                self.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            with self.hub._lock:
                self.hub._connections.discard(self.connection)

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        pass

    def handle_one_request(self) -> None:
        try:
            super().handle_one_request()
        except (ConnectionError, BrokenPipeError, _StopServing, socket.timeout):
            self.close_connection = True
        except OSError:
            self.close_connection = True

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_HEAD(self) -> None:
        self._dispatch("HEAD")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def _send(self, code: int, body: bytes = b"", headers: Mapping[str, str] | None = None,
              content_type: str = "application/json") -> None:
        self.send_response(code)
        self.send_header("Content-Type", content_type)
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD" and body:
            self.wfile.write(body)

    def _json(self, obj: Any, code: int = 200, headers: Mapping[str, str] | None = None) -> None:
        self._send(code, json.dumps(obj).encode(), headers)

    def _error(self, code: int, error_code: str | None, message: str,
               headers: Mapping[str, str] | None = None) -> None:
        h = dict(headers or {})
        if error_code:
            h["X-Error-Code"] = error_code
        h["X-Error-Message"] = message
        self._json({"error": message}, code, h)

    # -- routing

    def _dispatch(self, method: str) -> None:
        hub = self.hub
        body = b""
        if method == "POST":
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
        hub._log(RequestRecord(method, self.path, _Headers(self.headers.items())))
        split = urlsplit(self.path)
        query = parse_qs(split.query, keep_blank_values=True)
        raw_segments = [s for s in split.path.split("/") if s]
        segments = [unquote(s) for s in raw_segments]
        url_path = unquote(split.path)
        self._raw_path = split.path

        if segments[:2] == ["api", "models"]:
            self._api_models(method, segments[2:], query, url_path, body)
        elif segments[:1] == ["mirror"] and method in ("GET", "HEAD"):
            repo, repo_id, rest = hub._find_repo(segments[1:])
            rev = (query.get("revision") or ["main"])[-1]
            self._resolve(method, repo, repo_id, rev, "/".join(rest), url_path, hub_headers=False)
        elif len(segments) >= 3 and method in ("GET", "HEAD") and "resolve" in segments[1:3]:
            repo, repo_id, rest = hub._find_repo(segments)
            if not rest or rest[0] != "resolve" or len(rest) < 3:
                self._error(404, "RepoNotFound", f"Repository {repo_id} not found")
                return
            self._resolve(method, repo, repo_id, rest[1], "/".join(rest[2:]), url_path, hub_headers=True)
        else:
            if self._status_fault(method, [url_path]):
                return
            self._error(404, None, f"no route for {method} {split.path}")

    def _status_fault(self, method: str, keys: list[str], headers: Mapping[str, str] | None = None) -> bool:
        for f in self.hub._take_faults(method, keys, body=False):
            if f.kind is FaultKind.STATUS:
                self._error(f.status_code, f.error_code, f"injected fault {f.status_code}", headers)
                return True
        return False

    def _api_models(self, method: str, segs: list[str], query: dict[str, list[str]], url_path: str,
                    body: bytes) -> None:
        hub = self.hub
        if self._status_fault(method, [url_path]):
            return
        if not segs:
            if method != "GET":
                self._error(405, None, "method not allowed")
                return
            self._search(query, url_path)
            return
        repo, repo_id, rest = hub._find_repo(segs)
        if repo is None:
            self._error(404, "RepoNotFound", f"Repository {repo_id} not found")
            return
        blobs = _truthy(query.get("blobs"))
        if method == "GET" and (not rest or (rest[0] == "revision" and len(rest) >= 2)):
            rev = "/".join(rest[1:]) if rest else "main"
            with hub._lock:
                commit = repo.resolve(rev)
                info = hub._repo_public_info(repo, commit, blobs) if commit is not None else None
            if info is None:
                self._error(404, "RevisionNotFound", f"Invalid rev id: {rev}")
            else:
                self._json(info)
        elif method == "GET" and rest[0] == "tree" and len(rest) >= 2:
            self._tree(repo, rest[1], "/".join(rest[2:]), query, url_path)
        elif method == "POST" and rest[0] == "paths-info" and len(rest) >= 2:
            self._paths_info(repo, rest[1], body)
        elif method == "GET" and rest == ["refs"]:
            with hub._lock:
                refs = sorted(repo.refs.items())
            self._json({
                "branches": [{"name": n, "ref": f"refs/heads/{n}", "targetCommit": sha} for n, sha in refs],
                "tags": [],
                "converts": [],
                "pullRequests": [],
            })
        else:
            self._error(404, None, f"no route for {method} {url_path}")

    def _search(self, query: dict[str, list[str]], url_path: str) -> None:
        hub = self.hub
        search = (query.get("search") or [""])[-1].lower()
        author = (query.get("author") or [""])[-1]
        filters = [f for f in query.get("filter", []) if f]
        pipeline_tag = (query.get("pipeline_tag") or [""])[-1]
        # `expand` replaces the default fields (id and _id always come back), as the real hub does.
        expand = [e for e in query.get("expand", []) if e]
        sort = (query.get("sort") or [""])[-1]
        direction = (query.get("direction") or ["-1"])[-1]
        limit_raw = (query.get("limit") or [""])[-1]
        limit = int(limit_raw) if limit_raw.isdigit() else None
        results = []
        with hub._lock:
            for repo in hub._repos.values():
                commit = repo.resolve("main") or next(iter(repo.commits.values()), None)
                if commit is None:
                    continue
                info = hub._repo_public_info(repo, commit, blobs=False)
                if search and search not in repo.repo_id.lower():
                    continue
                if author and info["author"] != author:
                    continue
                labels = set(info["tags"]) | {info["library_name"], info["pipeline_tag"]}
                if any(f not in labels for f in filters):
                    continue
                if pipeline_tag and info["pipeline_tag"] != pipeline_tag:
                    continue
                if "full" not in query:
                    info.pop("siblings")
                results.append(info)
        if sort in ("downloads", "likes", "lastModified", "createdAt", "id"):
            results.sort(key=lambda i: (i[sort], i["id"]), reverse=(direction == "-1" and sort != "id"))
        else:
            results.sort(key=lambda i: i["id"])
        if limit is not None:
            results = results[:limit]
        if expand:
            results = [{k: v for k, v in info.items() if k in {"id", "_id", *expand}} for info in results]
        self._json(results)

    def _tree(self, repo: _Repo, rev: str, prefix: str, query: dict[str, list[str]], url_path: str) -> None:
        with self.hub._lock:
            commit = repo.resolve(rev)
        if commit is None:
            self._error(404, "RevisionNotFound", f"Invalid rev id: {rev}")
            return
        recursive = _truthy(query.get("recursive"))
        prefix = prefix.strip("/")
        entries = _tree_entries(commit, prefix, recursive)
        if entries is None:
            self._error(404, "EntryNotFound", f"{prefix} does not exist on {rev}",
                        {"X-Repo-Commit": commit.sha})
            return
        cursor_raw = (query.get("cursor") or ["0"])[-1]
        cursor = int(cursor_raw) if cursor_raw.isdigit() else 0
        page_size = max(1, self.hub.tree_page_size)
        page = entries[cursor : cursor + page_size]
        headers = {}
        if cursor + page_size < len(entries):
            qs = f"recursive={'true' if recursive else 'false'}&expand=false&cursor={cursor + page_size}"
            next_url = f"{self.hub.url}{self._raw_path}?{qs}"
            headers["Link"] = f'<{next_url}>; rel="next"'
        self._json(page, headers=headers)

    def _paths_info(self, repo: _Repo, rev: str, body: bytes) -> None:
        with self.hub._lock:
            commit = repo.resolve(rev)
        if commit is None:
            self._error(404, "RevisionNotFound", f"Invalid rev id: {rev}")
            return
        ctype = self.headers.get("Content-Type", "")
        if "json" in ctype:
            paths = json.loads(body or b"{}").get("paths", [])
        else:
            paths = parse_qs(body.decode(), keep_blank_values=True).get("paths", [])
        out = []
        all_entries = _tree_entries(commit, "", True) or []
        by_path = {e["path"]: e for e in all_entries}
        for p in paths:
            if p.strip("/") in by_path:
                out.append(by_path[p.strip("/")])
        self._json(out)

    # -- file serving

    def _resolve(self, method: str, repo: _Repo | None, repo_id: str, rev: str, path: str, url_path: str,
                 *, hub_headers: bool) -> None:
        hub = self.hub
        keys = [path, f"{repo_id}/{path}", url_path]
        if repo is None:
            if self._status_fault(method, keys):
                return
            self._error(404, "RepoNotFound", f"Repository {repo_id} not found")
            return
        with hub._lock:
            commit = repo.resolve(rev)
            gated = repo.meta.get("gated")
        if commit is None:
            if self._status_fault(method, keys):
                return
            self._error(404, "RevisionNotFound", f"Invalid rev id: {rev}")
            return
        commit_hdr = {"X-Repo-Commit": commit.sha} if hub_headers else {}
        hf = commit.files.get(path)
        faults = hub._take_faults(method, keys, body=(method == "GET" and hf is not None))
        for f in faults:
            if f.kind is FaultKind.STATUS:
                self._error(f.status_code, f.error_code, f"injected fault {f.status_code}", commit_hdr)
                return
        if hf is None:
            self._error(404, "EntryNotFound", f"{path} does not exist on {rev}", commit_hdr)
            return
        if gated and hub_headers:
            auth = self.headers.get("Authorization", "")
            token = auth[7:] if auth.lower().startswith("bearer ") else ""
            if token not in hub.tokens:
                self._error(401, "GatedRepo", f"Access to model {repo_id} is restricted.", commit_hdr)
                return

        headers: dict[str, str] = {
            "ETag": f'"{hf.etag}"',
            "Accept-Ranges": "bytes",
            "Content-Disposition": f'attachment; filename="{path.rsplit("/", 1)[-1]}"',
        }
        headers.update(commit_hdr)
        if hub_headers and hf.lfs:
            headers["X-Linked-Etag"] = f'"{hf.sha256}"'
            headers["X-Linked-Size"] = str(hf.size)

        start, end, code = 0, hf.size, 200
        range_header = self.headers.get("Range")
        if range_header:
            parsed = _parse_range(range_header, hf.size)
            if parsed == "unsatisfiable":
                self._error(416, None, f"Range {range_header} not satisfiable",
                            {**headers, "Content-Range": f"bytes */{hf.size}"})
                return
            if parsed is not None:
                start, end = parsed
                code = 206
                headers["Content-Range"] = f"bytes {start}-{end - 1}/{hf.size}"

        self.send_response(code)
        self.send_header("Content-Type", "application/octet-stream")
        for k, v in headers.items():
            self.send_header(k, v)
        extra = sum(f.after_bytes for f in faults if f.kind is FaultKind.EXTRA_BYTES)
        if extra and any(f.omit_length for f in faults if f.kind is FaultKind.EXTRA_BYTES):
            self.send_header("Connection", "close")  # the body ends when the socket closes
            self.close_connection = True
        else:
            self.send_header("Content-Length", str(end - start + extra))
        self.end_headers()
        if method == "HEAD":
            return
        self._stream_body(hf, start, end, faults, f"{repo_id}/{path}")
        if extra:
            self.wfile.write(b"\x00" * extra)
            self.hub._count(f"{repo_id}/{path}", extra)

    def _stream_body(self, hf: HubFile, start: int, end: int, faults: list[Fault], key: str) -> None:
        hub = self.hub
        flip = any(f.kind is FaultKind.CORRUPT for f in faults)
        drops = [f.after_bytes for f in faults if f.kind is FaultKind.DROP_CONNECTION]
        drop_after = min(drops) if drops else None
        slows = [f for f in faults if f.kind is FaultKind.SLOW]
        bps = min((f.bytes_per_sec for f in slows if f.bytes_per_sec), default=None)
        delay = max((f.delay_per_chunk for f in slows), default=0.0)
        if not faults and hf.source is not None:
            self._sendfile(hf, start, end, key)
            return
        chunk_size = CHUNK_SIZE
        if bps:
            chunk_size = max(1, min(CHUNK_SIZE, int(bps / 20) or 1))
        sent = 0
        for chunk in hf.iter_bytes(start, end, chunk_size):
            if hub._stopping.is_set():
                raise _StopServing()
            if delay and hub._stopping.wait(delay):
                raise _StopServing()
            if flip:
                chunk = chunk.translate(_FLIP)
            if drop_after is not None and sent + len(chunk) >= drop_after:
                part = chunk[: max(0, drop_after - sent)]
                if part:
                    self.wfile.write(part)
                    hub._count(key, len(part))
                self.wfile.flush()
                self.close_connection = True
                try:
                    self.connection.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                return
            self.wfile.write(chunk)
            sent += len(chunk)
            hub._count(key, len(chunk))
            if bps and hub._stopping.wait(len(chunk) / bps):
                raise _StopServing()

    def _sendfile(self, hf: HubFile, start: int, end: int, key: str) -> None:
        """Fault-free disk file: zero-copy ``sendfile`` in 8 MiB slices (cheap on a 2-core box)."""
        assert hf.source is not None
        with open(hf.source, "rb") as fh:
            pos = start
            while pos < end:
                if self.hub._stopping.is_set():
                    raise _StopServing()
                n = self.connection.sendfile(fh, pos, min(8 * 1024 * 1024, end - pos))
                if n <= 0:
                    raise OSError(f"{hf.source} shrank while being served")
                pos += n
                self.hub._count(key, n)


def _parse_range(header: str, size: int) -> tuple[int, int] | str | None:
    """``bytes=N-``, ``bytes=N-M``, ``bytes=-K`` -> (start, end_exclusive); None = ignore; 'unsatisfiable'."""
    header = header.strip()
    if not header.startswith("bytes=") or "," in header:
        return None
    spec = header[len("bytes="):].strip()
    first, _, last = spec.partition("-")
    try:
        if first == "":
            n = int(last)
            if n <= 0:
                return "unsatisfiable"
            return max(0, size - n), size
        start = int(first)
        end = size if last == "" else min(int(last) + 1, size)
    except ValueError:
        return None
    if start >= size or end <= start:
        return "unsatisfiable"
    return start, end


def _tree_entries(commit: _Commit, prefix: str, recursive: bool) -> list[dict[str, Any]] | None:
    """Tree entries under ``prefix`` (directories first, then files, sorted); None if prefix is absent."""
    dirs: set[str] = set()
    files: list[HubFile] = []
    base = f"{prefix}/" if prefix else ""
    found = not prefix
    for path, f in commit.files.items():
        if prefix and path == prefix:
            return None  # a file, not a folder
        if not path.startswith(base):
            continue
        found = True
        rel = path[len(base):]
        parts = rel.split("/")
        for i in range(1, len(parts)):
            if recursive or i == 1:
                dirs.add(base + "/".join(parts[:i]))
        if recursive or len(parts) == 1:
            files.append(f)
    if not found:
        return None
    entries: list[dict[str, Any]] = [
        {"type": "directory", "oid": hashlib.sha1(f"tree:{commit.sha}:{d}".encode()).hexdigest(), "size": 0,
         "path": d}
        for d in sorted(dirs)
    ]
    for f in sorted(files, key=lambda f: f.path):
        entry: dict[str, Any] = {"type": "file", "oid": f.blob_id, "size": f.size, "path": f.path}
        if f.lfs:
            entry["lfs"] = {"oid": f.sha256, "size": f.size, "pointerSize": len(f.pointer())}
        entries.append(entry)
    return entries
