"""The dependency-requirements contract: what environment a model needs, per binding.

`DependencyService.resolve_model_dependency_requirements(model_id, platform_context, backend_key)`
answers with a `DependencyResolution` (see `domain.library.dependencies`); `resolution_to_contract`
turns it into the versioned JSON shape (`dependency_contract_version` 1) that the HTTP API and
`mlxm deps --json` return. A consumer that expects another contract version gets a `Conflict`.
"""

from __future__ import annotations

import difflib
from typing import Callable

from application.errors import Conflict, InvalidRequest, NotFound
from application.catalog.ports import CatalogProvider
from application.library.ports import LibraryUnitOfWork
from domain.library.dependency_model import (
    DEPENDENCY_CONTRACT_VERSION,
    ENVIRONMENT_KINDS,
    DependencyBinding,
    DependencyProfile,
    PlatformContext,
)
from domain.library.dependencies import DependencyResolution, resolve_requirements, validate_profile
from domain.library.markers import parse_requirement_spec


def check_contract_version(expected: int | str | None) -> None:
    """A consumer built for another contract version must not guess: 409."""
    if expected is None or expected == "":
        return
    try:
        value = int(expected)
    except (TypeError, ValueError):
        raise InvalidRequest(f"expected_contract_version must be an integer, got {expected!r}") from None
    if value != DEPENDENCY_CONTRACT_VERSION:
        raise Conflict(
            f"dependency contract version mismatch: this server speaks version {DEPENDENCY_CONTRACT_VERSION}, "
            f"the consumer expects {value}"
        )


class DependencyService:
    def __init__(self, uow_factory: Callable[[], LibraryUnitOfWork], catalog: CatalogProvider) -> None:
        self._uow_factory = uow_factory
        self._catalog = catalog

    def _model_id(self, uow: LibraryUnitOfWork, name: str) -> str:
        """A library model's id, else a catalog entry's canonical id (bindings may precede installs)."""
        model = uow.models.find(name)
        if model is not None:
            return model.model_id
        catalog = self._catalog.load_catalog()
        entry = catalog.find(name)
        if entry is not None:
            return entry.id
        if uow.dependency_bindings.list(model_id=name):
            return name
        names = [n for m in uow.models.list() for n in (m.model_id, *m.aliases) if n]
        suggestions = difflib.get_close_matches(name, names, n=3, cutoff=0.5)
        suggestions += [s for s in catalog.suggestions(name) if s not in suggestions]
        raise NotFound(f"model {name!r} is neither in the library nor in the catalog", suggestions[:5])

    def _binding_keys(self, uow: LibraryUnitOfWork, name: str) -> tuple[str, tuple[str, ...]]:
        """The model's id and every id its bindings may be stored under.

        A library row keeps its own id, yet seeded bindings are keyed by catalog id: a row
        upgraded from the legacy layout has `model_id` = repo id and no canonical id, so the
        catalog entry that owns its repo counts too.
        """
        model_id = self._model_id(uow, name)
        keys = [model_id]
        model = uow.models.find(name)
        if model is not None:
            catalog = self._catalog.load_catalog()
            owners = [model.canonical_id]
            for candidate in (model.repo_id, model.model_id):
                entry = catalog.find(candidate) if candidate else None
                owners.append(entry.id if entry is not None else None)
            keys.extend(k for k in owners if k and k not in keys)
        return model_id, tuple(keys)

    def _bindings_of(self, uow: LibraryUnitOfWork, keys: tuple[str, ...]) -> list[DependencyBinding]:
        seen: dict[str, DependencyBinding] = {}
        for key in keys:
            for binding in uow.dependency_bindings.list(model_id=key):
                seen.setdefault(binding.binding_id, binding)
        return list(seen.values())

    def resolve_model_dependency_requirements(
        self,
        model_id: str,
        platform_context: PlatformContext,
        backend_key: str | None = None,
        expected_contract_version: int | str | None = None,
    ) -> DependencyResolution:
        """Validate every binding of the model that applies to the platform and backend."""
        check_contract_version(expected_contract_version)
        with self._uow_factory() as uow:
            resolved_id, keys = self._binding_keys(uow, model_id)
            bindings = self._bindings_of(uow, keys)
            return resolve_requirements(
                resolved_id, bindings, uow.dependency_profiles.get, platform_context, backend_key or None,
                bound_ids=keys,
            )

    # -- bindings and profiles ------------------------------------------------------------
    def bind(
        self,
        name: str,
        profile_id: str,
        *,
        profile_version: int | None = None,
        platform_selector: str = "*",
        backend_key: str = "*",
        environment_kind: str = "python-venv",
        binding_id: str | None = None,
    ) -> DependencyBinding:
        """Attach a dependency profile to a model. The profile may not exist yet (unknown_profile)."""
        with self._uow_factory() as uow:
            model_id = self._model_id(uow, name)
            binding = DependencyBinding(
                binding_id=binding_id or default_binding_id(model_id, profile_id, platform_selector, backend_key),
                model_id=model_id,
                profile_id=profile_id,
                profile_version=profile_version,
                environment_kind=environment_kind,
                platform_selector=platform_selector or "*",
                backend_key=backend_key or "*",
            )
            existing = uow.dependency_bindings.get(binding.binding_id)
            if existing is not None and existing.model_id != model_id:
                raise Conflict(f"binding id {binding.binding_id!r} already belongs to model {existing.model_id!r}")
            uow.dependency_bindings.add(binding)
            uow.commit()
            return binding

    def unbind(self, binding_id: str) -> DependencyBinding:
        with self._uow_factory() as uow:
            binding = uow.dependency_bindings.get(binding_id)
            if binding is None:
                raise NotFound(f"no dependency binding {binding_id!r}")
            uow.dependency_bindings.remove(binding_id)
            uow.commit()
            return binding

    def bindings(self, name: str | None = None) -> list[DependencyBinding]:
        with self._uow_factory() as uow:
            if not name:
                return uow.dependency_bindings.list(model_id=None)
            return self._bindings_of(uow, self._binding_keys(uow, name)[1])

    def profiles(self) -> list[DependencyProfile]:
        with self._uow_factory() as uow:
            return uow.dependency_profiles.list()

    def add_profile(
        self,
        profile_id: str,
        version: int,
        requirements: list[str],
        *,
        environment_kind: str = "python-venv",
        python_requires: str | None = None,
        description: str = "",
    ) -> DependencyProfile:
        """Store a new profile version; invalid ones are refused (stored versions are immutable)."""
        if environment_kind not in ENVIRONMENT_KINDS:
            raise InvalidRequest(f"environment kind must be one of {sorted(ENVIRONMENT_KINDS)}")
        if version < 1:
            raise InvalidRequest("profile version must be >= 1")
        profile = DependencyProfile(
            profile_id=profile_id,
            version=version,
            environment_kind=environment_kind,
            requirements=tuple(parse_requirement_spec(spec, python_requires) for spec in requirements),
            description=description,
        )
        errors = validate_profile(profile)
        if errors:
            raise InvalidRequest("; ".join(f"{e.field}: {e.message}" for e in errors))
        with self._uow_factory() as uow:
            if uow.dependency_profiles.get(profile_id, version) is not None:
                raise Conflict(f"profile {profile_id} v{version} exists; profile versions are immutable, add v{version + 1}")
            uow.dependency_profiles.add(profile)
            uow.commit()
        return profile


def current_platform(python_version: str | None = None) -> PlatformContext:
    """This machine: `linux-x86_64`, `darwin-arm64`... and this Python (the default for queries)."""
    import platform
    import sys

    # As Python reports it (`aarch64`, `AMD64`): what `platform_machine` markers are written against.
    return PlatformContext(sys.platform, platform.machine() or None, python_version or platform.python_version())


def platform_context(platform_label: str | None, python_version: str | None = None) -> PlatformContext:
    """The requested platform, or this machine's when none is given."""
    if platform_label:
        return PlatformContext.parse(platform_label, python_version)
    return current_platform(python_version)


def default_binding_id(model_id: str, profile_id: str, platform_selector: str = "*", backend_key: str = "*") -> str:
    parts = [model_id, profile_id]
    if platform_selector and platform_selector != "*":
        parts.append(platform_selector)
    if backend_key and backend_key not in {"*", profile_id}:
        parts.append(backend_key)
    return ":".join(parts)


def resolution_to_contract(resolution: DependencyResolution) -> dict:
    """The versioned response shape (contract version 1)."""
    return {
        "dependency_contract_version": resolution.contract_version,
        "model_id": resolution.model_id,
        "platform": resolution.platform.label,
        "backend_key": resolution.backend_key,
        "validation_state": resolution.validation_state.value,
        "validation_errors": [_error(e) for e in resolution.validation_errors],
        "requirement_groups": [
            {
                "binding_id": group.binding.binding_id,
                "profile_id": group.binding.profile_id,
                "profile_version": group.profile.version if group.profile else group.binding.profile_version,
                "environment_kind": group.binding.environment_kind,
                "platform_selector": group.binding.platform_selector,
                "backend_key": group.binding.backend_key,
                "validation_state": group.validation_state.value,
                "validation_errors": [_error(e) for e in group.validation_errors],
                "requirements": [
                    {
                        "name": item.requirement.name,
                        "extras": list(item.requirement.extras),
                        "pin": item.requirement.pin,
                        "markers": item.requirement.markers,
                        "python_requires": item.requirement.python_requires,
                        "specifier": item.requirement.specifier,
                        "applies": item.applies,
                    }
                    for item in group.requirements
                ],
            }
            for group in resolution.groups
        ],
    }


def _error(error) -> dict:
    return {
        "code": error.code,
        "scope": error.scope,
        "binding_id": error.binding_id,
        "field": error.field,
        "message": error.message,
    }
