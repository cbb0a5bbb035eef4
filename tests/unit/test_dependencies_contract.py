"""Contract fixtures (tests/fixtures/dependency_contract/*.json) parsed through the real DTOs.

Each fixture holds a scenario (profiles, bindings, query) and the response consumers rely on.
The response must validate as `DependencyRequirementsDTO`, and resolving the scenario with the
real service must produce exactly that response.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
from pydantic import ValidationError

from adapters.catalog.embedded import EmbeddedCatalogProvider
from adapters.memory.repositories import InMemoryUnitOfWork
from application.library.dependencies import DependencyService, resolution_to_contract
from application.errors import Conflict
from domain.library.dependency_model import DependencyBinding, DependencyProfile, PlatformContext
from domain.library.markers import parse_requirement_spec
from entrypoints.http.library.schemas import DependencyRequirementsDTO

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "dependency_contract"
FIXTURE_FILES = sorted(FIXTURES.glob("*.json"))


def load(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))


def service_for(scenario: dict) -> DependencyService:
    uow = InMemoryUnitOfWork()
    with uow:
        for p in scenario["profiles"]:
            requirements = tuple(parse_requirement_spec(spec, p.get("python_requires")) for spec in p["requirements"])
            uow.dependency_profiles.add(DependencyProfile(p["profile_id"], p["version"], p["environment_kind"], requirements))
        for b in scenario["bindings"]:
            uow.dependency_bindings.add(DependencyBinding(**b))
        uow.commit()
    return DependencyService(lambda: uow, EmbeddedCatalogProvider())


def test_every_state_has_a_fixture():
    states = {load(path)["response"]["validation_state"] for path in FIXTURE_FILES}
    assert states == {"resolved", "unknown_profile", "invalid_profile", "profile_conflict"}
    assert any(load(path)["response"]["requirement_groups"] == [] for path in FIXTURE_FILES), "no-bindings case"


@pytest.mark.parametrize("path", FIXTURE_FILES, ids=lambda p: p.stem)
def test_fixture_parses_through_the_dto(path):
    dto = DependencyRequirementsDTO.model_validate(load(path)["response"])
    assert dto.dependency_contract_version == 1
    assert dto.model_dump(mode="json") == load(path)["response"]


@pytest.mark.parametrize("path", FIXTURE_FILES, ids=lambda p: p.stem)
def test_service_produces_the_fixture_response(path):
    fixture = load(path)
    query = fixture["scenario"]["query"]
    resolution = service_for(fixture["scenario"]).resolve_model_dependency_requirements(
        query["model_id"], PlatformContext.parse(query["platform"], query["python"]), query["backend"]
    )
    produced = DependencyRequirementsDTO.model_validate(resolution_to_contract(resolution))
    assert produced.model_dump(mode="json") == fixture["response"]


def test_the_dto_rejects_a_top_level_state_better_than_its_worst_binding():
    response = copy.deepcopy(load(FIXTURES / "profile_conflict.json")["response"])
    response["validation_state"] = "resolved"
    with pytest.raises(ValidationError, match="worst state"):
        DependencyRequirementsDTO.model_validate(response)


def test_the_dto_is_closed_to_unknown_fields_and_states():
    response = copy.deepcopy(load(FIXTURES / "resolved.json")["response"])
    with pytest.raises(ValidationError):
        DependencyRequirementsDTO.model_validate({**response, "surprise": 1})
    response["requirement_groups"][0]["validation_state"] = "mostly_fine"
    with pytest.raises(ValidationError):
        DependencyRequirementsDTO.model_validate(response)


def test_a_consumer_expecting_another_contract_version_gets_a_conflict():
    fixture = load(FIXTURES / "resolved.json")
    service = service_for(fixture["scenario"])
    with pytest.raises(Conflict, match="version mismatch"):
        service.resolve_model_dependency_requirements("qwen3-0.6b", PlatformContext.parse("linux"),
                                                      expected_contract_version=2)
    ok = service.resolve_model_dependency_requirements("qwen3-0.6b", PlatformContext.parse("linux"),
                                                       expected_contract_version="1")
    assert ok.contract_version == 1
