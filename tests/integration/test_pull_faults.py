"""The pull use case with the REAL huggingface_hub client against the loopback hub, faults injected.

Each test asserts the outcome the issue asks for: resume after a drop, rejection of wrong
bytes, failover on 404/500, progress while the server is slow, mirror fall-through.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

os.environ.setdefault("HF_HUB_DISABLE_XET", "1")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")

import pytest

from adapters.catalog.embedded import StaticCatalogProvider
from adapters.system.clock import SystemClock
from adapters.downloads.dispatch import SourceDispatchingDownloader
from adapters.huggingface import HuggingFaceDownloader
from adapters.memory.repositories import InMemoryUnitOfWork
from adapters.mirror import HttpMirrorDownloader
from application.downloads.service import DownloadService
from adapters.filesystem.model_store import FilesystemModelStore
from application.downloads.updates import UpdateService
from domain.catalog.model import catalog_from_dict
from domain.enums import DownloadStatus, SourceKind
from domain.errors import NoSourceAvailable
from tests.support.fake_hub import FakeHub, Fault

CONFIG = b'{"model_type": "llama", "architectures": ["LlamaForCausalLM"]}'
WEIGHTS = os.urandom(2_000_000)
REPO = "org/tiny"


@pytest.fixture
def hub():
    with FakeHub() as h:
        yield h


def catalog(*sources):
    sources = sources or ({"kind": "huggingface_repo", "value": REPO, "priority": 10},)
    return catalog_from_dict({"default_model": "tiny-v1", "models": [
        {"id": "tiny-v1", "type": "text-gen", "family": "llama", "aliases": ["tiny"], "sources": list(sources)}]})


def service_for(hub: FakeHub, home: Path, cat=None, mirror: str | None = None, **kwargs):
    downloader = SourceDispatchingDownloader({
        SourceKind.HUGGINGFACE_REPO: HuggingFaceDownloader(endpoint=hub.url, backoff_seconds=0.01),
        SourceKind.HTTP_MIRROR: HttpMirrorDownloader(base_url=lambda: mirror, backoff_seconds=0.01),
    })
    uow = InMemoryUnitOfWork()
    service = DownloadService(lambda: uow, StaticCatalogProvider(cat or catalog()), downloader, SystemClock(),
                              FilesystemModelStore(home), **kwargs)
    return service, UpdateService(service, downloader), uow


def test_dropped_connection_is_resumed_with_little_redownloaded(hub, tmp_path, monkeypatch) -> None:
    monkeypatch.delenv("MLX_MIRROR_BASE_URL", raising=False)
    hub.add_repo(REPO, {"config.json": CONFIG, "model.safetensors": WEIGHTS})
    hub.inject("model.safetensors", Fault.drop_connection_after(700_000, times=1))
    service, _, _ = service_for(hub, tmp_path)
    model = service.pull("tiny").model
    assert (Path(model.local_path) / "model.safetensors").read_bytes() == WEIGHTS
    gets = hub.requests_for("/resolve/", "GET")
    ranged = [r for r in gets if "model.safetensors" in r.path and r.headers.get("Range")]
    assert ranged and ranged[0].headers["Range"].startswith("bytes=")
    served = hub.bytes_served[f"{REPO}/model.safetensors"]
    assert served - len(WEIGHTS) <= len(WEIGHTS) // 100  # at most 1% fetched twice


def test_wrong_bytes_rejected_nothing_installed_old_version_intact(hub, tmp_path) -> None:
    hub.add_repo(REPO, {"config.json": CONFIG, "model.safetensors": WEIGHTS})
    service, updates, uow = service_for(hub, tmp_path)
    old = service.pull("tiny").model

    new_weights = os.urandom(len(WEIGHTS))
    hub.add_repo(REPO, {"config.json": CONFIG, "model.safetensors": new_weights})
    hub.inject("model.safetensors", Fault.corrupt())
    with pytest.raises(NoSourceAvailable) as err:
        updates.update("tiny")
    message = str(err.value)
    expected = hashlib.sha256(new_weights).hexdigest()
    received = hashlib.sha256(bytes(b ^ 0xFF for b in new_weights)).hexdigest()
    assert f"model.safetensors: expected sha256 {expected}, received sha256 {received}" in message
    link = tmp_path / "models" / "tiny-v1"
    assert (link / "model.safetensors").read_bytes() == WEIGHTS  # old version intact and current
    with uow:
        assert uow.models.get("tiny-v1").revision == old.revision
    assert [r.ok for r in updates.verify("tiny")] == [True]
    assert not list((tmp_path / "staging").rglob("model.safetensors*"))


def test_wrong_bytes_on_first_install_leave_nothing_installed(hub, tmp_path) -> None:
    hub.add_repo(REPO, {"config.json": CONFIG, "model.safetensors": WEIGHTS})
    hub.inject("model.safetensors", Fault.corrupt())
    service, _, uow = service_for(hub, tmp_path)
    with pytest.raises(NoSourceAvailable, match="expected sha256"):
        service.pull("tiny")
    assert not (tmp_path / "models" / "tiny-v1").exists()
    with uow:
        assert not uow.models.get("tiny-v1").is_installed


@pytest.mark.parametrize("status", [404, 500])
def test_failing_mirror_fails_over_to_huggingface(hub, tmp_path, status) -> None:
    hub.add_repo(REPO, {"config.json": CONFIG, "model.safetensors": WEIGHTS})
    hub.inject("/mirror/*", Fault.status(status))
    cat = catalog({"kind": "http_mirror", "value": REPO, "priority": 1},
                  {"kind": "huggingface_repo", "value": REPO, "priority": 10})
    service, _, _ = service_for(hub, tmp_path, cat, mirror=f"{hub.url}/mirror")
    model = service.pull("tiny").model
    assert {f.source for f in model.files} == {f"huggingface_repo:{REPO}"}
    assert hub.requests_for("/mirror/org/tiny/model.safetensors", "GET")  # the mirror was tried first
    assert (Path(model.local_path) / "model.safetensors").read_bytes() == WEIGHTS


def test_working_mirror_is_used_by_priority(hub, tmp_path) -> None:
    hub.add_repo(REPO, {"config.json": CONFIG, "model.safetensors": WEIGHTS})
    cat = catalog({"kind": "http_mirror", "value": REPO, "priority": 1},
                  {"kind": "huggingface_repo", "value": REPO, "priority": 10})
    service, _, _ = service_for(hub, tmp_path, cat, mirror=f"{hub.url}/mirror")
    model = service.pull("tiny").model
    assert {f.source for f in model.files} == {f"http_mirror:{REPO}"}
    assert not hub.requests_for("/resolve/", "GET")


def test_server_error_on_the_only_source_is_a_clear_error(hub, tmp_path) -> None:
    hub.add_repo(REPO, {"config.json": CONFIG, "model.safetensors": WEIGHTS})
    hub.inject("model.safetensors", Fault.status(500))
    service, _, uow = service_for(hub, tmp_path)
    with pytest.raises(NoSourceAvailable) as err:
        service.pull("tiny")
    assert f"huggingface_repo:{REPO}" in str(err.value) and "HTTP 500" in str(err.value)
    with uow:
        row = uow.downloads.latest_for("tiny-v1")
    assert row.status is DownloadStatus.FAILED and "HTTP 500" in row.error


def test_unconfigured_mirror_falls_through_to_huggingface(hub, tmp_path, monkeypatch) -> None:
    monkeypatch.delenv("MLX_MIRROR_BASE_URL", raising=False)
    hub.add_repo(REPO, {"config.json": CONFIG, "model.safetensors": WEIGHTS})
    cat = catalog({"kind": "http_mirror", "value": REPO, "priority": 1},
                  {"kind": "huggingface_repo", "value": REPO, "priority": 10})
    service, _, _ = service_for(hub, tmp_path, cat, mirror=None)
    model = service.pull("tiny").model
    assert {f.source for f in model.files} == {f"huggingface_repo:{REPO}"}
    assert not hub.requests_for("/mirror/")


def test_slow_server_keeps_reporting_progress(hub, tmp_path) -> None:
    weights = os.urandom(300_000)
    hub.add_repo(REPO, {"config.json": CONFIG, "model.safetensors": weights})
    hub.inject("model.safetensors", Fault.slow(bytes_per_sec=400_000))
    service, _, _ = service_for(hub, tmp_path, progress_interval=0.05, persist_interval=0.1)
    seen = []
    service.pull("tiny", seen.append)
    during = [p for p in seen if p.status is DownloadStatus.DOWNLOADING and 0 < p.downloaded_bytes < p.total_bytes]
    assert len({p.downloaded_bytes for p in during}) >= 5  # many distinct updates while bytes trickle in
    assert [p.downloaded_bytes for p in during] == sorted(p.downloaded_bytes for p in during)
    assert any(p.bytes_per_second and p.eta_seconds is not None for p in during)
    assert seen[-1].status is DownloadStatus.COMPLETED


def test_offline_mode_contacts_no_source(hub, tmp_path) -> None:
    hub.add_repo(REPO, {"config.json": CONFIG})
    downloader = HuggingFaceDownloader(endpoint=hub.url, offline=True)
    uow = InMemoryUnitOfWork()
    service = DownloadService(lambda: uow, StaticCatalogProvider(catalog()), downloader, SystemClock(),
                              FilesystemModelStore(tmp_path))
    with pytest.raises(NoSourceAvailable, match="offline"):
        service.pull("tiny")
    assert hub.requests == []


def test_hf_token_is_sent_for_gated_repos(hub, tmp_path, monkeypatch) -> None:
    hub.add_repo(REPO, {"config.json": CONFIG, "model.safetensors": WEIGHTS}, gated=True)
    hub.tokens.add("hf_secret")
    service, _, _ = service_for(hub, tmp_path)
    with pytest.raises(NoSourceAvailable):
        service.pull("tiny")
    monkeypatch.setenv("HF_TOKEN", "hf_secret")  # read at call time
    model = service.pull("tiny").model
    assert (Path(model.local_path) / "model.safetensors").read_bytes() == WEIGHTS


def test_wrong_bytes_in_a_small_non_lfs_file_are_caught_by_its_git_blob_id(hub, tmp_path) -> None:
    from tests.support.fake_hub import git_blob_sha1

    hub.add_repo(REPO, {"config.json": CONFIG, "model.safetensors": WEIGHTS})
    hub.inject("config.json", Fault.corrupt())  # same length, so a size check alone would pass
    service, _, _ = service_for(hub, tmp_path)
    with pytest.raises(NoSourceAvailable) as err:
        service.pull("tiny")
    assert f"config.json: expected git blob sha1 {git_blob_sha1(CONFIG)}" in str(err.value)
    assert not (tmp_path / "models" / "tiny-v1").exists()
