"""HuggingFaceDownloader specifics, with the real huggingface_hub client against the loopback hub."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

os.environ.setdefault("HF_HUB_DISABLE_XET", "1")

import pytest

from adapters.huggingface import HuggingFaceDownloader
from adapters.mirror import HttpMirrorDownloader
from application.errors import SourceError, SourceNotConfigured, Unauthorized
from adapters.filesystem.hash_cache import read_hash_cache
from application.downloads.ports import RemoteFile
from domain.catalog.model import ModelSource
from domain.enums import SourceKind
from tests.support.fake_hub import FakeHub, Fault

SOURCE = ModelSource(SourceKind.HUGGINGFACE_REPO, "org/tiny")
WEIGHTS = os.urandom(300_000)


@pytest.fixture
def hub():
    with FakeHub(tree_page_size=2) as h:
        yield h


def _noop(*_):
    return None


def test_endpoint_and_token_are_read_at_call_time(hub, tmp_path, monkeypatch) -> None:
    hub.add_repo("org/tiny", {"config.json": b"{}"})
    downloader = HuggingFaceDownloader()  # built before the environment points anywhere
    monkeypatch.setenv("HF_ENDPOINT", hub.url)
    monkeypatch.setenv("HF_TOKEN", "hf_abc")
    listing = downloader.list_files(SOURCE, None, tmp_path)
    downloader.download_from_source(SOURCE, listing.files[0], _noop)
    gets = hub.requests_for("/resolve/", "GET")
    assert gets and gets[0].headers.get("Authorization") == "Bearer hf_abc"
    assert hub.requests_for("/api/models/org/tiny/revision/main")


def test_paginated_nested_listing_with_lfs_sha256(hub, tmp_path) -> None:
    files = {"config.json": b"{}", "a/b/c.json": b"[1]", "tokenizer/tok.json": b"{}", "model.safetensors": WEIGHTS,
             "extra.txt": b"hello"}
    sha = hub.add_repo("org/tiny", files)
    listing = HuggingFaceDownloader(endpoint=hub.url).list_files(SOURCE, "main", tmp_path)
    assert listing.revision == sha
    assert {f.path: f.size for f in listing.files} == {p: len(d) for p, d in files.items()}  # all pages, no folders
    by_path = {f.path: f for f in listing.files}
    assert by_path["model.safetensors"].sha256 == hashlib.sha256(WEIGHTS).hexdigest()
    assert by_path["config.json"].sha256 is None  # not LFS: verified by size


def test_nested_file_downloads_into_its_folder_and_caches_its_hash(hub, tmp_path) -> None:
    hub.add_repo("org/tiny", {"tokenizer/model.safetensors": WEIGHTS})
    downloader = HuggingFaceDownloader(endpoint=hub.url)
    file = downloader.list_files(SOURCE, None, tmp_path).files[0]
    path = downloader.download_from_source(SOURCE, file, _noop)
    assert path == tmp_path / "tokenizer" / "model.safetensors.part" and path.read_bytes() == WEIGHTS
    assert read_hash_cache(path) == hashlib.sha256(WEIGHTS).hexdigest()  # hashed while written


def test_server_ignoring_range_restarts_cleanly(hub, tmp_path) -> None:
    sha = hub.add_repo("org/tiny", {"model.safetensors": WEIGHTS})
    file = RemoteFile("model.safetensors", len(WEIGHTS), hashlib.sha256(WEIGHTS).hexdigest(), sha,
                      tmp_path / "m.part")
    file.dest.write_bytes(b"garbage that is not the file's start")
    mirror = HttpMirrorDownloader(base_url=f"{hub.url}/mirror")

    from adapters.downloads.http_transfer import fetch_resumable
    from adapters.downloads.http_transports import StdlibHttp

    class NoRange(StdlibHttp):  # drops the Range header, like a server that ignores it
        def get(self, url, headers):
            return super().get(url, {k: v for k, v in headers.items() if k.lower() != "range"})

    fetch_resumable(NoRange(), mirror.url_for(ModelSource(SourceKind.HTTP_MIRROR, "org/tiny"), file),
                    file.dest, label=file.path, expected_size=file.size, progress=_noop)
    assert file.dest.read_bytes() == WEIGHTS  # a 200 answer overwrote the stale partial


def test_partial_longer_than_the_file_is_discarded(hub, tmp_path) -> None:
    hub.add_repo("org/tiny", {"model.safetensors": WEIGHTS})
    downloader = HuggingFaceDownloader(endpoint=hub.url)
    file = downloader.list_files(SOURCE, None, tmp_path).files[0]
    file.dest.write_bytes(b"\0" * (len(WEIGHTS) + 10))
    downloader.download_from_source(SOURCE, file, _noop)
    assert file.dest.read_bytes() == WEIGHTS


def test_repeated_drops_are_retried_then_reported(hub, tmp_path) -> None:
    hub.add_repo("org/tiny", {"model.safetensors": WEIGHTS})
    hub.inject("model.safetensors", Fault.drop_connection_after(10_000))  # every time
    downloader = HuggingFaceDownloader(endpoint=hub.url, retries=2, backoff_seconds=0.01)
    file = downloader.list_files(SOURCE, None, tmp_path).files[0]
    with pytest.raises(SourceError, match="model.safetensors"):
        downloader.download_from_source(SOURCE, file, _noop)
    assert len(hub.requests_for("model.safetensors", "GET")) == 3  # first try + 2 retries, each resuming
    assert file.dest.stat().st_size == 30_000  # every byte received was kept


def test_gated_repo_without_token_is_unauthorized(hub, tmp_path, monkeypatch) -> None:
    monkeypatch.delenv("HF_TOKEN", raising=False)
    hub.add_repo("org/tiny", {"model.safetensors": WEIGHTS}, gated=True)
    downloader = HuggingFaceDownloader(endpoint=hub.url, token=lambda: None)
    file = downloader.list_files(SOURCE, None, tmp_path).files[0]
    with pytest.raises(Unauthorized, match="HF_TOKEN"):
        downloader.download_from_source(SOURCE, file, _noop)


def test_proxy_from_the_environment_uses_the_httpx_client(hub, tmp_path, monkeypatch) -> None:
    from adapters.downloads.http_transports import HttpxHttp, StdlibHttp, proxy_configured

    downloader = HuggingFaceDownloader(endpoint=hub.url)
    url = f"{hub.url}/org/tiny/resolve/main/x"
    monkeypatch.delenv("HTTP_PROXY", raising=False)
    monkeypatch.delenv("http_proxy", raising=False)
    assert isinstance(downloader._transport(url), StdlibHttp)
    monkeypatch.setenv("http_proxy", "http://proxy.invalid:3128")
    monkeypatch.setenv("no_proxy", "")
    assert proxy_configured("http://example.org/x")
    assert isinstance(downloader._transport("http://example.org/x"), HttpxHttp)


def test_redirects_are_followed_and_drop_the_token_on_another_host(tmp_path) -> None:
    import http.server
    import threading

    from adapters.downloads.http_transfer import fetch_resumable
    from adapters.downloads.http_transports import StdlibHttp

    seen = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802
            seen.append((self.headers.get("Host"), self.path, self.headers.get("Authorization")))
            if self.path == "/resolve":
                self.send_response(302)
                self.send_header("Location", f"http://localhost:{self.server.server_address[1]}/cdn")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            self.send_response(200)
            self.send_header("Content-Length", str(len(WEIGHTS)))
            self.end_headers()
            self.wfile.write(WEIGHTS)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        dest = tmp_path / "f.part"
        fetch_resumable(StdlibHttp(), f"http://127.0.0.1:{server.server_address[1]}/resolve", dest, label="f",
                        expected_size=len(WEIGHTS), progress=_noop, headers={"Authorization": "Bearer hf_x"})
    finally:
        server.shutdown()
        server.server_close()
    assert dest.read_bytes() == WEIGHTS
    assert [(p, a) for _, p, a in seen] == [("/resolve", "Bearer hf_x"), ("/cdn", None)]


def test_offline_and_unreachable(hub, tmp_path, monkeypatch) -> None:
    with pytest.raises(SourceError, match="offline"):
        HuggingFaceDownloader(endpoint=hub.url, offline=lambda: True).list_files(SOURCE, None, tmp_path)
    assert hub.requests == []
    with pytest.raises(SourceError):
        HuggingFaceDownloader(endpoint="http://127.0.0.1:9").list_files(SOURCE, None, tmp_path)
    monkeypatch.delenv("MLX_MIRROR_BASE_URL", raising=False)
    with pytest.raises(SourceNotConfigured):
        HttpMirrorDownloader().list_files(ModelSource(SourceKind.HTTP_MIRROR, "org/tiny"), None, tmp_path)


def test_a_revision_that_is_not_a_commit_sha_is_refused(hub, tmp_path) -> None:
    # A hostile hub answering `main` with a path instead of a commit id must not name folders on disk.
    sha = hub.add_repo("org/tiny", {"config.json": b"{}"})
    repo = hub._repos["org/tiny"]
    evil = "../../../../escaped"
    commit = repo.commits[sha]
    repo.commits[evil] = type(commit)(evil, commit.files, commit.created)
    repo.refs["main"] = evil
    with pytest.raises(SourceError, match="not a 40-hex commit id"):
        HuggingFaceDownloader(endpoint=hub.url).list_files(SOURCE, None, tmp_path)


@pytest.mark.parametrize("omit_length", [False, True], ids=["content-length-too-big", "close-delimited"])
def test_a_body_longer_than_the_listed_size_is_refused(hub, tmp_path, omit_length) -> None:
    from application.errors import IntegrityError

    hub.add_repo("org/tiny", {"model.safetensors": WEIGHTS})
    hub.inject("model.safetensors", Fault.extra_bytes(5_000, omit_length=omit_length))
    downloader = HuggingFaceDownloader(endpoint=hub.url)
    file = downloader.list_files(SOURCE, None, tmp_path).files[0]
    seen: list[int] = []
    with pytest.raises(IntegrityError, match=f"expected {len(WEIGHTS)} bytes"):
        downloader.download_from_source(SOURCE, file, lambda _p, done, _t: seen.append(done))
    assert max(seen, default=0) <= len(WEIGHTS)  # never a byte past the listed size
    assert not file.dest.exists()  # nothing kept to resume from


def test_a_range_answer_for_a_file_of_another_size_is_refused(hub, tmp_path) -> None:
    from application.errors import IntegrityError

    sha = hub.add_repo("org/tiny", {"model.safetensors": WEIGHTS})
    listed = len(WEIGHTS) - 1_000  # the listing and the served file disagree
    file = RemoteFile("model.safetensors", listed, None, sha, tmp_path / "m.part")
    file.dest.write_bytes(WEIGHTS[:1_000])
    with pytest.raises(IntegrityError, match=f"received {len(WEIGHTS)} bytes"):
        HuggingFaceDownloader(endpoint=hub.url).download_from_source(SOURCE, file, _noop)
    assert not file.dest.exists()


def test_a_compressed_body_is_not_judged_by_its_content_length(tmp_path) -> None:
    # httpx (the proxy transport) asks for gzip and decodes it: Content-Length then counts compressed bytes.
    import contextlib

    from adapters.downloads.http_transfer import fetch_resumable

    body = b'{"model_type": "llama"}' * 10

    class Gzipped:
        errors = (OSError,)
        status = 200

        def header(self, name):
            return {"content-encoding": "gzip", "content-length": "40"}.get(name.lower())

        def chunks(self):
            yield body

    class Transport:
        errors = (OSError,)

        @contextlib.contextmanager
        def get(self, url, headers):
            yield Gzipped()

    dest = tmp_path / "config.json.part"
    fetch_resumable(Transport(), "http://x/config.json", dest, label="config.json", expected_size=len(body),
                    progress=_noop)
    assert dest.read_bytes() == body
