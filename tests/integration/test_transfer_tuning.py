"""fetch_resumable against the loopback hub: early writeback while bytes arrive, the sha256
computed while receiving (also across a resume) matching the file's bytes, and a capped receive buffer."""

from __future__ import annotations

import hashlib
import os
import socket
import threading
import time

import pytest

from adapters.downloads import writeback
from adapters.downloads.http_transfer import TransferLimits, fetch_resumable
from adapters.downloads.http_transports import StdlibHttp
from adapters.filesystem.hash_cache import read_hash_cache
from tests.support.fake_hub import FakeHub, Fault

DATA = os.urandom(3 * 1024 * 1024 + 123)


@pytest.fixture
def hub():
    with FakeHub() as h:
        yield h


def _url(hub) -> str:
    sha = hub.add_repo("org/tiny", {"model.safetensors": DATA})
    return f"{hub.url}/org/tiny/resolve/{sha}/model.safetensors"


class _Syncs:
    """Records the background flushes: which descriptor, the file's size then, and when each ends."""

    def __init__(self, path, delay: float = 0.0) -> None:
        self.path, self.delay = path, delay
        self.sizes: list[int] = []
        self.running = 0
        self.lock = threading.Lock()

    def __call__(self, fd: int) -> None:
        with self.lock:
            self.running += 1
        try:
            self.sizes.append(os.fstat(fd).st_size)
            time.sleep(self.delay)
            os.fsync(fd)
        finally:
            with self.lock:
                self.running -= 1


def test_bytes_start_going_to_disk_while_the_file_still_arrives(hub, tmp_path, monkeypatch) -> None:
    url = _url(hub)
    dest = tmp_path / "m.part"
    syncs = _Syncs(dest)
    monkeypatch.setattr(writeback, "_sync", syncs)
    hub.inject("model.safetensors", Fault.slow(bytes_per_sec=4 * 1024 * 1024))  # ~0.8 s: flushes can start meanwhile
    fetch_resumable(StdlibHttp(), url, dest, label="m", expected_size=len(DATA), progress=lambda *_: None,
                    limits=TransferLimits(writeback_bytes=512 * 1024))
    assert dest.read_bytes() == DATA
    assert syncs.sizes, "no flush started during the transfer"
    assert min(syncs.sizes) < len(DATA)  # at least one flush ran before the last byte was written


def test_no_flush_outlives_the_transfer(hub, tmp_path, monkeypatch) -> None:
    url = _url(hub)
    dest = tmp_path / "m.part"
    syncs = _Syncs(dest, delay=0.3)  # a slow disk: the last flush is still running when the body ends
    monkeypatch.setattr(writeback, "_sync", syncs)
    fetch_resumable(StdlibHttp(), url, dest, label="m", expected_size=len(DATA), progress=lambda *_: None,
                    limits=TransferLimits(writeback_bytes=64 * 1024))
    assert syncs.sizes
    assert syncs.running == 0  # waited for before the descriptor closed (it could be reused at once)


def test_writeback_zero_starts_no_flush(hub, tmp_path, monkeypatch) -> None:
    url = _url(hub)
    syncs = _Syncs(tmp_path / "m.part")
    monkeypatch.setattr(writeback, "_sync", syncs)
    fetch_resumable(StdlibHttp(), url, tmp_path / "m.part", label="m", expected_size=len(DATA),
                    progress=lambda *_: None, limits=TransferLimits(writeback_bytes=0))
    assert syncs.sizes == []


def test_a_failing_flush_does_not_fail_the_transfer(hub, tmp_path, monkeypatch) -> None:
    url = _url(hub)

    def broken(fd: int) -> None:
        raise OSError(5, "I/O error")

    monkeypatch.setattr(writeback, "_sync", broken)
    dest = tmp_path / "m.part"
    fetch_resumable(StdlibHttp(), url, dest, label="m", expected_size=len(DATA), progress=lambda *_: None,
                    limits=TransferLimits(writeback_bytes=64 * 1024, retries=0))  # no retry hides a failure
    assert dest.read_bytes() == DATA  # the fsync before install is the guarantee; it reports real errors


def test_digest_hashed_while_receiving_covers_a_resumed_partial(hub, tmp_path) -> None:
    url = _url(hub)
    dest = tmp_path / "m.part"
    hub.inject("model.safetensors", Fault.drop_connection_after(1_000_000, times=1))
    seen: list[int] = []
    fetch_resumable(StdlibHttp(), url, dest, label="m", expected_size=len(DATA),
                    progress=lambda _l, done, _t: seen.append(done), retries=1, backoff_seconds=0.01)
    ranges = [r.headers.get("Range") for r in hub.requests_for("model.safetensors", "GET")]
    assert ranges == [None, "bytes=1000000-"]  # resumed, not restarted
    assert dest.read_bytes() == DATA
    # The cached digest (prefix rebuilt from disk once, the rest hashed as it arrived) is the file's.
    assert read_hash_cache(dest) == hashlib.sha256(DATA).hexdigest()


def test_a_receive_buffer_cap_is_set_before_connecting(hub, tmp_path, monkeypatch) -> None:
    url = _url(hub)
    sizes: list[int] = []
    real_connect = socket.socket.connect

    def connect(self, address):
        sizes.append(self.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF))  # before the handshake
        return real_connect(self, address)

    monkeypatch.setattr(socket.socket, "connect", connect)
    dest = tmp_path / "m.part"
    fetch_resumable(StdlibHttp(receive_buffer_bytes=64 * 1024), url, dest, label="m", expected_size=len(DATA),
                    progress=lambda *_: None)
    assert dest.read_bytes() == DATA
    assert sizes and all(n in (64 * 1024, 2 * 64 * 1024) for n in sizes)  # Linux reports twice the asked size


def test_the_receive_buffer_setting_reaches_the_transfer_limits(monkeypatch) -> None:
    from entrypoints.composition.downloads_wiring import transfer_limits
    from entrypoints.composition.settings import Settings

    monkeypatch.setenv("MLX_MANAGER_DOWNLOAD_RECEIVE_BUFFER_BYTES", "131072")
    assert transfer_limits(Settings()).receive_buffer_bytes == 131072
    monkeypatch.delenv("MLX_MANAGER_DOWNLOAD_RECEIVE_BUFFER_BYTES")
    assert transfer_limits(Settings()).receive_buffer_bytes == 0  # default: the OS tunes it
