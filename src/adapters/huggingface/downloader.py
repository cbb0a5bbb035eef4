"""`HuggingFaceDownloader`: the Hub's API through huggingface_hub, bytes through mlxm's ranged GET.

* Revision -> commit sha and the file list (sizes, LFS sha256) come from `HfApi(endpoint=...)`.
* The bytes: `hf_hub_url` + a ranged GET into a partial file in mlxm's staging area
  (`adapters/downloads/http_transfer.py`). We do not call `hf_hub_download`: since ~v1.18 it
  deletes its `*.incomplete` file on failure and never resumes across processes, and it would
  store a second copy in the HF cache. The GET uses `http.client` reading into a reused
  buffer (half the CPU per byte of httpx here, which keeps verification-on throughput close to
  curl's), or huggingface_hub's own `get_session()` client when a proxy is configured.
* `HF_ENDPOINT` and `HF_TOKEN` are read at call time (huggingface_hub itself reads
  `HF_ENDPOINT` only when imported) and passed explicitly; without `HF_TOKEN` the client's
  own lookup applies (the token saved by `hf auth login`).
"""

from __future__ import annotations

import os
import time
from dataclasses import replace
from pathlib import Path
from typing import Callable

from application.errors import SourceError, Unauthorized
from domain.library.layout import is_commit_sha
from application.downloads.ports import ProgressCallback, RemoteFile, RemoteListing
from domain.catalog.model import ModelSource
from domain.enums import SourceKind

from adapters.downloads.http_transfer import TransferLimits, fetch_resumable
from adapters.downloads.http_transports import HttpxHttp, StdlibHttp, checked_base_url, proxy_configured

DEFAULT_ENDPOINT = "https://huggingface.co"


def _env_endpoint() -> str:
    return checked_endpoint((os.environ.get("HF_ENDPOINT") or DEFAULT_ENDPOINT).rstrip("/"))


def checked_endpoint(endpoint: str) -> str:
    return checked_base_url(endpoint, what="hub endpoint", setting="HF_ENDPOINT", example=DEFAULT_ENDPOINT)


def _env_token() -> str | None:
    return os.environ.get("HF_TOKEN") or os.environ.get("HUGGING_FACE_HUB_TOKEN") or None


def _env_offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes", "on")


class HuggingFaceDownloader:
    """A `ModelDownloader` for `huggingface_repo` sources."""

    kind = SourceKind.HUGGINGFACE_REPO

    def __init__(
        self,
        endpoint: Callable[[], str] | str | None = None,
        token: Callable[[], str | None] | str | None = None,
        offline: Callable[[], bool] | bool = False,
        retries: int | None = None,
        backoff_seconds: float | None = None,
        limits: TransferLimits | None = None,
    ) -> None:
        self._endpoint = endpoint
        self._token = token
        self._offline = offline
        limits = limits or TransferLimits(backoff_seconds=0.2)
        if retries is not None or backoff_seconds is not None:
            limits = replace(limits, retries=limits.retries if retries is None else retries,
                             backoff_seconds=limits.backoff_seconds if backoff_seconds is None else backoff_seconds)
        self._limits = limits
        self._stdlib = StdlibHttp(timeout_seconds=limits.read_timeout_seconds,
                                  connect_timeout_seconds=limits.connect_timeout_seconds,
                                  receive_buffer_bytes=limits.receive_buffer_bytes)

    # -- configuration, read per call -------------------------------------------------
    def endpoint(self) -> str:
        value = self._endpoint() if callable(self._endpoint) else self._endpoint
        return checked_endpoint(value.rstrip("/")) if value else _env_endpoint()

    def token(self) -> str | None:
        value = self._token() if callable(self._token) else self._token
        return value or _env_token()

    def _check_online(self) -> None:
        offline = self._offline() if callable(self._offline) else self._offline
        if offline or _env_offline():
            raise SourceError("offline mode is on (MLX_MANAGER_OFFLINE / HF_HUB_OFFLINE): Hugging Face is not contacted")

    def _check_kind(self, source: ModelSource) -> None:
        if source.kind is not SourceKind.HUGGINGFACE_REPO:
            raise SourceError(f"{source.label}: not a Hugging Face source")

    # -- the port ------------------------------------------------------------------------
    def list_files(self, source: ModelSource, revision: str | None, staging: Path) -> RemoteListing:
        self._check_kind(source)
        self._check_online()
        endpoint = self.endpoint()  # before huggingface_hub's import, which parses HF_ENDPOINT itself
        from huggingface_hub import HfApi
        from huggingface_hub.errors import (
            GatedRepoError,
            HfHubHTTPError,
            RepositoryNotFoundError,
            RevisionNotFoundError,
        )

        repo_id = source.value
        use_hub_deadlines(self._limits)
        api = HfApi(endpoint=endpoint, token=self.token())
        try:
            info = self._with_retries(lambda: api.model_info(repo_id, revision=revision or "main",
                                                             timeout=self._limits.read_timeout_seconds))
            sha = info.sha
            if not sha:
                raise SourceError(f"the hub did not return a commit for {revision or 'main'}")
            if not is_commit_sha(sha):
                # The sha names folders on disk: anything but a commit id could point outside the library.
                raise SourceError(f"the hub answered {revision or 'main'} with {sha[:60]!r}, not a 40-hex commit id")
            entries = self._with_retries(lambda: list(api.list_repo_tree(repo_id, revision=sha, recursive=True)))
        except GatedRepoError as exc:
            raise Unauthorized(f"{repo_id} is gated: accept its terms on the Hub and set HF_TOKEN") from exc
        except RepositoryNotFoundError as exc:
            raise SourceError(f"repository {repo_id} not found") from exc
        except RevisionNotFoundError as exc:
            raise SourceError(f"revision {revision!r} of {repo_id} not found") from exc
        except HfHubHTTPError as exc:
            raise SourceError(_first_line(exc)) from exc
        except OSError as exc:  # connection refused, DNS, timeouts (httpx errors are OSError-free: see below)
            raise SourceError(f"cannot reach {self.endpoint()}: {exc}") from exc
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            # huggingface_hub builds its entries from the hub's JSON: a missing `oid` or a wrong type ends here.
            raise SourceError(f"{self.endpoint()} sent a malformed listing of {repo_id}: "
                              f"{type(exc).__name__}: {_first_line(exc)}") from exc
        except Exception as exc:  # noqa: BLE001 - httpx2 transport errors do not share a base with OSError
            if type(exc).__module__.startswith(("httpx", "httpcore")):
                raise SourceError(f"cannot reach {self.endpoint()}: {exc}") from exc
            raise
        files = []
        for entry in entries:
            if getattr(entry, "blob_id", None) is None and getattr(entry, "size", None) is None:  # folders
                continue
            files.append(_remote_file(entry, sha, staging, repo_id))
        return RemoteListing(repo_id=repo_id, revision=sha, files=tuple(sorted(files, key=lambda f: f.path)))

    def _with_retries(self, call):
        """A hub API call that times out or loses its connection is retried (bounded, with backoff)."""
        attempt = 0
        while True:
            try:
                return call()
            except Exception as exc:  # noqa: BLE001 - httpx2's transport errors share no base with OSError
                if not _is_transport_error(exc):
                    raise
                attempt += 1
                if attempt > self._limits.retries:
                    raise SourceError(f"{self.endpoint()} did not answer ({type(exc).__name__}; "
                                      f"{attempt} attempts, {self._limits.read_timeout_seconds:g} s each)") from exc
                time.sleep(self._limits.backoff(attempt))

    def download_from_source(self, source: ModelSource, file: RemoteFile, progress: ProgressCallback) -> Path:
        self._check_kind(source)
        self._check_online()
        endpoint = self.endpoint()  # before huggingface_hub's import, which parses HF_ENDPOINT itself
        from huggingface_hub import hf_hub_url
        from huggingface_hub.utils import build_hf_headers

        url = hf_hub_url(source.value, file.path, revision=file.revision, endpoint=endpoint)
        headers = build_hf_headers(token=self.token(), library_name="mlxm")
        return fetch_resumable(
            self._transport(url), url, file.dest, label=file.path, expected_size=file.size, progress=progress,
            headers=headers, limits=self._limits,
        )

    def _transport(self, url: str):
        if proxy_configured(url):
            import httpx2
            from huggingface_hub.utils import get_session

            limits = self._limits
            return HttpxHttp(get_session(), (httpx2.TransportError, OSError),
                             timeout=httpx2.Timeout(connect=limits.connect_timeout_seconds,
                                                    read=limits.read_timeout_seconds, write=60.0, pool=None))
        return self._stdlib


MAX_FILE_SIZE = 2**50  # 1 PiB: far above any model file, far below what breaks offsets and SQL integers
MAX_NAME_BYTES = 255  # one path component, as most filesystems allow
MAX_PATH_BYTES = 1024


def _remote_file(entry, sha: str, staging: Path, repo_id: str) -> RemoteFile:
    """One listed file, checked: a hub that sends nonsense is a source error naming what, never a crash."""
    path = getattr(entry, "path", None)
    where = f"the listing of {repo_id}"
    if not isinstance(path, str) or not path:
        raise SourceError(f"{where} has a file without a name")
    shown = path[:80] + ("..." if len(path) > 80 else "")
    encoded = path.encode("utf-8", "surrogatepass")
    if len(encoded) > MAX_PATH_BYTES or any(len(part.encode("utf-8", "surrogatepass")) > MAX_NAME_BYTES
                                            for part in path.split("/")):
        raise SourceError(f"{where} has a file name too long for a filesystem: {shown!r}")
    size = getattr(entry, "size", None)
    if isinstance(size, bool) or not isinstance(size, int) or not 0 <= size <= MAX_FILE_SIZE:
        raise SourceError(f"{where} gives {shown!r} the size {str(size)[:40]!r}, not a byte count "
                          f"between 0 and {MAX_FILE_SIZE}")
    blob_id = getattr(entry, "blob_id", None)
    if not isinstance(blob_id, str) or not blob_id:
        raise SourceError(f"{where} gives {shown!r} no git object id (oid)")
    lfs = getattr(entry, "lfs", None)
    sha256 = getattr(lfs, "sha256", None) if lfs is not None else None
    if lfs is not None and not _is_hex(sha256, 64):
        raise SourceError(f"{where} gives {shown!r} an LFS sha256 that is not 64 hex digits")
    git_oid = blob_id if lfs is None and _is_hex(blob_id, 40) else None
    return RemoteFile(path=path, size=size, sha256=sha256, revision=sha, dest=staging / (path + ".part"),
                      git_blob_sha1=git_oid)


def _is_transport_error(exc: BaseException) -> bool:
    """No answer (timeout, refused, reset): worth a retry. An HTTP answer (HfHubHTTPError, an OSError too) is not."""
    from huggingface_hub.errors import HfHubHTTPError

    if isinstance(exc, HfHubHTTPError):
        return False
    return isinstance(exc, (OSError, TimeoutError)) or type(exc).__module__.startswith(("httpx", "httpcore"))


def use_hub_deadlines(limits: TransferLimits) -> None:
    """huggingface_hub's shared client has no timeout at all (a hub that accepts and never answers
    hangs a pull forever): give it ours. Set once per distinct limits; huggingface_hub's documented
    hook for this is `set_client_factory`."""
    global _hub_limits
    if _hub_limits == limits:
        return
    import httpx2
    from huggingface_hub.utils import _http as hf_http

    def factory():
        client = hf_http.default_client_factory()
        client.timeout = httpx2.Timeout(connect=limits.connect_timeout_seconds, read=limits.read_timeout_seconds,
                                        write=60.0, pool=limits.connect_timeout_seconds)
        return client

    hf_http.set_client_factory(factory)
    _hub_limits = limits


_hub_limits: TransferLimits | None = None


def _is_hex(value: object, length: int) -> bool:
    return isinstance(value, str) and len(value) == length and all(c in "0123456789abcdef" for c in value.lower())


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]
