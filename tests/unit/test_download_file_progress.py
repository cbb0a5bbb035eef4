"""Per-file bytes in a pull's progress snapshots (what the SSE events and the Discover page show)."""

from __future__ import annotations

import json
import threading
import time

from adapters.catalog.embedded import StaticCatalogProvider
from adapters.memory.repositories import FakeClock, InMemoryUnitOfWork
from application.downloads.service import DownloadService
from domain.catalog.model import catalog_from_dict
from domain.enums import DownloadStatus
from tests.support.fake_downloader import FakeDownloader
from tests.support.memory_paths import MemPath

CONFIG = json.dumps({"model_type": "llama"}).encode()
WEIGHTS = bytes(range(256)) * 40  # 10 KiB
TOKENIZER = b"{" + b" " * 3000 + b"}"


def _service(fake: FakeDownloader, clock: FakeClock) -> DownloadService:
    home = MemPath.new_home()
    fake.store = home.store
    catalog = catalog_from_dict({"default_model": "tiny-v1", "models": [
        {"id": "tiny-v1", "type": "text-gen", "family": "llama", "aliases": [],
         "sources": [{"kind": "huggingface_repo", "value": "org/tiny"}]}]})
    uow = InMemoryUnitOfWork()
    return DownloadService(lambda: uow, StaticCatalogProvider(catalog), fake, clock, home.store,
                           max_workers=3)


def _wait_until(predicate, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not reached"
        time.sleep(0.01)


def test_a_running_pull_reports_each_files_bytes_against_its_size() -> None:
    fake = FakeDownloader()
    fake.add_repo("org/tiny", {"config.json": CONFIG, "model.safetensors": WEIGHTS, "tokenizer.json": TOKENIZER})
    gate, started = threading.Event(), threading.Event()
    fake.block_paths["model.safetensors"] = gate  # holds at half the file
    fake.started["model.safetensors"] = started
    clock = FakeClock()
    service = _service(fake, clock)
    seen = []
    download = service.start("tiny-v1", seen.append)
    assert started.wait(5)
    half = len(WEIGHTS) // 2
    try:  # the gate opens whatever happens, so a failing check never leaves the pull hanging
        def weights_at_half() -> bool:
            clock.advance(1.0)  # past the throttle interval: the next chunk callback emits a snapshot
            files = {f.path: f for f in service.progress_of(download.id).files}
            return "model.safetensors" in files and files["model.safetensors"].downloaded_bytes == half

        _wait_until(weights_at_half)
        snapshot = service.progress_of(download.id)
        event = snapshot.to_dict()
        by_path = {f["path"]: f for f in event["files"]}
        assert set(by_path) == {"config.json", "model.safetensors", "tokenizer.json"}
        assert by_path["model.safetensors"] == {"path": "model.safetensors", "downloaded_bytes": half,
                                                "total_bytes": len(WEIGHTS), "done": False}

        def small_files_done() -> bool:
            clock.advance(1.0)
            return {f.path for f in service.progress_of(download.id).files if f.done} == {"config.json", "tokenizer.json"}

        _wait_until(small_files_done)
        now = service.progress_of(download.id)
        done = {f.path: f for f in now.files}
        assert done["config.json"].downloaded_bytes == done["config.json"].total_bytes == len(CONFIG)
        assert done["tokenizer.json"].downloaded_bytes == len(TOKENIZER) and done["tokenizer.json"].done
        assert sum(f.downloaded_bytes for f in done.values()) == now.downloaded_bytes
    finally:
        gate.set()
    final = service.wait(download.id, timeout=10)
    assert final.status is DownloadStatus.COMPLETED
    last = seen[-1]
    assert last.status is DownloadStatus.COMPLETED
    assert [(f.path, f.downloaded_bytes, f.total_bytes, f.done) for f in last.files] == [
        ("config.json", len(CONFIG), len(CONFIG), True),
        ("model.safetensors", len(WEIGHTS), len(WEIGHTS), True),
        ("tokenizer.json", len(TOKENIZER), len(TOKENIZER), True),
    ]


def test_per_file_bytes_do_not_add_snapshots_a_chunk_would_not_have_sent() -> None:
    # The per-file list rides on the throttled snapshots: with a clock that never advances only the
    # milestones (start, each finished file, the end) reach the listener, however many chunks arrive.
    fake = FakeDownloader(chunk_size=16)
    fake.add_repo("org/tiny", {"config.json": CONFIG, "model.safetensors": WEIGHTS})
    seen = []
    service = _service(fake, FakeClock())
    service.pull("tiny-v1", seen.append)
    assert len(seen) <= 5 < len(WEIGHTS) // 16
    assert all(len(s.files) == 2 for s in seen)
    assert seen[-1].files[1].downloaded_bytes == len(WEIGHTS)
