import pytest

from adapters.catalog.embedded import EmbeddedCatalogProvider
from adapters.memory.repositories import FakeClock, InMemoryUnitOfWork
from application.errors import Conflict, NotFound
from application.profiles.service import ProfileChanges, ProfileService
from domain.enums import ModelType, ProfileType
from domain.errors import InvalidParameter, ProfileTypeMismatch
from domain.library.models import Model


@pytest.fixture
def uow():
    uow = InMemoryUnitOfWork()
    with uow:
        uow.models.add(Model("tiny-llama", model_type=ModelType.TEXT_GEN, local_path="/m/llama", aliases=["tl"]))
        uow.models.add(Model("tiny-whisper", model_type=ModelType.AUDIO, local_path="/m/whisper"))
        uow.models.add(Model("tiny-embed", model_type=ModelType.EMBEDDINGS, local_path="/m/embed"))
        uow.commit()
    return uow


@pytest.fixture
def service(uow):
    return ProfileService(lambda: uow, FakeClock(), EmbeddedCatalogProvider())


def test_create_builds_the_subclass_of_the_model_type_and_persists_it(service, uow):
    profile = service.create("chatty", "tl", inference={"temperature": 0, "max_tokens": 64}, context={"system_prompt": "Be brief"})
    assert profile.profile_type is ProfileType.INFERENCE
    assert profile.model_id == "tiny-llama"  # the alias resolved to the library id
    stored = service.get("chatty")
    assert stored.inference.temperature == 0 and stored.inference.max_tokens == 64
    assert stored.context.system_prompt == "Be brief"
    assert stored.created_at is not None and stored.id is not None
    audio = service.create("voice", "tiny-whisper", audio={"voice": "af", "speed": 1.5})
    assert audio.profile_type is ProfileType.AUDIO and audio.audio.speed == 1.5
    assert service.create("vectors", "tiny-embed").profile_type is ProfileType.BASE


@pytest.mark.parametrize(
    "model, groups, field",
    [
        ("tiny-llama", {"audio": {"voice": "af"}}, "audio.voice"),
        ("tiny-whisper", {"inference": {"temperature": 0.5}}, "inference.temperature"),
        ("tiny-whisper", {"context": {"system_prompt": "x"}}, "context.system_prompt"),
        ("tiny-embed", {"inference": {"max_tokens": 5}}, "inference.max_tokens"),
    ],
)
def test_defaults_that_do_not_fit_the_model_type_are_rejected_naming_the_field(service, model, groups, field):
    with pytest.raises(ProfileTypeMismatch) as err:
        service.create("p", model, **groups)
    assert err.value.field == field
    assert service.list_profiles() == []


def test_out_of_range_and_unknown_fields_name_the_field(service):
    with pytest.raises(InvalidParameter) as err:
        service.create("p", "tiny-llama", inference={"temperature": 3})
    assert err.value.field == "inference.temperature"
    with pytest.raises(InvalidParameter) as err:
        service.create("p", "tiny-llama", inference={"temprature": 0.1})
    assert err.value.field == "inference.temprature"
    with pytest.raises(InvalidParameter) as err:
        service.create("bad name!", "tiny-llama")
    assert err.value.field == "name"


def test_duplicate_name_is_a_conflict_and_unknown_model_not_found(service):
    service.create("chatty", "tiny-llama")
    with pytest.raises(Conflict):
        service.create("chatty", "tiny-llama")
    with pytest.raises(NotFound):
        service.create("other", "no-such-model")


def test_update_merges_revalidates_renames_and_keeps_identity(service):
    created = service.create("chatty", "tiny-llama", inference={"temperature": 0.7})
    updated = service.update("chatty", ProfileChanges(name="terse", inference={"temperature": 0, "max_tokens": 8}))
    assert updated.id == created.id and updated.created_at == created.created_at
    assert updated.inference.temperature == 0 and updated.inference.max_tokens == 8
    assert [p.name for p in service.list_profiles()] == ["terse"]
    # Pointing a text profile with inference defaults at an audio model no longer fits.
    with pytest.raises(ProfileTypeMismatch):
        service.update("terse", ProfileChanges(model="tiny-whisper"))
    assert service.get("terse").model_id == "tiny-llama"
    service.create("other", "tiny-llama")
    with pytest.raises(Conflict):
        service.update("terse", ProfileChanges(name="other"))


def test_get_by_numeric_id_delete_and_auto_start(service):
    created = service.create("pinned", "tiny-llama", auto_start=True)
    service.create("plain", "tiny-llama")
    assert service.get(str(created.id)).name == "pinned"
    assert [p.name for p in service.auto_start_profiles()] == ["pinned"]
    service.delete("pinned")
    with pytest.raises(NotFound):
        service.get("pinned")


@pytest.mark.parametrize("name", [
    "tiny-llama", "tl", "TL",  # a library model's id or alias
    "qwen3-4b", "qwen3-4b-instruct-2507-4bit-v1",  # a catalog alias or canonical id
])
def test_a_profile_name_that_names_a_model_would_shadow_it_and_is_a_conflict(service, name):
    with pytest.raises(Conflict, match="names the"):
        service.create(name, "tiny-llama")
    service.create("chatty", "tiny-llama")
    with pytest.raises(Conflict, match="names the"):
        service.update("chatty", ProfileChanges(name=name))
    assert service.get("chatty").name == "chatty"
    assert service.update("chatty", ProfileChanges(description="still free")).name == "chatty"  # no rename: no check
