"""MetadataEditService (mlxm edit / PATCH /api/models/{id}) on fakes: in-memory unit of work and model store.

Also the writers that must leave the user's overlays in effect: re-probe, update (pull of a new
revision), re-import, link bookkeeping, and the rebuild of a lost library from its manifests.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from adapters.catalog.embedded import EmbeddedCatalogProvider, StaticCatalogProvider
from adapters.memory.repositories import FakeClock, InMemoryUnitOfWork
from adapters.memory.runtime import FakeModelRuntime
from application.downloads.service import DownloadService
from application.downloads.updates import UpdateService
from application.errors import Conflict, InvalidRequest, NotFound
from application.inference.pool import ModelPool
from application.inference.ports import ModelFacts
from application.inference.probe import ProbeService
from application.library.importing import ImportRequest, ImportService
from application.library.metadata_edit import MetadataEdit, MetadataEditService, ProfilesDoNotFit
from application.library.recovery import LibraryRecovery
from application.library.service import LibraryService
from domain.enums import ModelType, ProfileType
from domain.library.capabilities import TextGenCapabilities
from domain.library.layout import MANIFEST_NAME
from domain.library.models import Model
from domain.library.overlays import NEEDS_REVIEW_TAG, overlays_from_list
from domain.profiles.model import make_profile
from domain.profiles.params import InferenceContext, InferenceParams
from tests.support.fake_downloader import FakeDownloader
from tests.support.memory_paths import MemPath
from tests.support.model_folders import write_model_folder


class FlakyCommitUnitOfWork(InMemoryUnitOfWork):
    fail_next = False

    def commit(self) -> None:
        if self.fail_next:
            self.fail_next = False
            raise RuntimeError("database is gone")
        super().commit()


@pytest.fixture
def root() -> MemPath:
    return MemPath.new_home().parent


@pytest.fixture
def home(root) -> MemPath:
    return root / "home"


@pytest.fixture
def uow() -> FlakyCommitUnitOfWork:
    return FlakyCommitUnitOfWork()


def importer(home, uow) -> ImportService:
    return ImportService(lambda: uow, home.store, EmbeddedCatalogProvider(), FakeClock())


def editor(home, uow, unloaded=None) -> MetadataEditService:
    library = LibraryService(lambda: uow, EmbeddedCatalogProvider(), FakeClock(), store=home.store)
    return MetadataEditService(lambda: uow, library.show, FakeClock(), store=home.store,
                               unload=(unloaded.append if unloaded is not None else None))


@pytest.fixture
def weird(root, home, uow) -> Model:
    """An import the inference was unsure of: no model_type or architectures in config.json."""
    folder = write_model_folder(root / "src" / "weird", config={"hidden_size": 8})
    model = importer(home, uow).import_model(ImportRequest(str(folder), name="weird")).model
    assert NEEDS_REVIEW_TAG in model.tags and len(model.review_reasons) == 2
    return model


def manifest_overlays(home, model_id: str) -> dict:
    folder = home.store.installed_revision_dir(model_id)
    data = json.loads(home.store.read_text(folder / MANIFEST_NAME))
    return {o["field"]: o for o in data.get("overlays", [])}


def test_an_edit_is_stored_as_overlays_in_the_database_and_the_manifest(home, uow, weird):
    result = editor(home, uow).edit("weird", MetadataEdit(model_type="vision", family="qwen2_vl", add_tags=("coding",),
                                                          display_name="Weird VL", description="my notes"))
    model = result.model
    assert (model.model_type, model.family, model.display_name, model.description) == (
        ModelType.VISION, "qwen2_vl", "Weird VL", "my notes")
    assert model.tags == ["imported", "coding"]  # every flagged field overridden: needs-review is gone
    assert model.review_reasons == []
    with uow:
        stored = uow.models.get("weird")
        overlays = uow.overlays.get("weird")
    assert stored.model_type is ModelType.VISION and stored.display_name == "Weird VL"
    assert sorted(overlays.overriding()) == ["description", "display_name", "family", "model_type", "tags"]
    assert overlays.items["model_type"].inferred is ModelType.TEXT_GEN
    on_disk = manifest_overlays(home, "weird")
    assert on_disk["model_type"]["value"] == "vision" and on_disk["tags"]["value"] == {"add": ["coding"], "remove": []}
    assert result.manifest.endswith(MANIFEST_NAME)


def test_reset_brings_the_inferred_value_back_and_reopens_its_review(home, uow, weird):
    service = editor(home, uow)
    service.edit("weird", MetadataEdit(model_type="vision", family="qwen2_vl"))
    model = service.edit("weird", MetadataEdit(reset=("type",))).model
    assert model.model_type is ModelType.TEXT_GEN and model.family == "qwen2_vl"
    assert model.review_reasons == ["low confidence 0.67 for type text-gen"] and NEEDS_REVIEW_TAG in model.tags
    assert "model_type" not in manifest_overlays(home, "weird")


def test_confirming_the_flagged_fields_clears_needs_review(home, uow, weird):
    service = editor(home, uow)
    model = service.edit("weird", MetadataEdit(confirm=("type",))).model
    assert NEEDS_REVIEW_TAG in model.tags and len(model.review_reasons) == 1  # the family is still flagged
    model = service.edit("weird", MetadataEdit(confirm=("family",))).model
    assert model.review_reasons == [] and NEEDS_REVIEW_TAG not in model.tags
    assert model.model_type is ModelType.TEXT_GEN  # a confirmation changes no value
    with uow:
        assert sorted(uow.overlays.get("weird").confirmed()) == ["family", "model_type"]


@pytest.mark.parametrize("edit,message", [
    (MetadataEdit(), "nothing to change"),
    (MetadataEdit(model_type="vision", reset=("type",)), "not both"),
    (MetadataEdit(reset=("size",)), "unknown field"),
    (MetadataEdit(model_type="robot"), "not a model type"),
    (MetadataEdit(add_tags=("two words",)), "not a tag"),
])
def test_bad_edits_are_invalid_requests_that_change_nothing(home, uow, weird, edit, message):
    with pytest.raises(InvalidRequest, match=message):
        editor(home, uow).edit("weird", edit)
    with uow:
        assert uow.overlays.get("weird").items == {}
        assert uow.models.get("weird").model_type is ModelType.TEXT_GEN
    assert manifest_overlays(home, "weird") == {}


def test_an_unknown_model_is_not_found_with_suggestions(home, uow, weird):
    with pytest.raises(NotFound) as caught:
        editor(home, uow).edit("wierd", MetadataEdit(family="x"))
    assert "weird" in caught.value.suggestions


def _profiles(uow) -> None:
    with uow:
        uow.profiles.add(make_profile("chatty", ModelType.TEXT_GEN, model_id="weird",
                                      inference=InferenceParams(temperature=0.7),
                                      context=InferenceContext(system_prompt="be brief")))
        uow.profiles.add(make_profile("plain", ModelType.TEXT_GEN, model_id="weird"))
        uow.commit()


def test_a_type_change_the_profiles_do_not_fit_is_refused_listing_them(home, uow, weird):
    _profiles(uow)
    with pytest.raises(ProfilesDoNotFit) as caught:
        editor(home, uow).edit("weird", MetadataEdit(model_type="audio"))
    message = str(caught.value)
    assert "chatty (inference -> audio, would drop inference.temperature=0.7, context.system_prompt='be brief')" in message
    assert "plain (inference -> audio)" in message and "--force" in message
    assert isinstance(caught.value, Conflict)
    with uow:  # nothing changed
        assert uow.models.get("weird").model_type is ModelType.TEXT_GEN
        assert uow.profiles.get("chatty").profile_type is ProfileType.INFERENCE
    assert manifest_overlays(home, "weird") == {}
    # A type the profiles fit (vision profiles are inference profiles too) needs no force.
    assert editor(home, uow).edit("weird", MetadataEdit(model_type="vision")).conversions == []


def test_force_converts_the_profiles_and_reports_what_they_dropped(home, uow, weird):
    _profiles(uow)
    unloaded: list[str] = []
    result = editor(home, uow, unloaded).edit("weird", MetadataEdit(model_type="audio", force=True))
    assert [(c.name, c.to_type, c.dropped) for c in result.conversions] == [
        ("chatty", ProfileType.AUDIO, ("inference.temperature=0.7", "context.system_prompt='be brief'")),
        ("plain", ProfileType.AUDIO, ()),
    ]
    with uow:
        chatty = uow.profiles.get("chatty")
    assert chatty.profile_type is ProfileType.AUDIO and chatty.inference == InferenceParams()
    assert unloaded == ["weird"]  # loaded as text-gen somewhere: it must load again as audio


def test_a_type_change_clears_capabilities_probed_as_the_old_type(home, uow, weird):
    with uow:
        model = uow.models.get("weird")
        model.capabilities = TextGenCapabilities(supports_native_tools=True)
        uow.models.add(model)
        uow.commit()
    unloaded: list[str] = []
    result = editor(home, uow, unloaded).edit("weird", MetadataEdit(model_type="vision"))
    assert result.model.capabilities is None and any("mlxm probe weird" in n for n in result.notes)
    editor(home, uow, unloaded).edit("weird", MetadataEdit(family="x"))
    assert unloaded == ["weird"]  # only the type change unloads


def test_a_failed_commit_leaves_the_manifest_as_it_was(home, uow, weird):
    service = editor(home, uow)
    service.edit("weird", MetadataEdit(family="first"))
    uow.fail_next = True
    with pytest.raises(RuntimeError, match="database is gone"):
        service.edit("weird", MetadataEdit(family="second", display_name="X"))
    assert manifest_overlays(home, "weird")["family"]["value"] == "first"
    assert "display_name" not in manifest_overlays(home, "weird")
    with uow:
        assert uow.models.get("weird").family == "first"


def test_an_in_place_model_keeps_its_overlays_in_the_database_only(root, home, uow):
    folder = write_model_folder(root / "src" / "placed")
    importer(home, uow).import_model(ImportRequest(str(folder), name="placed", in_place=True))
    result = editor(home, uow).edit("placed", MetadataEdit(family="mine"))
    assert result.manifest is None and "database only" in result.notes[0]
    assert not (folder / MANIFEST_NAME).exists()  # the user's folder is not written to
    with uow:
        assert uow.overlays.get("placed").items["family"].value == "mine"


# -- the writers of inferred metadata leave the overlays in effect ---------------------------------------
class FakeInspector:
    def inspect(self, path: Path, model_type: ModelType) -> ModelFacts:
        return ModelFacts(config={"model_type": "qwen3"}, chat_template="{{ messages }}")


def test_a_re_probe_keeps_the_override_and_records_what_it_found_beneath(home, uow, weird):
    editor(home, uow).edit("weird", MetadataEdit(family="my-family"))
    clock, runtime = FakeClock(), FakeModelRuntime()
    probe = ProbeService(lambda: uow, FakeInspector(), ModelPool(runtime, clock), runtime, clock)
    probe.probe("weird")
    with uow:
        model, overlays = uow.models.get("weird"), uow.overlays.get("weird")
    assert model.family == "my-family" and model.capabilities is not None
    assert overlays.items["family"].inferred == "qwen3"  # what the probe found lies beneath
    assert editor(home, uow).edit("weird", MetadataEdit(reset=("family",))).model.family == "qwen3"


def test_a_re_import_of_the_same_files_keeps_the_overlays(root, home, uow, weird):
    editor(home, uow).edit("weird", MetadataEdit(model_type="vision"))
    again = importer(home, uow).import_model(ImportRequest(str(root / "src" / "weird"), name="weird"))
    assert not again.created and again.model.model_type is ModelType.VISION
    with uow:
        assert uow.overlays.get("weird").items["model_type"].value is ModelType.VISION


def test_a_library_rebuilt_from_disk_gets_the_overlays_back(home, uow, weird):
    editor(home, uow).edit("weird", MetadataEdit(model_type="vision", add_tags=("coding",), confirm=("family",)))
    fresh = InMemoryUnitOfWork()  # the database is lost; the library folder is all there is
    report = LibraryRecovery(lambda: fresh, home.store, importer(home, fresh)).recover()
    assert report.adopted == ["weird"]
    with fresh:
        model, overlays = fresh.models.get("weird"), fresh.overlays.get("weird")
    assert model.model_type is ModelType.VISION and model.tags == ["imported", "coding"]
    assert model.review_reasons == [] and NEEDS_REVIEW_TAG not in model.tags  # what the user settled stays settled
    assert overlays.items["model_type"].inferred is ModelType.TEXT_GEN and overlays.confirmed() == ["family"]


def test_link_bookkeeping_keeps_the_users_tags(home, uow, weird):
    from application.library.overlay_writes import record_inferred_in

    editor(home, uow).edit("weird", MetadataEdit(add_tags=("coding",), remove_tags=("imported",)))
    with uow:
        model = uow.models.get("weird")
        record_inferred_in(uow, model, tags=[*model.tags, "linked:lmstudio"])  # as MappingService._retag does
        uow.models.add(model)
        uow.commit()
    with uow:
        tags = uow.models.get("weird").tags
    assert "coding" in tags and "imported" not in tags and "linked:lmstudio" in tags


CONFIG = json.dumps({"model_type": "llama", "architectures": ["LlamaForCausalLM"]}).encode()
WEIGHTS = bytes(range(256)) * 40


def test_an_update_to_a_new_revision_keeps_the_overlays_and_its_manifest_carries_them():
    from domain.catalog.model import catalog_from_dict

    home, uow, fake = MemPath.new_home(), InMemoryUnitOfWork(), FakeDownloader()
    fake.add_repo("org/tiny", {"config.json": CONFIG, "model.safetensors": WEIGHTS})
    fake.store = home.store
    catalog = catalog_from_dict({"default_model": "tiny-v1", "models": [
        {"id": "tiny-v1", "type": "text-gen", "family": "llama", "aliases": ["tiny"], "tags": ["chat"],
         "sources": [{"kind": "huggingface_repo", "value": "org/tiny", "priority": 10}]}]})
    downloads = DownloadService(lambda: uow, StaticCatalogProvider(catalog), fake, FakeClock(), home.store,
                                max_workers=2)
    downloads.pull("tiny")
    editor(home, uow).edit("tiny-v1", MetadataEdit(model_type="vision", family="qwen2_vl", add_tags=("coding",)))
    new_sha = fake.add_repo("org/tiny", {"config.json": CONFIG, "model.safetensors": WEIGHTS[::-1]})
    assert UpdateService(downloads, fake).update("tiny")[0].new_revision == new_sha
    with uow:
        model, overlays = uow.models.get("tiny-v1"), uow.overlays.get("tiny-v1")
    assert model.revision == new_sha
    assert (model.model_type, model.family, model.tags) == (ModelType.VISION, "qwen2_vl", ["chat", "coding"])
    assert overlays.items["family"].inferred == "llama"
    # The new revision's manifest carries the overlays (a rebuild from disk after the update keeps them).
    folder = home.store.installed_revision_dir("tiny-v1")
    assert folder.name == new_sha
    written = json.loads(home.store.read_text(folder / MANIFEST_NAME))["overlays"]
    assert overlays_from_list("tiny-v1", written).items == overlays.items
