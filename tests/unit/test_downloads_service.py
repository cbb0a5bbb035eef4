"""The pull and update use cases on fakes: in-memory unit of work, a fake downloader writing into the
in-memory model store, a fake clock. `home` is a `MemPath` (tests/support/memory_paths.py): the store's
files, read and written the way the integration tests do it with real paths.

Tests about real files (flock between processes, fsync order, the filesystem adapter's install) are in
tests/integration/test_downloads_service.py.
"""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest

from adapters.catalog.embedded import StaticCatalogProvider
from adapters.memory.repositories import FakeClock, InMemoryUnitOfWork
from application.downloads.service import DownloadService
from application.downloads.targets import infer_type_and_family, resolve_pull_target
from application.errors import Conflict, DownloadCancelled, SourceError, Unauthorized
from application.downloads.updates import UpdateService
from domain.enums import DownloadStatus, ModelType
from domain.errors import NoSourceAvailable, UnknownModel
from domain.library.models import Model
from tests.support.download_catalog import CONFIG, WEIGHTS, make_catalog, sha, tiny_repo_downloader
from tests.support.fake_downloader import FakeDownloader
from tests.support.memory_paths import MemPath

@pytest.fixture
def fake() -> FakeDownloader:
    return tiny_repo_downloader()


@pytest.fixture
def uow() -> InMemoryUnitOfWork:
    return InMemoryUnitOfWork()


@pytest.fixture
def home() -> MemPath:
    return MemPath.new_home()


def make_service(home: MemPath, fake: FakeDownloader, uow: InMemoryUnitOfWork, catalog=None) -> DownloadService:
    fake.store = home.store  # the downloader writes its partial files into the same store
    return DownloadService(lambda: uow, StaticCatalogProvider(catalog or make_catalog()), fake, FakeClock(),
                           home.store, max_workers=3)


# --------------------------------------------------------------------------- names


def test_resolve_alias_repo_and_revision() -> None:
    catalog = make_catalog()
    assert resolve_pull_target(catalog, "TINY").key == "tiny-v1"
    assert resolve_pull_target(catalog, "org/tiny").key == "tiny-v1"
    other = resolve_pull_target(catalog, "someone/else@abc123")
    assert (other.key, other.revision, other.catalog_model) == ("someone/else", "abc123", None)
    with pytest.raises(UnknownModel) as err:
        resolve_pull_target(catalog, "tin")
    assert "tiny" in err.value.suggestions


def test_infer_type_and_family_from_config() -> None:
    assert infer_type_and_family({"model_type": "llama", "architectures": ["LlamaForCausalLM"]}) == (
        ModelType.TEXT_GEN, "llama")
    assert infer_type_and_family({"model_type": "whisper"})[0] is ModelType.AUDIO
    assert infer_type_and_family({"model_type": "qwen2_vl", "vision_config": {}})[0] is ModelType.VISION
    assert infer_type_and_family({"model_type": "bert", "architectures": ["BertModel"]})[0] is ModelType.EMBEDDINGS


# --------------------------------------------------------------------------- pull


def test_pull_installs_verified_files_and_records_them(home, fake, uow) -> None:
    service = make_service(home, fake, uow)
    result = service.pull("tiny")

    model = result.model
    path = (home / model.local_path)
    assert path == home / "models" / "tiny-v1" and path.is_symlink()
    assert (path / "model.safetensors").read_bytes() == WEIGHTS
    assert model.status is DownloadStatus.COMPLETED and model.is_installed
    assert {f.path: (f.size, f.sha256) for f in model.files} == {
        "config.json": (len(CONFIG), sha(CONFIG)), "model.safetensors": (len(WEIGHTS), sha(WEIGHTS))}
    assert all(f.revision == model.revision and f.source == "huggingface_repo:org/tiny" for f in model.files)
    with uow:
        assert uow.models.get("tiny-v1").revision == fake.refs["org/tiny"]["main"]
        download = uow.downloads.latest_for("tiny-v1")
    assert download.status is DownloadStatus.COMPLETED and download.downloaded_bytes == len(CONFIG) + len(WEIGHTS)
    # No leftovers: staging is empty, no hash caches or partials were installed.
    assert not list((home / "staging").glob("tiny-v1/*"))
    assert sorted(p.name for p in path.iterdir()) == [".mlxm.json", "config.json", "model.safetensors"]
    # A second pull is a no-op.
    again = service.pull("tiny-v1")
    assert again.already_installed and fake.served["model.safetensors"] == len(WEIGHTS)


def test_failover_skips_failing_and_disabled_sources(home, fake, uow) -> None:
    catalog = make_catalog([
        {"kind": "huggingface_repo", "value": "org/disabled", "priority": 1, "enabled": False},
        {"kind": "http_mirror", "value": "org/tiny", "priority": 5},
        {"kind": "huggingface_repo", "value": "org/tiny", "priority": 10},
    ])
    fake.mirror_configured = False
    result = make_service(home, fake, uow, catalog).pull("tiny-v1")
    assert {f.source for f in result.model.files} == {"huggingface_repo:org/tiny"}


def test_every_failure_listed_when_all_sources_fail(home, fake, uow) -> None:
    catalog = make_catalog([
        {"kind": "http_mirror", "value": "org/tiny", "priority": 5},
        {"kind": "huggingface_repo", "value": "org/tiny", "priority": 10},
    ])
    fake.mirror_configured = False
    fake.fail["huggingface_repo:org/tiny:model.safetensors"] = SourceError("HTTP 500")
    with pytest.raises(NoSourceAvailable) as err:
        make_service(home, fake, uow, catalog).pull("tiny-v1")
    message = str(err.value)
    assert "http_mirror:org/tiny" in message and "MLX_MIRROR_BASE_URL" in message
    assert "huggingface_repo:org/tiny" in message and "HTTP 500" in message
    assert not (home / "models" / "tiny-v1").exists()


def test_no_fallback_source_ends_the_chain(home, fake, uow) -> None:
    catalog = make_catalog([
        {"kind": "huggingface_repo", "value": "org/missing", "priority": 1, "allow_fallback": False},
        {"kind": "huggingface_repo", "value": "org/tiny", "priority": 10},
    ])
    with pytest.raises(NoSourceAvailable) as err:
        make_service(home, fake, uow, catalog).pull("tiny-v1")
    assert [s for s, _ in err.value.failures] == ["huggingface_repo:org/missing"]


def test_corrupt_bytes_are_rejected_and_nothing_is_installed(home, fake, uow) -> None:
    fake.corrupt_paths.add("model.safetensors")
    service = make_service(home, fake, uow)
    with pytest.raises(NoSourceAvailable) as err:
        service.pull("tiny")
    received = sha(bytes(b ^ 0xFF for b in WEIGHTS))
    assert f"model.safetensors: expected sha256 {sha(WEIGHTS)}, received sha256 {received}" in str(err.value)
    assert not (home / "models" / "tiny-v1").exists()
    assert not list((home / "staging").rglob("model.safetensors*"))  # bad bytes are not kept for resume
    with uow:
        assert uow.models.get("tiny-v1").status is DownloadStatus.FAILED
        assert uow.downloads.latest_for("tiny-v1").status is DownloadStatus.FAILED


def test_short_file_without_sha_is_rejected_by_size(home, uow) -> None:
    class ShortDownloader(FakeDownloader):
        def download_from_source(self, source, file, progress):
            super().download_from_source(source, file, progress)
            self.store.files[file.dest] = self.store.files[file.dest][: max(0, file.size - 1)]
            return file.dest

    fake = ShortDownloader()
    fake.add_repo("org/tiny", {"config.json": CONFIG})
    with pytest.raises(NoSourceAvailable) as err:
        make_service(home, fake, uow).pull("tiny")
    assert f"config.json: expected {len(CONFIG)} bytes, received {len(CONFIG) - 1} bytes" in str(err.value)


def test_sharded_checkpoint_complete_only_when_every_shard_verifies(home, uow) -> None:
    shards = {f"model-0000{i}-of-00003.safetensors": bytes([i]) * 500 for i in range(1, 4)}
    index = json.dumps({"weight_map": {f"w{i}": name for i, name in enumerate(shards)}}).encode()
    fake = FakeDownloader()
    fake.add_repo("org/tiny", {"config.json": CONFIG, "model.safetensors.index.json": index, **shards})
    fake.corrupt_paths.add("model-00003-of-00003.safetensors")
    service = make_service(home, fake, uow)
    with pytest.raises(NoSourceAvailable):
        service.pull("tiny")
    assert not (home / "models" / "tiny-v1").exists()
    fake.corrupt_paths.clear()
    served_before = dict(fake.served)
    model = service.pull("tiny").model
    assert sorted(f.path for f in model.files if "of-00003" in f.path) == sorted(shards)
    # Shards verified in the failed attempt were kept and not fetched again.
    assert fake.served["model-00001-of-00003.safetensors"] == served_before["model-00001-of-00003.safetensors"]


def test_unauthorized_source_falls_over_then_reports(home, fake, uow) -> None:
    fake.fail["huggingface_repo:org/tiny"] = Unauthorized("org/tiny is gated: set HF_TOKEN")
    with pytest.raises(NoSourceAvailable) as err:
        make_service(home, fake, uow).pull("tiny")
    assert "gated" in str(err.value)


def test_progress_is_throttled_and_ends_complete(home, uow) -> None:
    fake = FakeDownloader(chunk_size=16)
    fake.add_repo("org/tiny", {"config.json": CONFIG, "model.safetensors": WEIGHTS})
    seen = []
    make_service(home, fake, uow).pull("tiny", seen.append)
    chunks = len(WEIGHTS) // 16
    assert 0 < len(seen) < chunks / 10  # the fake clock never advances: only milestone updates get through
    assert seen[-1].status is DownloadStatus.COMPLETED
    assert seen[-1].downloaded_bytes == seen[-1].total_bytes == len(CONFIG) + len(WEIGHTS)


# --------------------------------------------------------------------------- metadata, pause, resume, cancel


def _blocked(fake: FakeDownloader, path: str = "model.safetensors") -> tuple[threading.Event, threading.Event]:
    gate, started = threading.Event(), threading.Event()
    fake.block_paths[path] = gate
    fake.started[path] = started
    return gate, started


def test_early_metadata_then_pause_keeps_partial_and_resume_fetches_the_rest(home, uow) -> None:
    fake = FakeDownloader()
    fake.add_repo("someone/model", {"config.json": CONFIG, "model.safetensors": WEIGHTS})
    gate, started = _blocked(fake)
    service = make_service(home, fake, uow)
    download = service.start("someone/model")
    assert started.wait(5)
    _wait_until(lambda: _model(uow, "someone/model").family == "llama")
    model = _model(uow, "someone/model")
    assert model.status is DownloadStatus.DOWNLOADING and model.model_type is ModelType.TEXT_GEN
    assert not model.is_installed

    paused = service.pause(download.id)
    assert paused.status is DownloadStatus.PAUSED
    partial = list((home / "staging").rglob("model.safetensors.part"))
    assert partial and 0 < partial[0].stat().st_size < len(WEIGHTS)
    assert paused.downloaded_bytes == len(CONFIG) + partial[0].stat().st_size  # exact, not a throttled sample
    assert _model(uow, "someone/model").status is DownloadStatus.PAUSED

    half = fake.served["model.safetensors"]
    gate.set()
    service.resume(download.id)
    final = service.wait(download.id, timeout=10)
    assert final.status is DownloadStatus.COMPLETED
    assert fake.served["model.safetensors"] == len(WEIGHTS)  # the first half was not fetched twice
    assert half < len(WEIGHTS)
    assert (home / "models" / "someone" / "model" / "model.safetensors").read_bytes() == WEIGHTS


def test_cancel_removes_partial_data_and_the_uninstalled_row(home, fake, uow) -> None:
    _, started = _blocked(fake)
    service = make_service(home, fake, uow)
    download = service.start("tiny")
    assert started.wait(5)
    cancelled = service.cancel(download.id)
    assert cancelled.status is DownloadStatus.CANCELLED
    assert not list((home / "staging").rglob("*.part"))
    assert _model(uow, "tiny-v1") is None
    with pytest.raises(Conflict):
        service.cancel(download.id)


def test_concurrent_pulls_of_one_model_join(home, fake, uow) -> None:
    gate, started = _blocked(fake)
    service = make_service(home, fake, uow)
    first = service.start("tiny")
    assert started.wait(5)
    second = service.start("tiny-v1")
    assert second.id == first.id
    results, seen = [], []
    waiter = threading.Thread(target=lambda: results.append(service.pull("org/tiny", seen.append)))
    waiter.start()
    # Open the gate only once the waiter has joined the running pull (its listener is attached);
    # otherwise it could arrive after the install and pass as "already installed".
    _wait_until(lambda: len(service._active["tiny-v1"].listeners) == 1)
    gate.set()
    waiter.join(10)
    assert results and results[0].download.id == first.id and not results[0].already_installed
    assert seen and seen[-1].status is DownloadStatus.COMPLETED  # the joined pull's progress reached it
    assert fake.served["model.safetensors"] == len(WEIGHTS)  # one writer, fetched once


def test_reconcile_after_crash_pauses_orphaned_rows(home, fake, uow) -> None:
    from domain.downloads.model import Download

    with uow:
        row = uow.downloads.add(Download(model_id="tiny-v1", status=DownloadStatus.DOWNLOADING))
        uow.models.add(Model(model_id="tiny-v1", status=DownloadStatus.DOWNLOADING))
        uow.commit()
    service = make_service(home, fake, uow)
    assert service.reconcile_after_crash() == [row.id]
    assert service.get(row.id).status is DownloadStatus.PAUSED
    assert _model(uow, "tiny-v1").status is DownloadStatus.PAUSED
    service.resume(row.id)
    assert service.wait(row.id, timeout=10).status is DownloadStatus.COMPLETED


# --------------------------------------------------------------------------- layout, legacy folders


def test_foreign_folder_at_the_canonical_place_is_never_deleted(home, fake, uow) -> None:
    foreign = home / "models" / "tiny-v1"
    foreign.mkdir(parents=True)
    (foreign / "weights.bin").write_bytes(b"mine")
    with pytest.raises(Conflict):
        make_service(home, fake, uow).pull("tiny")
    assert (foreign / "weights.bin").read_bytes() == b"mine"


def _legacy_folder(home: Path, name: str, files: dict[str, bytes]) -> Path:
    folder = home / "models" / name
    folder.mkdir(parents=True)
    for path, data in files.items():
        (folder / path).write_bytes(data)
    return folder


def test_legacy_alias_folder_adopted_with_matching_provenance(home, fake, uow) -> None:
    folder = _legacy_folder(home, "tiny-old", {"config.json": CONFIG, "model.safetensors": WEIGHTS})
    with uow:  # the legacy library row says where the folder came from
        uow.models.add(Model(model_id="org/tiny-legacy", repo_id="org/tiny", local_path=str(folder)))
        uow.commit()
    result = make_service(home, fake, uow).pull("tiny")
    assert any("adopted" in n for n in result.notes)
    assert fake.served == {}  # nothing downloaded
    assert not folder.exists()
    installed = (home / result.model.local_path)
    assert (installed / "model.safetensors").read_bytes() == WEIGHTS
    assert home.store.read_manifest(installed.resolve().path).created_by == "adopted"


@pytest.mark.parametrize("case", ["unknown-origin", "other-repo", "bad-hash"])
def test_legacy_alias_folder_left_alone_without_provenance(home, fake, uow, case) -> None:
    weights = WEIGHTS if case != "bad-hash" else b"x" * len(WEIGHTS)
    folder = _legacy_folder(home, "tiny-old", {"config.json": CONFIG, "model.safetensors": weights})
    if case != "unknown-origin":
        with uow:
            repo = "org/other" if case == "other-repo" else "org/tiny"
            uow.models.add(Model(model_id="legacy", repo_id=repo, local_path=str(folder)))
            uow.commit()
    result = make_service(home, fake, uow).pull("tiny")
    assert any(n.startswith(f"left alone {folder}") for n in result.notes)
    assert (folder / "model.safetensors").read_bytes() == weights  # untouched
    assert fake.served["model.safetensors"] == len(WEIGHTS)  # downloaded instead
    assert (home / result.model.local_path).resolve() != folder


# --------------------------------------------------------------------------- updates and verify


def test_check_updates_update_and_verify(home, fake, uow) -> None:
    service = make_service(home, fake, uow)
    updates = UpdateService(service, fake)
    old = service.pull("tiny").model
    old_dir = (home / old.local_path).resolve()
    assert [r.update_available for r in updates.check_updates()] == [False]
    assert updates.check_updates()[0].superseded_by == ["tiny-v2"]
    assert updates.check_updates()[0].newer_ids == ["tiny-v2"]  # a suggestion, never a switch

    new_weights = WEIGHTS[::-1]
    new_sha = fake.add_repo("org/tiny", {"config.json": CONFIG, "model.safetensors": new_weights})
    report = updates.check_updates("tiny")[0]
    assert report.update_available and report.available_revision == new_sha
    assert report.changed_files == ["model.safetensors"]

    served_before = dict(fake.served)
    outcome = updates.update("tiny")[0]
    assert outcome.updated and outcome.new_revision == new_sha
    # Delta update: the unchanged config.json was linked from the installed revision, not fetched.
    assert fake.served.get("config.json") == served_before.get("config.json")
    assert (outcome.bytes_fetched, outcome.bytes_reused) == (len(new_weights), len(CONFIG))
    link = home / "models" / "tiny-v1"
    assert (link / "model.safetensors").read_bytes() == new_weights
    assert not old_dir.exists()  # the old revision mlxm downloaded is removed after the switch
    assert [r.ok for r in updates.verify()] == [True]

    (link / "model.safetensors").write_bytes(b"\0" * len(new_weights))
    bad = updates.verify("tiny-v1")[0]
    assert not bad.ok and "model.safetensors: expected sha256" in bad.problems[0]


def test_failed_update_keeps_the_old_revision_working(home, fake, uow) -> None:
    service = make_service(home, fake, uow)
    updates = UpdateService(service, fake)
    old = service.pull("tiny").model
    fake.add_repo("org/tiny", {"config.json": CONFIG, "model.safetensors": WEIGHTS[::-1]})
    fake.corrupt_paths.add("model.safetensors")
    with pytest.raises(NoSourceAvailable):
        updates.update("tiny")
    link = home / "models" / "tiny-v1"
    assert (link / "model.safetensors").read_bytes() == WEIGHTS
    current = _model(uow, "tiny-v1")
    assert current.status is DownloadStatus.COMPLETED and current.revision == old.revision


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


def test_unsafe_listed_paths_are_refused(home, uow) -> None:
    fake = FakeDownloader()
    fake.add_repo("org/tiny", {"config.json": CONFIG, "../escape.bin": b"x" * 100})
    with pytest.raises(SourceError, match="unsafe file paths"):
        make_service(home, fake, uow).pull("tiny")
    assert not (home / "escape.bin").exists() and not (home / "staging" / "escape.bin").exists()


def test_a_link_mlxm_did_not_create_is_left_alone(home, fake, uow) -> None:
    elsewhere = home / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "weights.bin").write_bytes(b"mine")
    (home / "models").mkdir()
    (home / "models" / "tiny-v1").symlink_to(elsewhere)
    with pytest.raises(Conflict):
        make_service(home, fake, uow).pull("tiny")
    assert (home / "models" / "tiny-v1").resolve() == elsewhere and (elsewhere / "weights.bin").exists()


def test_models_without_a_source_are_skipped_by_updates(home, fake, uow) -> None:
    folder = home / "elsewhere"
    folder.mkdir()
    with uow:
        uow.models.add(Model(model_id="my-local", local_path=str(folder), managed=False))
        uow.commit()
    service = make_service(home, fake, uow)
    service.pull("tiny")
    updates = UpdateService(service, fake)
    reports = {r.model_id: r for r in updates.check_updates()}
    assert reports["my-local"].error and not reports["my-local"].update_available
    assert reports["tiny-v1"].error is None
    outcomes = {o.model_id: o for o in updates.update()}
    assert outcomes["my-local"].note and outcomes["my-local"].error is None
    assert outcomes["tiny-v1"].updated is False and outcomes["tiny-v1"].error is None
    assert folder.exists()


def test_empty_listing_is_a_source_error(home, uow) -> None:
    fake = FakeDownloader()
    fake.add_repo("org/tiny", {})
    with pytest.raises(SourceError, match="no files"):
        make_service(home, fake, uow).pull("tiny")


def test_mirror_only_catalog_entry_uses_the_pinned_catalog_file_list(home, fake, uow) -> None:
    pinned = fake.refs["org/tiny"]["main"]
    catalog = make_catalog([{"kind": "http_mirror", "value": "org/tiny"}], revision=pinned, files=[
        {"path": "config.json", "size": len(CONFIG)},
        {"path": "model.safetensors", "size": len(WEIGHTS), "sha256": sha(WEIGHTS)},
    ])
    model = make_service(home, fake, uow, catalog).pull("tiny").model
    assert model.revision == pinned
    assert {f.source for f in model.files} == {"http_mirror:org/tiny"}
    with uow:
        assert uow.downloads.latest_for("tiny-v1").source == "catalog"
    # A wrong pinned sha256 in the catalog is caught like any other mismatch.
    bad = make_catalog([{"kind": "http_mirror", "value": "org/tiny"}], revision=pinned, files=[
        {"path": "model.safetensors", "size": len(WEIGHTS), "sha256": "0" * 64}])
    other = InMemoryUnitOfWork()
    with pytest.raises(NoSourceAvailable, match="expected sha256 0000"):
        make_service(MemPath.new_home("/other"), fake, other, bad).pull("tiny")


def test_not_enough_disk_space_is_refused_before_downloading(home, fake, uow) -> None:
    from application.errors import OutOfSpace

    home.store.free_bytes = 100
    # The same condition as a disk that fills during the transfer (it was InvalidRequest: exit 2 / 400).
    with pytest.raises(OutOfSpace, match=r"not enough disk space for tiny-v1: \d+ more bytes needed, 100 free"):
        make_service(home, fake, uow).pull("tiny")
    assert fake.served == {}


def test_resume_and_wait_hands_back_the_pulls_own_error_with_its_row(home, fake, uow) -> None:
    from application.errors import OutOfSpace

    home.store.free_bytes = 100
    service = make_service(home, fake, uow)
    with pytest.raises(OutOfSpace):
        service.pull("tiny")
    [row] = service.list()
    failed, error = service.resume_and_wait(row.id)  # the row keeps only the text; the error keeps its kind
    assert failed.status is DownloadStatus.FAILED and isinstance(error, OutOfSpace)
    assert failed.error == str(error)
    home.store.free_bytes = 10**12
    done, error = service.resume_and_wait(row.id)
    assert done.status is DownloadStatus.COMPLETED and error is None
    with pytest.raises(Conflict):  # a refusal to resume is raised, not handed back
        service.resume_and_wait(row.id)


# --------------------------------------------------------------------------- review fixes


class _HostileRevision(FakeDownloader):
    """Lists files under a revision that is a path, not a commit sha."""

    evil = "../../../../victim"

    def list_files(self, source, revision, staging):
        from dataclasses import replace as _replace

        from application.downloads.ports import RemoteListing

        listing = super().list_files(source, revision, staging)
        self.real = listing.revision
        return RemoteListing(listing.repo_id, self.evil, tuple(_replace(f, revision=self.evil) for f in listing.files))

    def download_from_source(self, source, file, progress):
        from dataclasses import replace as _replace

        return super().download_from_source(source, _replace(file, revision=self.real), progress)


def test_a_revision_that_is_not_a_commit_sha_never_names_a_folder(home, uow) -> None:
    hostile = _HostileRevision()
    hostile.add_repo("org/tiny", {"config.json": CONFIG, "model.safetensors": WEIGHTS})
    root = home.parent  # everything the store holds outside its home would be under here
    with pytest.raises(NoSourceAvailable, match="not a 40-hex commit id"):
        make_service(home, hostile, uow).pull("tiny")
    assert hostile.served == {}
    outside = [p for p in root.rglob("*") if home not in p.parents and p != home]
    assert outside == []
    layout = home.store
    for bad in ("../x", "a/b", "..", ""):
        with pytest.raises(ValueError):
            layout.revision_dir("tiny-v1", bad)
        with pytest.raises(ValueError):
            layout.staging_for("tiny-v1", bad)


@pytest.mark.parametrize("extra", ["model.safetensors.sha256", "model.safetensors.part", "config.json.part.sha256"])
def test_repo_files_named_like_scratch_files_are_installed(home, uow, extra) -> None:
    body = (sha(WEIGHTS) + "  model.safetensors\n").encode()
    f = FakeDownloader()
    f.add_repo("org/tiny", {"config.json": CONFIG, "model.safetensors": WEIGHTS, extra: body})
    service = make_service(home, f, uow)
    model = service.pull("tiny").model
    folder = (home / model.local_path)
    assert sorted(p.name for p in folder.iterdir()) == sorted([".mlxm.json", "config.json", "model.safetensors", extra])
    assert (folder / extra).read_bytes() == body and (folder / "model.safetensors").read_bytes() == WEIGHTS
    assert [v.ok for v in UpdateService(service, f).verify()] == [True]


def test_repo_at_the_installed_sha_of_a_catalog_model_is_that_model(home, fake, uow) -> None:
    service = make_service(home, fake, uow)
    first = service.pull("tiny")
    served = dict(fake.served)
    pinned = first.model.revision
    for name in (f"org/tiny@{pinned}", f"org/tiny@{pinned[:12]}"):
        again = service.pull(name)
        assert again.already_installed and again.model.model_id == "tiny-v1"
    assert fake.served == served  # not one byte fetched twice
    assert [p.relative_to(home).parts[:3] for p in home.rglob("model.safetensors")] == [
        ("models", ".revisions", "tiny-v1")]
    with uow:
        assert [m.model_id for m in uow.models.list()] == ["tiny-v1"]
    # Another sha of the same repo is still its own model (a new revision is a new model).
    other = fake.add_repo("org/tiny", {"config.json": CONFIG, "model.safetensors": WEIGHTS[::-1]}, ref="dev")
    assert service.pull(f"org/tiny@{other}").model.model_id == "org/tiny"


def test_legacy_folder_of_symbolic_links_is_left_alone(home, fake, uow) -> None:
    blobs = home / "models" / "blobs"
    blobs.mkdir(parents=True)
    (blobs / "w").write_bytes(WEIGHTS)
    (blobs / "c").write_bytes(CONFIG)
    folder = home / "models" / "tiny-old"
    folder.mkdir()
    (folder / "model.safetensors").symlink_to("../blobs/w")  # relative: it would dangle once moved
    (folder / "config.json").symlink_to("../blobs/c")
    with uow:
        uow.models.add(Model(model_id="legacy", repo_id="org/tiny", local_path=str(folder)))
        uow.commit()
    service = make_service(home, fake, uow)
    result = service.pull("tiny")
    assert any(n.startswith(f"left alone {folder}") and "symbolic link" in n for n in result.notes)
    assert (folder / "model.safetensors").read_bytes() == WEIGHTS  # links still resolve where they were
    assert ((home / result.model.local_path) / "model.safetensors").read_bytes() == WEIGHTS
    assert fake.served["model.safetensors"] == len(WEIGHTS)
    assert [v.ok for v in UpdateService(service, fake).verify("tiny")] == [True]


def test_adoption_retires_the_legacy_row_of_the_moved_folder(home, fake, uow) -> None:
    folder = _legacy_folder(home, "tiny-old", {"config.json": CONFIG, "model.safetensors": WEIGHTS})
    with uow:
        uow.models.add(Model(model_id="org/tiny-legacy", repo_id="org/tiny", local_path=str(folder),
                             status=DownloadStatus.COMPLETED))
        uow.commit()
    service = make_service(home, fake, uow)
    result = service.pull("tiny")
    assert any("adopted" in n for n in result.notes)
    with uow:
        assert [m.model_id for m in uow.models.list()] == ["tiny-v1"]
    reports = UpdateService(service, fake).verify()
    assert [(r.model_id, r.ok) for r in reports] == [("tiny-v1", True)]


def test_adoption_needs_no_free_space(home, fake, uow) -> None:
    folder = _legacy_folder(home, "tiny-old", {"config.json": CONFIG, "model.safetensors": WEIGHTS})
    with uow:
        uow.models.add(Model(model_id="org/tiny-legacy", repo_id="org/tiny", local_path=str(folder)))
        uow.commit()
    home.store.free_bytes = 100
    result = make_service(home, fake, uow).pull("tiny")
    assert any("adopted" in n for n in result.notes) and fake.served == {}
    assert ((home / result.model.local_path) / "model.safetensors").read_bytes() == WEIGHTS


def test_unlisted_leftovers_in_staging_are_not_installed(home, fake, uow) -> None:
    layout = home.store
    staged = home / layout.staging_for("tiny-v1", fake.refs["org/tiny"]["main"])
    staged.mkdir(parents=True)
    (staged / "model.safetensors.part").write_bytes(WEIGHTS[:100])  # an older layout's partial
    (staged / "config.json.sha256").write_text("stale cache")
    model = make_service(home, fake, uow).pull("tiny").model
    assert sorted(p.name for p in (home / model.local_path).iterdir()) == [".mlxm.json", "config.json",
                                                                         "model.safetensors"]
