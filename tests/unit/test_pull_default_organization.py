"""`MLX_MANAGER_HF_ORGANIZATION`: a bare name that is not in the catalog is pulled as `<org>/<name>`."""

from __future__ import annotations

import pytest

from adapters.catalog.embedded import StaticCatalogProvider
from adapters.memory.repositories import FakeClock, InMemoryUnitOfWork
from application.downloads.service import DownloadService
from application.downloads.targets import resolve_pull_target
from domain.errors import UnknownModel
from entrypoints.composition.settings import ManagerSettings
from tests.support.fake_downloader import FakeDownloader
from tests.support.memory_paths import MemPath
from tests.support.download_catalog import CONFIG, WEIGHTS, make_catalog


def test_bare_names_try_the_organization_after_the_catalog() -> None:
    catalog = make_catalog()
    assert resolve_pull_target(catalog, "tiny", "mlx-community").key == "tiny-v1"  # the catalog wins
    target = resolve_pull_target(catalog, "Qwen3-0.6B-4bit@abc123", "mlx-community")
    assert (target.key, target.revision, target.catalog_model) == ("mlx-community/Qwen3-0.6B-4bit", "abc123", None)
    assert resolve_pull_target(catalog, "other/Qwen3", "mlx-community").key == "other/Qwen3"  # explicit org kept
    with pytest.raises(UnknownModel):
        resolve_pull_target(catalog, "Qwen3-0.6B-4bit")  # no organization set: still unknown


def test_pull_of_a_bare_name_installs_the_organization_repo() -> None:
    home, uow, fake = MemPath.new_home(), InMemoryUnitOfWork(), FakeDownloader()
    fake.add_repo("mlx-community/Tiny-4bit", {"config.json": CONFIG, "model.safetensors": WEIGHTS})
    fake.store = home.store
    service = DownloadService(lambda: uow, StaticCatalogProvider(make_catalog()), fake, FakeClock(), home.store,
                              default_organization="mlx-community")
    result = service.pull("Tiny-4bit")
    assert result.model.model_id == "mlx-community/Tiny-4bit" and result.model.repo_id == "mlx-community/Tiny-4bit"


def test_the_setting_reaches_the_download_service(tmp_path, monkeypatch) -> None:
    from dependency_injector import providers

    from entrypoints.composition.container import Container
    from entrypoints.composition.settings import Settings

    monkeypatch.setenv("MLX_MANAGER_HF_ORGANIZATION", "mlx-community")
    assert ManagerSettings().hf_organization == "mlx-community"
    container = Container()
    container.settings.override(providers.Object(Settings(manager=ManagerSettings(home=tmp_path))))
    assert container.download_service()._default_organization == "mlx-community"
