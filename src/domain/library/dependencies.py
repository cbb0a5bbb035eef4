"""Validating dependency profiles and resolving a model's requirements per binding (the contract's rules)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Collection, Sequence

from domain.library.dependency_model import (
    DEPENDENCY_CONTRACT_VERSION,
    ENVIRONMENT_KINDS,
    ValidationState,
    worst,
    Requirement,
    DependencyProfile,
    DependencyBinding,
    PlatformContext,
    _NAME,
    canonical_name,
)
from domain.library.markers import InvalidMarker, _EXACT_PIN, _VERSION_CLAUSE, evaluate_marker, parse_marker


@dataclass(frozen=True)
class ValidationError:
    code: str
    scope: str  # binding | profile | requirement | model
    binding_id: str | None
    field: str | None
    message: str


def validate_profile(profile: DependencyProfile, binding_id: str | None = None) -> list[ValidationError]:
    """Every way a profile can be unusable; an empty list means it is valid."""
    errors: list[ValidationError] = []

    def add(code: str, scope: str, field: str | None, message: str) -> None:
        errors.append(ValidationError(code, scope, binding_id, field, message))

    if profile.environment_kind not in ENVIRONMENT_KINDS:
        add("invalid_environment_kind", "profile", "environment_kind",
            f"{profile.environment_kind!r} is not one of {sorted(ENVIRONMENT_KINDS)}")
    if not profile.requirements:
        add("empty_profile", "profile", "requirements", f"profile {profile.profile_id} v{profile.version} pins nothing")
    seen: dict[tuple[str, str], str] = {}
    for index, req in enumerate(profile.requirements):
        where = f"requirements[{index}]"
        if not _NAME.fullmatch(req.name or ""):
            add("invalid_name", "requirement", f"{where}.name", f"{req.name!r} is not a valid package name")
        if not _EXACT_PIN.fullmatch((req.pin or "").strip()):
            add("invalid_pin", "requirement", f"{where}.pin",
                f"{req.name}: {req.pin!r} is not an exact pin like '==1.2.3'")
        if any(not _NAME.fullmatch(extra) for extra in req.extras):
            add("invalid_extra", "requirement", f"{where}.extras", f"{req.name}: invalid extras {list(req.extras)}")
        if req.markers:
            try:
                parse_marker(req.markers)
            except InvalidMarker as exc:
                add("invalid_marker", "requirement", f"{where}.markers", f"{req.name}: {exc}")
        if req.python_requires and not all(
            _VERSION_CLAUSE.fullmatch(clause) for clause in req.python_requires.split(",")
        ):
            add("invalid_python_requires", "requirement", f"{where}.python_requires",
                f"{req.name}: {req.python_requires!r} is not a version specifier")
        key = (canonical_name(req.name or ""), (req.markers or "").strip())
        if key in seen and seen[key] != req.pin:
            add("duplicate_requirement", "requirement", f"{where}.pin",
                f"{req.name} is pinned twice in the profile ({seen[key]} and {req.pin})")
        seen.setdefault(key, req.pin)
    return errors


@dataclass(frozen=True)
class ResolvedRequirement:
    requirement: Requirement
    applies: bool | None  # the markers on the requested platform; None when unknown


@dataclass(frozen=True)
class BindingResolution:
    binding: DependencyBinding
    profile: DependencyProfile | None
    requirements: tuple[ResolvedRequirement, ...]
    validation_state: ValidationState
    validation_errors: tuple[ValidationError, ...] = ()


@dataclass(frozen=True)
class DependencyResolution:
    model_id: str
    platform: PlatformContext
    backend_key: str | None
    groups: tuple[BindingResolution, ...]
    validation_state: ValidationState
    validation_errors: tuple[ValidationError, ...] = ()
    contract_version: int = DEPENDENCY_CONTRACT_VERSION


ProfileLookup = Callable[[str, int | None], DependencyProfile | None]


def resolve_requirements(
    model_id: str,
    bindings: Sequence[DependencyBinding],
    find_profile: ProfileLookup,
    platform: PlatformContext,
    backend_key: str | None = None,
    bound_ids: Collection[str] = (),
) -> DependencyResolution:
    """Validate each binding of `model_id` that applies to `platform`/`backend_key`.

    `bound_ids` are further ids the model's bindings may be stored under (its catalog id).

    - unknown_profile: the binding names a profile (or version) that does not exist;
    - invalid_profile: the profile breaks a rule of `validate_profile`;
    - profile_conflict: two bindings pin one package to different versions where both apply,
      or ask for different environment kinds.
    """
    applicable = sorted(
        (b for b in bindings if (b.model_id == model_id or b.model_id in bound_ids) and b.applies_to(platform, backend_key)),
        key=lambda b: b.binding_id,
    )
    drafts: list[dict] = []
    for binding in applicable:
        profile = find_profile(binding.profile_id, binding.profile_version)
        errors: list[ValidationError] = []
        state = ValidationState.RESOLVED
        resolved: tuple[ResolvedRequirement, ...] = ()
        if profile is None:
            state = ValidationState.UNKNOWN_PROFILE
            wanted = f"{binding.profile_id}" + (f" v{binding.profile_version}" if binding.profile_version else "")
            errors.append(ValidationError("unknown_profile", "binding", binding.binding_id, "profile_id",
                                          f"no dependency profile {wanted}"))
        else:
            errors.extend(validate_profile(profile, binding.binding_id))
            if profile.environment_kind != binding.environment_kind:
                errors.append(ValidationError(
                    "environment_kind_mismatch", "binding", binding.binding_id, "environment_kind",
                    f"binding wants {binding.environment_kind}, profile {profile.profile_id} is {profile.environment_kind}",
                ))
            if errors:
                state = ValidationState.INVALID_PROFILE
            resolved = tuple(ResolvedRequirement(r, _applies(r, platform)) for r in profile.requirements)
        drafts.append({"binding": binding, "profile": profile, "requirements": resolved,
                       "state": state, "errors": errors})

    _mark_conflicts(drafts)
    groups = tuple(
        BindingResolution(d["binding"], d["profile"], d["requirements"], d["state"], tuple(d["errors"]))
        for d in drafts
    )
    all_errors = tuple(e for g in groups for e in g.validation_errors)
    return DependencyResolution(
        model_id=model_id,
        platform=platform,
        backend_key=backend_key,
        groups=groups,
        validation_state=worst(g.validation_state for g in groups),
        validation_errors=all_errors,
    )


def _applies(requirement: Requirement, platform: PlatformContext) -> bool | None:
    if not requirement.markers:
        return True
    try:
        return evaluate_marker(parse_marker(requirement.markers), platform.marker_environment())
    except InvalidMarker:
        return None


def _mark_conflicts(drafts: list[dict]) -> None:
    """Pins of one package that differ across bindings, where both may apply, conflict."""
    usable = [d for d in drafts if d["profile"] is not None]
    pins: dict[str, list[tuple[dict, Requirement]]] = {}
    for draft in usable:
        for item in draft["requirements"]:
            if item.applies is False:
                continue
            pins.setdefault(canonical_name(item.requirement.name), []).append((draft, item.requirement))
    for name, entries in sorted(pins.items()):
        distinct = {_pin_version(req.pin) for _, req in entries}
        owners = {id(d) for d, _ in entries}
        if len(distinct) > 1 and len(owners) > 1:
            detail = ", ".join(sorted(f"{d['binding'].binding_id}: {req.pin}" for d, req in entries))
            for draft in {id(d): d for d, _ in entries}.values():
                draft["errors"].append(ValidationError(
                    "conflicting_pin", "model", draft["binding"].binding_id, "requirements",
                    f"{name} is pinned differently by the model's bindings ({detail})",
                ))
                draft["state"] = ValidationState.PROFILE_CONFLICT
    kinds = {d["binding"].environment_kind for d in drafts}
    if len(kinds) > 1:
        for draft in drafts:
            draft["errors"].append(ValidationError(
                "conflicting_environment_kind", "model", draft["binding"].binding_id, "environment_kind",
                f"the model's bindings ask for different environments: {sorted(kinds)}",
            ))
            draft["state"] = ValidationState.PROFILE_CONFLICT


def _pin_version(pin: str) -> str:
    return pin.strip().lstrip("=").strip()
