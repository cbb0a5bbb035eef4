import pytest

from adapters.catalog.embedded import EmbeddedCatalogProvider
from adapters.memory.repositories import InMemoryUnitOfWork
from application.catalog.selection import SELECTION_KEY, SelectionService
from application.errors import NotInstalled
from domain.enums import DownloadStatus, ModelType
from domain.errors import UnknownModel
from domain.library.models import Model


@pytest.fixture
def setup():
    uow = InMemoryUnitOfWork()
    with uow:
        uow.models.add(Model("my-llama", model_type=ModelType.TEXT_GEN, local_path="/m"))
        uow.models.add(Model("half-done", model_type=ModelType.TEXT_GEN, status=DownloadStatus.DOWNLOADING))
        uow.commit()
    return SelectionService(lambda: uow, EmbeddedCatalogProvider()), uow


def test_an_installed_local_model_can_be_selected_and_stays_selected(setup):
    service, uow = setup
    assert service.select("my-llama").model_id == "my-llama"
    assert uow.settings.get(SELECTION_KEY) == "my-llama"
    current = service.current()
    assert current.model_id == "my-llama" and current.changed is False


def test_aliases_still_become_canonical_and_unknown_names_raise(setup):
    service, uow = setup
    # Issue 15: the selection is the default model of requests, so a catalog model must be installed first.
    with pytest.raises(NotInstalled, match="--pull"):
        service.select("qwen3-4b")
    with uow:
        uow.models.add(Model("qwen3-4b-instruct-2507-4bit-v1", model_type=ModelType.TEXT_GEN, local_path="/q"))
        uow.commit()
    assert service.select("qwen3-4b").model_id == "qwen3-4b-instruct-2507-4bit-v1"
    with pytest.raises(UnknownModel):
        service.select("half-done")  # not installed
    with pytest.raises(UnknownModel):
        service.select("nothing-like-it")
    # A local selection whose model was removed is normalised like any unknown selection.
    with uow:
        uow.settings.set(SELECTION_KEY, "gone-model")
        uow.commit()
    assert service.current().changed is True
