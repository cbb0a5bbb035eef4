"""The migration seeds dependency profiles and bindings for the catalog's MLX models (real SQLite)."""

from __future__ import annotations

import pytest

from adapters.catalog.embedded import EmbeddedCatalogProvider
from application.library.dependencies import DependencyService, resolution_to_contract
from domain.library.dependency_model import PlatformContext, ValidationState
from domain.enums import ModelType
from entrypoints.http.library.schemas import DependencyRequirementsDTO
from domain.library.models import Model
from tests.support.database import SqliteUnitOfWorks, migrated_database


@pytest.fixture(scope="module")
def template_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("template")


@pytest.fixture
def uows(tmp_path, template_dir):
    uows = SqliteUnitOfWorks(migrated_database(tmp_path, template_dir))
    yield uows
    uows.dispose()


@pytest.fixture
def service(uows):
    return DependencyService(uows, EmbeddedCatalogProvider())


def specifiers(resolution) -> dict[str, bool | None]:
    return {item.requirement.specifier: item.applies for group in resolution.groups for item in group.requirements}


def test_every_catalog_text_and_audio_model_resolves_on_both_platforms(service):
    catalog = EmbeddedCatalogProvider().load_catalog()
    for entry in catalog.models:
        if entry.model_type not in (ModelType.TEXT_GEN, ModelType.AUDIO):
            continue
        for label in ("linux-x86_64", "darwin-arm64"):
            resolution = service.resolve_model_dependency_requirements(entry.id, PlatformContext.parse(label, "3.11.7"))
            assert resolution.validation_state is ValidationState.RESOLVED, (entry.id, resolution.validation_errors)
            assert len(resolution.groups) == 1, entry.id
            DependencyRequirementsDTO.model_validate(resolution_to_contract(resolution))


def test_mlx_cpu_on_linux_plain_mlx_on_macos(service):
    linux = service.resolve_model_dependency_requirements("qwen3-0.6b", PlatformContext.parse("linux-x86_64", "3.11.7"))
    assert linux.groups[0].profile.profile_id == "mlx-lm"
    assert specifiers(linux) == {
        'mlx==0.32.4; sys_platform == "darwin"': False,
        'mlx[cpu]==0.32.4; sys_platform == "linux"': True,
        "mlx-lm==0.32.2": True,
    }
    mac = service.resolve_model_dependency_requirements("kokoro-82m-bf16-v1", PlatformContext.parse("darwin-arm64"))
    assert mac.groups[0].binding.backend_key == "mlx-audio"
    assert specifiers(mac) == {
        'mlx==0.32.4; sys_platform == "darwin"': True,
        'mlx[cpu]==0.32.4; sys_platform == "linux"': False,
        "mlx-audio==0.6.2": True,
    }


def test_every_catalog_model_has_a_seeded_runtime(service):
    # Vision and embeddings too: an empty list would claim they need nothing.
    catalog = EmbeddedCatalogProvider().load_catalog()
    for entry in catalog.models:
        resolution = service.resolve_model_dependency_requirements(entry.id, PlatformContext.parse("linux-x86_64", "3.11.7"))
        assert resolution.validation_state is ValidationState.RESOLVED, (entry.id, resolution.validation_errors)
        assert len(resolution.groups) == 1, entry.id
        DependencyRequirementsDTO.model_validate(resolution_to_contract(resolution))


@pytest.mark.parametrize("model,runtime,pin", [
    ("gemma-3-4b-it-4bit-v1", "mlx-vlm", "==0.7.10"),
    ("qwen2.5-vl-3b-instruct-4bit-v1", "mlx-vlm", "==0.7.10"),
    ("all-minilm-l6-v2-4bit-v1", "mlx-embeddings", "==0.1.0"),
])
def test_vision_and_embeddings_models_get_their_runtime_on_mlx(service, model, runtime, pin):
    resolution = service.resolve_model_dependency_requirements(model, PlatformContext.parse("darwin-arm64"))
    (group,) = resolution.groups
    assert group.binding.backend_key == runtime
    applying = {item.requirement.name: item.requirement.pin for item in group.requirements if item.applies}
    assert applying == {"mlx": "==0.32.4", runtime: pin}


def test_a_user_binding_holds_the_vision_seed_back_from_a_downgrade(uows, service, tmp_path):
    from adapters.sqlalchemy.migrate import downgrade_database

    service.bind("qwen3-0.6b", "mlx-vlm")
    with pytest.raises(RuntimeError, match="rely on"):
        downgrade_database(uows.url, "0004_library_pipelines")
    service.unbind("qwen3-0.6b-4bit-v1:mlx-vlm")
    downgrade_database(uows.url, "0004_library_pipelines")
    # Read the bindings table itself: this code's model rows need the head schema (models.display_name, 0012).
    assert [b for b in service.bindings() if b.model_id == "gemma-3-4b-it-4bit-v1"] == []
    assert [p.profile_id for p in service.profiles()] == ["mlx-audio", "mlx-lm"]


def test_seeded_pins_match_the_installed_runtime_packages(service):
    """The seed is what this very environment runs: the pins are real, tested versions."""
    from importlib.metadata import version

    pins = {item.requirement.name: item.requirement.pin.lstrip("=") for group in service.resolve_model_dependency_requirements(
        "qwen3-0.6b", PlatformContext.parse("linux")).groups for item in group.requirements}
    assert pins == {"mlx": version("mlx"), "mlx-lm": version("mlx-lm")}
    audio = {item.requirement.name: item.requirement.pin.lstrip("=") for group in service.resolve_model_dependency_requirements(
        "whisper-large-v3-turbo-v1", PlatformContext.parse("linux")).groups for item in group.requirements}
    assert audio["mlx-audio"] == version("mlx-audio")


def test_a_legacy_row_keyed_by_repo_id_gets_its_catalog_entrys_seeded_bindings(uows, service):
    # A legacy upgrade leaves model_id = repo id and no canonical id; the seed is keyed by catalog id.
    repo = "mlx-community/Qwen3-0.6B-4bit"
    with uows() as uow:
        uow.models.add(Model(model_id=repo, repo_id=repo, canonical_id=None, model_type=ModelType.TEXT_GEN))
        uow.commit()
    resolution = service.resolve_model_dependency_requirements(repo, PlatformContext.parse("linux-x86_64", "3.11.7"))
    assert resolution.validation_state is ValidationState.RESOLVED
    assert [g.binding.profile_id for g in resolution.groups] == ["mlx-lm"]
    assert [b.profile_id for b in service.bindings(repo)] == ["mlx-lm"]
