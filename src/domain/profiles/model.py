"""Execution profiles: named inference defaults for one model.

base (embeddings), inference (text-gen and vision) and audio profiles. A profile's type
follows its model's type, and its defaults must fit that type.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime

from domain.enums import ModelType, ProfileType
from domain.errors import InvalidParameter, ProfileTypeMismatch
from domain.profiles.params import AudioDefaults, InferenceContext, InferenceParams, is_empty, set_fields

PROFILE_NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


def profile_type_for(model_type: ModelType | None) -> ProfileType:
    if model_type is None:
        return ProfileType.INFERENCE
    return {
        ModelType.TEXT_GEN: ProfileType.INFERENCE,
        ModelType.VISION: ProfileType.INFERENCE,
        ModelType.EMBEDDINGS: ProfileType.BASE,
        ModelType.AUDIO: ProfileType.AUDIO,
    }[ModelType(model_type)]


@dataclass
class ExecutionProfile:
    name: str
    model_id: str | None = None
    description: str | None = None
    auto_start: bool = False
    id: int | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None
    # Present on every type so that validation can name what does not fit.
    inference: InferenceParams = field(default_factory=InferenceParams)
    context: InferenceContext = field(default_factory=InferenceContext)
    audio: AudioDefaults = field(default_factory=AudioDefaults)

    profile_type: ProfileType = ProfileType.BASE


@dataclass
class InferenceProfile(ExecutionProfile):
    profile_type: ProfileType = ProfileType.INFERENCE


@dataclass
class AudioProfile(ExecutionProfile):
    profile_type: ProfileType = ProfileType.AUDIO


PROFILE_CLASSES: dict[ProfileType, type[ExecutionProfile]] = {
    ProfileType.BASE: ExecutionProfile,
    ProfileType.INFERENCE: InferenceProfile,
    ProfileType.AUDIO: AudioProfile,
}


def validate_profile_defaults(
    profile_type: ProfileType,
    inference: InferenceParams,
    context: InferenceContext,
    audio: AudioDefaults,
) -> None:
    """Raise `ProfileTypeMismatch` naming the first field that does not fit the type."""
    if profile_type is ProfileType.INFERENCE:
        if not is_empty(audio):
            raise ProfileTypeMismatch(
                f"audio.{set_fields(audio)[0]}", "audio defaults do not apply to a text model"
            )
        return
    if profile_type is ProfileType.AUDIO:
        if not is_empty(inference):
            raise ProfileTypeMismatch(
                f"inference.{set_fields(inference)[0]}", "inference defaults do not apply to an audio model"
            )
        if not is_empty(context):
            raise ProfileTypeMismatch(
                f"context.{set_fields(context)[0]}", "context defaults do not apply to an audio model"
            )
        return
    for group, value in (("inference", inference), ("context", context), ("audio", audio)):
        if not is_empty(value):
            raise ProfileTypeMismatch(
                f"{group}.{set_fields(value)[0]}", "an embeddings model takes no inference or audio defaults"
            )


def make_profile(
    name: str,
    model_type: ModelType | None,
    *,
    model_id: str | None = None,
    description: str | None = None,
    auto_start: bool = False,
    inference: InferenceParams | None = None,
    context: InferenceContext | None = None,
    audio: AudioDefaults | None = None,
) -> ExecutionProfile:
    """Build the profile subclass that fits `model_type`, validating name and defaults."""
    if not isinstance(name, str) or not PROFILE_NAME_PATTERN.fullmatch(name):
        raise InvalidParameter("name", "use 1-64 letters, digits, '.', '_' or '-', starting with a letter or digit")
    profile_type = profile_type_for(model_type)
    inference = inference or InferenceParams()
    context = context or InferenceContext()
    audio = audio or AudioDefaults()
    validate_profile_defaults(profile_type, inference, context, audio)
    cls = PROFILE_CLASSES[profile_type]
    return cls(
        name=name,
        model_id=model_id,
        description=description,
        auto_start=auto_start,
        inference=inference,
        context=context,
        audio=audio,
    )
