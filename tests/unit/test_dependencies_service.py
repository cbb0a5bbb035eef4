"""DependencyService on the in-memory unit of work: bindings, profiles, name resolution."""

from __future__ import annotations

import pytest

from adapters.catalog.embedded import EmbeddedCatalogProvider
from adapters.memory.repositories import InMemoryUnitOfWork
from application.library.dependencies import DependencyService, check_contract_version
from application.errors import Conflict, InvalidRequest, NotFound
from domain.library.dependency_model import PlatformContext, ValidationState
from domain.library.models import Model

LINUX = PlatformContext.parse("linux-x86_64", "3.11.7")


@pytest.fixture
def uow():
    uow = InMemoryUnitOfWork()
    with uow:
        uow.models.add(Model(model_id="tiny", local_path="/lib/tiny"))
        uow.commit()
    return uow


@pytest.fixture
def service(uow):
    return DependencyService(lambda: uow, EmbeddedCatalogProvider())


def test_bind_then_resolve_a_library_model(service):
    service.add_profile("mlx-lm", 1, ['mlx[cpu]==0.32.4; sys_platform == "linux"', "mlx-lm==0.32.2"],
                        python_requires=">=3.11")
    binding = service.bind("tiny", "mlx-lm", backend_key="mlx-lm")
    assert binding.binding_id == "tiny:mlx-lm" and binding.model_id == "tiny"
    result = service.resolve_model_dependency_requirements("tiny", LINUX, "mlx-lm")
    assert result.validation_state is ValidationState.RESOLVED
    assert [i.requirement.specifier for i in result.groups[0].requirements] == [
        'mlx[cpu]==0.32.4; sys_platform == "linux"', "mlx-lm==0.32.2"]
    assert service.resolve_model_dependency_requirements("tiny", LINUX, "mlx-audio").groups == ()


def test_binding_to_a_profile_that_does_not_exist_yet_is_unknown_profile(service):
    service.bind("tiny", "future-profile")
    result = service.resolve_model_dependency_requirements("tiny", LINUX)
    assert result.validation_state is ValidationState.UNKNOWN_PROFILE


def test_catalog_aliases_resolve_to_canonical_ids(service):
    binding = service.bind("qwen3-0.6b", "mlx-lm")
    assert binding.model_id == "qwen3-0.6b-4bit-v1"
    assert [b.binding_id for b in service.bindings("qwen3-0.6b-4bit-v1")] == [binding.binding_id]


def test_unknown_model_is_not_found_with_suggestions(service):
    with pytest.raises(NotFound) as info:
        service.resolve_model_dependency_requirements("qwen3-0.6", LINUX)
    assert any(s.startswith("qwen3-0.6b") for s in info.value.suggestions)


def test_profiles_are_validated_and_immutable(service):
    with pytest.raises(InvalidRequest, match="exact pin"):
        service.add_profile("loose", 1, ["mlx>=0.30"])
    service.add_profile("p", 1, ["mlx==0.32.4"])
    with pytest.raises(Conflict, match="immutable"):
        service.add_profile("p", 1, ["mlx==0.32.5"])
    service.add_profile("p", 2, ["mlx==0.32.5"])
    assert [(p.profile_id, p.version) for p in service.profiles()] == [("p", 1), ("p", 2)]


def test_unbind_removes_and_unknown_binding_is_not_found(service):
    binding = service.bind("tiny", "p")
    service.unbind(binding.binding_id)
    assert service.bindings("tiny") == []
    with pytest.raises(NotFound):
        service.unbind(binding.binding_id)


def test_contract_version_check():
    check_contract_version(None)
    check_contract_version(1)
    with pytest.raises(Conflict):
        check_contract_version(0)
    with pytest.raises(InvalidRequest):
        check_contract_version("one")
