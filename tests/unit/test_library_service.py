import json

import pytest

from adapters.catalog.embedded import EmbeddedCatalogProvider
from adapters.memory.repositories import FakeClock, InMemoryUnitOfWork
from application.errors import Conflict, InvalidRequest, NotFound, NotInstalled
from application.library.service import LibraryService, infer_model_type
from domain.enums import DownloadStatus, ModelType
from domain.library.layout import Manifest
from domain.library.models import Model
from domain.profiles.model import make_profile
from tests.support.memory_paths import MemPath


def _folder(root, name, config, weights=b"\0" * 16):
    folder = root / name
    folder.mkdir(parents=True)
    (folder / "config.json").write_text(json.dumps(config))
    (folder / "model.safetensors").write_bytes(weights)
    return folder


@pytest.fixture
def uow():
    return InMemoryUnitOfWork()


@pytest.fixture
def home() -> MemPath:
    """The in-memory model store's home (tests/support/memory_paths.py): model folders live in the store."""
    return MemPath.new_home()


@pytest.fixture
def service(uow, home):
    return LibraryService(lambda: uow, EmbeddedCatalogProvider(), FakeClock(), models_dir=home.store.models_dir,
                          store=home.store)


@pytest.mark.parametrize(
    "config, expected",
    [
        ({"model_type": "llama", "architectures": ["LlamaForCausalLM"]}, ModelType.TEXT_GEN),
        ({"model_type": "whisper", "n_mels": 80}, ModelType.AUDIO),
        ({"model_type": "soprano", "sample_rate": 32000}, ModelType.AUDIO),
        ({"model_type": "qwen2_5_vl", "vision_config": {}}, ModelType.VISION),
        ({"model_type": "bert", "architectures": ["BertModel"]}, ModelType.EMBEDDINGS),
    ],
)
def test_type_is_inferred_from_config(config, expected):
    inferred = infer_model_type(config)
    assert inferred.model_type is expected and inferred.family == config["model_type"]


@pytest.mark.parametrize("architectures", [5, {"BertModel": 1}])
def test_type_inference_ignores_architectures_that_are_not_a_list(architectures):
    assert infer_model_type({"model_type": "llama", "architectures": architectures}).model_type is ModelType.TEXT_GEN


def test_register_local_folder_then_find_it_by_name_everywhere(service, home):
    folder = _folder(home / "src", "whisper-folder", {"model_type": "whisper", "n_mels": 80}, b"x" * 100)
    model = service.register_local(str(folder), "my-whisper")
    assert model.model_type is ModelType.AUDIO and model.managed is False
    assert model.size_bytes == 100 + len((folder / "config.json").read_bytes())
    assert {f.path for f in model.files} == {"config.json", "model.safetensors"}
    assert service.show("my-whisper").local_path == str(folder.resolve())
    assert [m.model_id for m in service.list_models()] == ["my-whisper"]
    assert [m.model_id for m in service.search("my-wh").items] == ["my-whisper"]
    with pytest.raises(Conflict):
        service.register_local(str(folder), "my-whisper")


@pytest.mark.parametrize("case", ["no-config", "no-weights", "bad-json", "bad-name", "catalog-name"])
def test_register_local_rejects_what_is_not_a_model_or_a_bad_name(service, home, case):
    folder = _folder(home, "m", {"model_type": "llama"})
    name = "ok-name"
    expected = InvalidRequest
    if case == "no-config":
        (folder / "config.json").unlink()
    elif case == "no-weights":
        (folder / "model.safetensors").unlink()
    elif case == "bad-json":
        (folder / "config.json").write_text("{not json")
    elif case == "bad-name":
        name = "../escape"
    else:
        name, expected = "qwen3-4b", Conflict  # a catalog alias would be ambiguous
    with pytest.raises(expected):
        service.register_local(str(folder), name)
    assert service.list_models() == []


def test_show_names_close_matches_and_tells_catalog_models_apart(service, uow, home):
    service.register_local(str(_folder(home, "a", {"model_type": "llama"})), "tiny-llama")
    with pytest.raises(NotFound) as err:
        service.show("tiny-lama")
    assert "tiny-llama" in err.value.suggestions
    with pytest.raises(NotInstalled) as err:
        service.show("qwen3-4b")  # a catalog alias of a model that is not installed
    assert "qwen3-4b-instruct-2507-4bit-v1" in str(err.value)
    with uow:
        uow.models.add(Model("qwen3-4b-instruct-2507-4bit-v1", canonical_id="qwen3-4b-instruct-2507-4bit-v1",
                             model_type=ModelType.TEXT_GEN, local_path="/x", aliases=[]))
        uow.commit()
    assert service.show("qwen3-4b").model_id == "qwen3-4b-instruct-2507-4bit-v1"


def test_search_filters_and_validates(service, uow):
    with uow:
        uow.models.add(Model("a-text", model_type=ModelType.TEXT_GEN, local_path="/a"))
        uow.models.add(Model("b-audio", model_type=ModelType.AUDIO, local_path="/b"))
        uow.models.add(Model("c-text", model_type=ModelType.TEXT_GEN, status=DownloadStatus.DOWNLOADING))
        uow.commit()
    page = service.search(model_type="text-gen", limit=1)
    assert page.total == 2 and [m.model_id for m in page.items] == ["a-text"]
    assert [m.model_id for m in service.search(status="downloading").items] == ["c-text"]
    for bad in ({"model_type": "speech"}, {"capability": "flying"}, {"limit": 0}, {"offset": -1}):
        with pytest.raises(InvalidRequest):
            service.search(**bad)


def test_delete_removes_managed_folders_only_and_refuses_models_in_use(service, uow, home):
    # mlxm's layout: `models/m1` is its link to the revision folder that carries its manifest.
    revision = home / "models" / ".revisions" / "m1" / "r1"
    revision.mkdir(parents=True)
    (revision / ".mlxm.json").write_text(Manifest(key="m1", repo_id=None, revision="r1", source=None).to_json())
    managed = home / "models" / "m1"
    managed.symlink_to(".revisions/m1/r1")
    outside = home / "elsewhere"
    outside.mkdir()
    with uow:
        uow.models.add(Model("m1", model_type=ModelType.TEXT_GEN, local_path=str(managed)))
        # Says managed but lives outside the library: never deleted.
        uow.models.add(Model("m2", model_type=ModelType.TEXT_GEN, local_path=str(outside)))
        uow.models.add(Model("m3", model_type=ModelType.TEXT_GEN, local_path="/m3"))
        uow.profiles.add(make_profile("uses-m3", ModelType.TEXT_GEN, model_id="m3"))
        uow.commit()
    service.delete("m1")
    service.delete("m2")
    assert not managed.lexists() and not revision.exists() and outside.exists()
    with pytest.raises(Conflict):
        service.delete("m3")
    assert [m.model_id for m in service.list_models()] == ["m3"]


def test_delete_takes_the_model_out_of_the_pool_and_ignores_a_model_that_is_not_loaded(uow, home):
    unloaded = []

    def unload(model_id):
        unloaded.append(model_id)
        if model_id == "idle":
            raise NotFound(f"model {model_id!r} is not loaded")
        return True

    service = LibraryService(lambda: uow, EmbeddedCatalogProvider(), FakeClock(), models_dir=home.store.models_dir,
                             unload=unload, store=home.store)  # no folder of its own: the fake store
    with uow:
        for name in ("busy", "idle"):
            uow.models.add(Model(name, model_type=ModelType.TEXT_GEN, local_path=str(home / "elsewhere" / name)))
        uow.commit()
    assert service.delete("busy").model_id == "busy"
    assert service.delete("idle").model_id == "idle"  # NotFound from the pool: it simply was not loaded
    assert unloaded == ["busy", "idle"]
    assert service.list_models() == []
