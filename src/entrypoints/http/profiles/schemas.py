"""DTOs of execution profiles in the management API (`/api/profiles`)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import AliasChoices, BaseModel, ConfigDict, Field

from domain.profiles.params import AudioDefaults, InferenceContext, InferenceParams
from domain.profiles.model import ExecutionProfile


def _value_dict(value: object) -> dict[str, Any]:
    return {k: (list(v) if isinstance(v, tuple) else v) for k, v in vars(value).items()}


# -- profiles ------------------------------------------------------------------------
class InferenceParamsDTO(BaseModel):
    model_config = ConfigDict(extra="forbid")

    temperature: float | None = None
    max_tokens: int | None = None
    top_p: float | None = None
    top_k: int | None = None
    min_p: float | None = None
    repetition_penalty: float | None = None
    seed: int | None = None
    stop: list[str] | None = None

    @classmethod
    def from_domain(cls, value: InferenceParams) -> "InferenceParamsDTO":
        # Per-request-only fields (penalties, logprobs) are not profile settings (yet): not shown.
        return cls(**{k: v for k, v in _value_dict(value).items() if k in cls.model_fields})


class InferenceContextDTO(BaseModel):
    model_config = ConfigDict(extra="forbid")

    context_length: int | None = None
    system_prompt: str | None = None
    enable_tool_injection: bool | None = None
    enable_thinking: bool | None = Field(default=None, description="false switches the model's thinking off")
    response_format: dict[str, Any] | None = Field(
        default=None, description='Structured output for requests that bring none: {"type": "json_object"} or '
                                  '{"type": "json_schema", "json_schema": {"schema": {...}}}')

    @classmethod
    def from_domain(cls, value: InferenceContext) -> "InferenceContextDTO":
        data = _value_dict(value)
        if value.response_format is not None:
            data["response_format"] = value.response_format.to_response_format()
        return cls(**data)


class AudioDefaultsDTO(BaseModel):
    model_config = ConfigDict(extra="forbid")

    voice: str | None = None
    speed: float | None = None
    sample_rate: int | None = None
    stt_language: str | None = None

    @classmethod
    def from_domain(cls, value: AudioDefaults) -> "AudioDefaultsDTO":
        return cls(**_value_dict(value))


class ProfileCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str
    # `model` everywhere; `model_id` (the name responses used to carry alone) is accepted too.
    model: str = Field(validation_alias=AliasChoices("model", "model_id"),
                       description="Any library name of the model: id, canonical id, alias or repo id")
    description: str | None = None
    auto_start: bool = False
    inference: InferenceParamsDTO | None = None
    context: InferenceContextDTO | None = None
    audio: AudioDefaultsDTO | None = None


class ProfileUpdate(BaseModel):
    """A partial update: omitted fields keep their value; a given group replaces the group."""

    model_config = ConfigDict(extra="forbid")

    name: str | None = None
    model: str | None = Field(default=None, validation_alias=AliasChoices("model", "model_id"))
    description: str | None = None
    auto_start: bool | None = None
    inference: InferenceParamsDTO | None = None
    context: InferenceContextDTO | None = None
    audio: AudioDefaultsDTO | None = None


class ProfileResponse(BaseModel):
    id: int | None
    name: str
    profile_type: Literal["base", "inference", "audio"]
    model: str | None = Field(description="The profile's model (same name as in requests)")
    model_id: str | None = Field(description="The same value as `model` (kept for existing clients)")
    description: str | None = None
    auto_start: bool
    launchd_installed: bool = Field(False, description="auto_start, and `mlxm service install` set up the login "
                                                       "service (launchd or systemd --user) for this home")
    inference: InferenceParamsDTO
    context: InferenceContextDTO
    audio: AudioDefaultsDTO
    created_at: datetime | None = None
    updated_at: datetime | None = None

    @classmethod
    def from_domain(cls, p: ExecutionProfile, *, service_installed: bool = False) -> "ProfileResponse":
        return cls(
            id=p.id,
            name=p.name,
            profile_type=p.profile_type.value,
            model=p.model_id,
            model_id=p.model_id,
            description=p.description,
            auto_start=p.auto_start,
            launchd_installed=p.auto_start and service_installed,
            inference=InferenceParamsDTO.from_domain(p.inference),
            context=InferenceContextDTO.from_domain(p.context),
            audio=AudioDefaultsDTO.from_domain(p.audio),
            created_at=p.created_at,
            updated_at=p.updated_at,
        )


class ProfileListDTO(BaseModel):
    object: Literal["list"] = "list"
    data: list[ProfileResponse]
