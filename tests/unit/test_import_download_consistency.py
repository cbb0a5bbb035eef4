"""A pull's install and its library row change together (index consistency, issue 7).

The failure is injected at the database step that records the completed install, after the
files were installed: the install must be undone, so no model is on disk that the index does
not describe (a fresh pull leaves no `models/<key>`, an update keeps the old revision live).
On the in-memory model store; `home` is a `MemPath` (tests/support/memory_paths.py).
"""

from __future__ import annotations

import json

import pytest

from adapters.catalog.embedded import StaticCatalogProvider
from adapters.memory.repositories import FakeClock, InMemoryUnitOfWork
from application.downloads.service import DownloadService
from application.downloads.updates import UpdateService
from domain.enums import DownloadStatus
from tests.support.fake_downloader import FakeDownloader
from tests.support.memory_paths import MemPath
from domain.catalog.model import catalog_from_dict

CONFIG = json.dumps({"model_type": "llama", "architectures": ["LlamaForCausalLM"]}).encode()
WEIGHTS = bytes(range(256)) * 40  # 10 KiB: an LFS file for the fake downloader


def make_catalog():
    return catalog_from_dict({"default_model": "tiny-v1", "models": [{
        "id": "tiny-v1", "type": "text-gen", "family": "llama", "aliases": ["tiny", "tiny-old"],
        "sources": [{"kind": "huggingface_repo", "value": "org/tiny", "priority": 10}],
    }]})


class FailsWhenRecordingAnInstall(InMemoryUnitOfWork):
    """Commits fail while armed and a model with new files is being recorded as completed."""

    armed = False

    def commit(self) -> None:
        if self.armed and any(m.status is DownloadStatus.COMPLETED and m.revision != self.revision_before
                              for m in self.models.list()):
            raise RuntimeError("database is gone")
        super().commit()

    revision_before: str | None = None


@pytest.fixture
def env():
    home = MemPath.new_home()
    fake = FakeDownloader(store=home.store)
    fake.add_repo("org/tiny", {"config.json": CONFIG, "model.safetensors": WEIGHTS})
    uow = FailsWhenRecordingAnInstall()
    service = DownloadService(lambda: uow, StaticCatalogProvider(make_catalog()), fake, FakeClock(),
                              home.store, max_workers=2)
    return home, fake, uow, service


def test_fresh_pull_failing_at_the_database_step_installs_nothing(env):
    home, _, uow, service = env
    uow.armed = True
    with pytest.raises(RuntimeError, match="database is gone"):
        service.pull("tiny")
    link = home / "models" / "tiny-v1"
    assert not link.is_symlink() and not link.exists(), "no installed model the index does not describe"
    with uow:
        model = uow.models.get("tiny-v1")
        assert model is None or model.status is not DownloadStatus.COMPLETED
    uow.armed = False
    result = service.pull("tiny")  # the verified files were kept: the retry completes
    assert ((home / result.model.local_path) / "model.safetensors").read_bytes() == WEIGHTS


def test_update_failing_at_the_database_step_keeps_the_old_revision_live(env):
    home, fake, uow, service = env
    old = service.pull("tiny").model
    old_dir = (home / old.local_path).resolve()
    fake.add_repo("org/tiny", {"config.json": CONFIG, "model.safetensors": WEIGHTS[::-1]})
    uow.revision_before = old.revision
    uow.armed = True
    with pytest.raises(Exception):
        UpdateService(service, fake).update("tiny")
    link = home / "models" / "tiny-v1"
    assert link.resolve() == old_dir, "the library link still points at the recorded revision"
    assert (link / "model.safetensors").read_bytes() == WEIGHTS
    with uow:
        assert uow.models.get("tiny-v1").revision == old.revision


def test_adoption_failing_at_the_database_step_puts_the_folder_back(env):
    from domain.library.models import Model

    home, fake, uow, service = env
    folder = home / "models" / "tiny-old"
    folder.mkdir(parents=True)
    (folder / "config.json").write_bytes(CONFIG)
    (folder / "model.safetensors").write_bytes(WEIGHTS)
    with uow:  # a legacy row says where the folder came from: provenance matches, so it is adopted
        uow.models.add(Model(model_id="org/tiny-legacy", repo_id="org/tiny", local_path=str(folder)))
        uow.commit()
    uow.armed = True
    with pytest.raises(RuntimeError, match="database is gone"):
        service.pull("tiny")
    assert (folder / "model.safetensors").read_bytes() == WEIGHTS, "the user's folder is back where it was"
    assert sorted(p.name for p in folder.iterdir()) == ["config.json", "model.safetensors"]
    assert not (home / "models" / "tiny-v1").is_symlink()
    assert fake.served == {}
