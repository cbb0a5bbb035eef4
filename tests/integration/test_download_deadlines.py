"""Issue 12 item 6: every hub call has a deadline; stalls are retried with Range; retries are bounded.

Loopback only: the fake hub (real huggingface_hub client) and a socket that accepts and never answers.
Each case runs in a thread with a generous join timeout, so an unfixed hang fails instead of blocking.
"""

from __future__ import annotations

import hashlib
import socket
import threading

import pytest

from adapters.downloads.http_transfer import TransferLimits
from adapters.huggingface.downloader import HuggingFaceDownloader, use_hub_deadlines
from application.errors import SourceError
from domain.catalog.model import ModelSource
from domain.enums import SourceKind
from tests.support.fake_hub import FakeHub, Fault

SOURCE = ModelSource(SourceKind.HUGGINGFACE_REPO, "org/tiny")
WEIGHTS = bytes(range(256)) * 200  # 51,200 bytes
FAST = TransferLimits(connect_timeout_seconds=2, read_timeout_seconds=1, stall_seconds=1, stall_bytes=4096,
                      retries=2, backoff_seconds=0.05)
JOIN_SECONDS = 60


@pytest.fixture(autouse=True)
def _default_hub_deadlines_afterwards():
    yield
    use_hub_deadlines(TransferLimits())  # the shared huggingface_hub client is global: restore the defaults


def _in_thread(call):
    result: dict = {}

    def run():
        try:
            result["value"] = call()
        except BaseException as exc:  # noqa: BLE001 - handed to the test
            result["error"] = exc

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(JOIN_SECONDS)
    assert not thread.is_alive(), f"still waiting after {JOIN_SECONDS} s: no deadline"
    return result


class SilentServer:
    """Accepts connections, reads what comes, never answers."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.accepted: list[socket.socket] = []
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.accepted.append(conn)

    def close(self) -> None:
        self.sock.close()
        for conn in self.accepted:
            conn.close()


def test_a_hub_api_that_never_answers_fails_after_bounded_retries(tmp_path):
    server = SilentServer()
    try:
        downloader = HuggingFaceDownloader(endpoint=server.url, limits=FAST)
        result = _in_thread(lambda: downloader.list_files(SOURCE, None, tmp_path))
    finally:
        server.close()
    assert isinstance(result.get("error"), SourceError), result
    assert "did not answer" in str(result["error"]) and "3 attempts" in str(result["error"])
    assert len(server.accepted) == 3  # the first call and FAST.retries more


@pytest.fixture
def hub():
    with FakeHub() as h:
        h.add_repo("org/tiny", {"model.safetensors": WEIGHTS})
        yield h


def _download(hub, tmp_path, limits=FAST):
    downloader = HuggingFaceDownloader(endpoint=hub.url, limits=limits)
    file = downloader.list_files(SOURCE, None, tmp_path).files[0]
    return file, _in_thread(lambda: downloader.download_from_source(SOURCE, file, lambda *a: None))


def test_a_file_get_that_never_sends_its_body_is_retried_after_the_read_timeout(hub, tmp_path):
    hub.inject("model.safetensors", Fault.slow(delay_per_chunk=600, times=1))
    file, result = _download(hub, tmp_path)
    assert "error" not in result, result
    assert file.dest.read_bytes() == WEIGHTS
    assert len(hub.requests_for("model.safetensors", "GET")) == 2


def test_a_dripping_file_is_a_stall_retried_with_range(hub, tmp_path):
    hub.inject("model.safetensors", Fault.slow(bytes_per_sec=2, times=1))  # 1 byte every 0.5 s
    file, result = _download(hub, tmp_path)
    assert "error" not in result, result
    assert hashlib.sha256(file.dest.read_bytes()).digest() == hashlib.sha256(WEIGHTS).digest()
    gets = hub.requests_for("model.safetensors", "GET")
    assert len(gets) == 2 and gets[1].headers.get("range", "").startswith("bytes=")
    assert gets[1].headers["range"] != "bytes=0-"  # the dripped bytes were kept


def test_a_source_that_always_drips_gives_up_after_bounded_retries(hub, tmp_path):
    hub.inject("model.safetensors", Fault.slow(bytes_per_sec=2))  # every time
    _, result = _download(hub, tmp_path)
    assert isinstance(result.get("error"), SourceError) and "stalled" in str(result["error"])
    assert len(hub.requests_for("model.safetensors", "GET")) == 3


def test_backoff_doubles_and_is_capped():
    limits = TransferLimits(backoff_seconds=1.0)
    assert [limits.backoff(n) for n in (1, 2, 3, 4, 10)] == [1.0, 2.0, 4.0, 8.0, 30.0]


def test_settings_reach_the_downloader(monkeypatch, tmp_path):
    from entrypoints.composition.downloads_wiring import transfer_limits
    from entrypoints.composition.settings import ManagerSettings, Settings

    for name, value in (("CONNECT_TIMEOUT_SECONDS", "3"), ("READ_TIMEOUT_SECONDS", "4"), ("STALL_SECONDS", "5"),
                        ("STALL_BYTES", "6"), ("RETRIES", "7"), ("BACKOFF_SECONDS", "0.8")):
        monkeypatch.setenv(f"MLX_MANAGER_DOWNLOAD_{name}", value)
    limits = transfer_limits(Settings(manager=ManagerSettings(home=tmp_path)))
    assert limits == TransferLimits(3, 4, 5, 6, 7, 0.8)


def test_an_http_answer_is_not_retried(hub, tmp_path):
    downloader = HuggingFaceDownloader(endpoint=hub.url, limits=FAST)
    with pytest.raises(SourceError, match="not found"):
        downloader.list_files(ModelSource(SourceKind.HUGGINGFACE_REPO, "org/missing"), None, tmp_path)
    assert len(hub.requests_for("org/missing")) == 1
