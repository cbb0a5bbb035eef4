"""Profiles after their model's type changed: which no longer fit, and what converting them drops.

A profile's type follows its model's type (text-gen and vision: inference; audio: audio;
embeddings: base). When a user corrects the model's type, a profile of another type is a
mismatch; converting it keeps its name, model and description and drops the defaults that do not
apply to the new type.
"""

from __future__ import annotations

from dataclasses import dataclass

from domain.enums import ModelType, ProfileType
from domain.profiles.model import PROFILE_CLASSES, ExecutionProfile, profile_type_for
from domain.profiles.params import AudioDefaults, InferenceContext, InferenceParams, set_fields

# The default groups each profile type keeps.
KEPT_GROUPS: dict[ProfileType, tuple[str, ...]] = {
    ProfileType.INFERENCE: ("inference", "context"),
    ProfileType.AUDIO: ("audio",),
    ProfileType.BASE: (),
}
_EMPTY = {"inference": InferenceParams, "context": InferenceContext, "audio": AudioDefaults}


@dataclass(frozen=True)
class ProfileConversion:
    name: str
    from_type: ProfileType
    to_type: ProfileType
    dropped: tuple[str, ...]  # "inference.temperature=0.7"
    profile: ExecutionProfile  # the converted profile (same id and name)


def convert_profile(profile: ExecutionProfile, model_type: ModelType | None) -> ProfileConversion | None:
    """The conversion `profile` needs for a model of `model_type`; None when it already fits."""
    target = profile_type_for(model_type)
    if profile.profile_type is target:
        return None
    kept = KEPT_GROUPS[target]
    dropped: list[str] = []
    groups = {}
    for group, empty in _EMPTY.items():
        value = getattr(profile, group)
        if group in kept:
            groups[group] = value
            continue
        dropped += [f"{group}.{name}={getattr(value, name)!r}" for name in set_fields(value)]
        groups[group] = empty()
    converted = PROFILE_CLASSES[target](
        name=profile.name, model_id=profile.model_id, description=profile.description,
        auto_start=profile.auto_start, id=profile.id, created_at=profile.created_at, updated_at=profile.updated_at,
        **groups,
    )
    return ProfileConversion(profile.name, profile.profile_type, target, tuple(dropped), converted)


def conversions_for(profiles: list[ExecutionProfile], model_id: str,
                    model_type: ModelType | None) -> list[ProfileConversion]:
    """Every profile of `model_id` that does not fit `model_type`, with its conversion."""
    found = []
    for profile in profiles:
        if profile.model_id == model_id:
            conversion = convert_profile(profile, model_type)
            if conversion is not None:
                found.append(conversion)
    return found
