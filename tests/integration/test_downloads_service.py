"""The pull use case where real files matter: flock between processes, fsync before the switch, the
filesystem store's install. In-memory unit of work, a fake downloader, a fake clock, tmp_path as home.
The use-case tests run on the in-memory store: tests/unit/test_downloads_service.py.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest

from adapters.catalog.embedded import StaticCatalogProvider
from adapters.memory.repositories import FakeClock, InMemoryUnitOfWork
from application.downloads.service import DownloadService
from adapters.filesystem.model_store import FilesystemModelStore
from domain.library.layout import Manifest
from domain.enums import DownloadStatus
from domain.library.models import Model
from tests.support.download_catalog import CONFIG, WEIGHTS, make_catalog, sha, tiny_repo_downloader
from tests.support.fake_downloader import FakeDownloader

@pytest.fixture
def fake() -> FakeDownloader:
    return tiny_repo_downloader()


@pytest.fixture
def uow() -> InMemoryUnitOfWork:
    return InMemoryUnitOfWork()


def make_service(tmp_path: Path, fake: FakeDownloader, uow: InMemoryUnitOfWork, catalog=None) -> DownloadService:
    return DownloadService(lambda: uow, StaticCatalogProvider(catalog or make_catalog()), fake, FakeClock(),
                           FilesystemModelStore(tmp_path), max_workers=3)


# --------------------------------------------------------------------------- metadata, pause, resume, cancel


def _blocked(fake: FakeDownloader, path: str = "model.safetensors") -> tuple[threading.Event, threading.Event]:
    gate, started = threading.Event(), threading.Event()
    fake.block_paths[path] = gate
    fake.started[path] = started
    return gate, started


def test_reconcile_leaves_a_row_another_process_holds(tmp_path, fake, uow) -> None:
    from domain.downloads.model import Download

    with uow:
        row = uow.downloads.add(Download(model_id="tiny-v1", status=DownloadStatus.DOWNLOADING))
        uow.commit()
    service = make_service(tmp_path, fake, uow)
    holder = threading.Event()
    release = threading.Event()

    def hold() -> None:  # flock is per open file description: a second open in this process contends
        with service.layout.model_lock("tiny-v1"):
            holder.set()
            release.wait(5)

    t = threading.Thread(target=hold)
    t.start()
    assert holder.wait(5)
    try:
        assert service.reconcile_after_crash() == []
        assert service.get(row.id).status is DownloadStatus.DOWNLOADING
    finally:
        release.set()
        t.join()


# --------------------------------------------------------------------------- helpers


def _model(uow: InMemoryUnitOfWork, key: str) -> Model | None:
    with uow:
        return uow.models.get(key)


def _wait_until(predicate, timeout: float = 5.0) -> None:
    import time

    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached")
        time.sleep(0.01)


def test_install_refuses_a_staged_folder_missing_a_manifest_file(tmp_path) -> None:
    from application.errors import IntegrityError

    layout = FilesystemModelStore(tmp_path)
    rev = "a" * 40
    staged = layout.staging_for("m", rev)
    staged.mkdir(parents=True)
    (staged / "config.json").write_bytes(CONFIG)
    manifest = Manifest(key="m", repo_id="org/m", revision=rev, source=None, files=[
        {"path": "config.json", "size": len(CONFIG), "sha256": sha(CONFIG)},
        {"path": "model.safetensors", "size": len(WEIGHTS), "sha256": sha(WEIGHTS)}])
    with pytest.raises(IntegrityError, match="model.safetensors"):
        layout.install("m", rev, staged, manifest)
    assert not os.path.lexists(layout.model_path("m")) and not layout.revision_dir("m", rev).exists()


@pytest.mark.parametrize("created_by", ["adopted", None])
def test_reinstalling_a_revision_keeps_a_folder_mlxm_did_not_download(tmp_path, created_by) -> None:
    layout = FilesystemModelStore(tmp_path)
    rev = "b" * 40
    existing = layout.revision_dir("m", rev)
    existing.mkdir(parents=True)
    (existing / "weights.bin").write_bytes(b"user bytes")
    if created_by is not None:
        (existing / ".mlxm.json").write_text(Manifest(key="m", repo_id="org/m", revision=rev, source="adopted",
                                                      created_by=created_by).to_json())
    staged = layout.staging_for("m", rev)
    staged.mkdir(parents=True)
    (staged / "config.json").write_bytes(CONFIG)
    layout.install("m", rev, staged, Manifest(key="m", repo_id="org/m", revision=rev, source=None,
                                              files=[{"path": "config.json", "size": len(CONFIG), "sha256": None}]))
    assert (layout.model_path("m") / "config.json").read_bytes() == CONFIG
    kept = [p for p in existing.parent.iterdir() if p.name != rev]
    assert len(kept) == 1 and (kept[0] / "weights.bin").read_bytes() == b"user bytes"


def test_reinstalling_a_revision_mlxm_downloaded_replaces_it(tmp_path) -> None:
    layout = FilesystemModelStore(tmp_path)
    rev = "c" * 40
    existing = layout.revision_dir("m", rev)
    existing.mkdir(parents=True)
    (existing / ".mlxm.json").write_text(Manifest(key="m", repo_id="org/m", revision=rev, source=None).to_json())
    staged = layout.staging_for("m", rev)
    staged.mkdir(parents=True)
    (staged / "config.json").write_bytes(CONFIG)
    layout.install("m", rev, staged, Manifest(key="m", repo_id="org/m", revision=rev, source=None))
    assert [p.name for p in existing.parent.iterdir()] == [rev]


class _RivalTakesTheLock(FilesystemModelStore):
    """After this process releases a model's lock, a rival (another fd, like another process) grabs it."""

    def __init__(self, home: Path) -> None:
        super().__init__(home)
        self.rival_fd: int | None = None

    def model_lock(self, key, **kwargs):
        import contextlib
        import fcntl

        inner = super().model_lock(key, **kwargs)

        @contextlib.contextmanager
        def wrapped():
            got = False
            try:
                with inner as got:
                    yield got
            finally:
                if got and self.rival_fd is None:
                    self.rival_fd = os.open(self.lock_path(key), os.O_RDWR)
                    fcntl.flock(self.rival_fd, fcntl.LOCK_EX)

        return wrapped()

    def release_rival(self) -> None:
        if self.rival_fd is not None:
            os.close(self.rival_fd)


def test_cancel_clears_its_partial_data_before_releasing_the_lock(tmp_path, fake, uow) -> None:
    _, started = _blocked(fake)
    layout = _RivalTakesTheLock(tmp_path)
    service = DownloadService(lambda: uow, StaticCatalogProvider(make_catalog()), fake, FakeClock(), layout)
    download = service.start("tiny")
    assert started.wait(5)
    canceller = threading.Thread(target=service.cancel, args=(download.id,), daemon=True)
    canceller.start()
    try:
        final = None
        for _ in range(100):  # a cancel stuck behind the rival's lock never gets here
            final = service.get(download.id)
            if final.status is DownloadStatus.CANCELLED:
                break
            threading.Event().wait(0.05)
        assert final is not None and final.status is DownloadStatus.CANCELLED
        assert not list((tmp_path / "staging").rglob("*.part"))
        assert layout.rival_fd is not None  # the rival really held the lock meanwhile
    finally:
        layout.release_rival()
        canceller.join(10)


@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="names fsynced fds through /proc")
def test_installed_files_are_fsynced_before_the_library_link_switches(tmp_path, fake, uow, monkeypatch) -> None:
    synced: list[str] = []
    real_fsync, real_replace = os.fsync, os.replace
    switched: list[list[str]] = []

    def fsync(fd: int) -> None:
        synced.append(os.readlink(f"/proc/self/fd/{fd}"))
        real_fsync(fd)

    def replace(src, dst) -> None:
        if Path(dst) == tmp_path / "models" / "tiny-v1":
            switched.append(list(synced))  # what was durable when the model became visible
        real_replace(src, dst)

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "replace", replace)
    model = make_service(tmp_path, fake, uow).pull("tiny").model
    revision_dir = Path(model.local_path).resolve()
    assert len(switched) == 1
    durable = set(switched[0])
    for name in ("config.json", "model.safetensors", ".mlxm.json"):
        assert any(p.endswith("/" + name) for p in durable), name
    assert str(revision_dir.parent) in durable  # the rename into .revisions/<key>/
