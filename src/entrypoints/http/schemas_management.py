"""DTOs of the management API (`/api/...`)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import AliasChoices, BaseModel, ConfigDict, Field

from domain.library.capabilities import ModelCapabilities
from domain.library.models import Model
from domain.profiles.params import AudioDefaults, InferenceContext, InferenceParams
from domain.profiles.model import ExecutionProfile
from entrypoints.http.overlay_names import confirmed_fields
from entrypoints.http.overlay_views import OverrideDTO, overrides_of
from entrypoints.http.schemas import Offset, PageLimit


def _value_dict(value: object) -> dict[str, Any]:
    return {k: (list(v) if isinstance(v, tuple) else v) for k, v in vars(value).items()}


# -- models ---------------------------------------------------------------------------
class CapabilitiesDTO(BaseModel):
    model_type: str
    probed_at: datetime | None = None
    probe_version: int | None = None
    model_family: str | None = None
    supports_native_tools: bool | None = None
    supports_thinking: bool | None = None
    tool_format: str | None = None
    tool_parser_id: str | None = None
    thinking_parser_id: str | None = None
    practical_max_tokens: int | None = None
    supports_multi_image: bool | None = None
    supports_video: bool | None = None
    embedding_dimensions: int | None = None
    max_sequence_length: int | None = None
    is_normalized: bool | None = None
    supports_tts: bool | None = None
    supports_stt: bool | None = None

    @classmethod
    def from_domain(cls, caps: ModelCapabilities | None) -> "CapabilitiesDTO | None":
        if caps is None:
            return None
        values = {k: v for k, v in vars(caps).items() if k in cls.model_fields}
        values["model_type"] = caps.model_type.value
        return cls(**values)


class ModelFileDTO(BaseModel):
    path: str
    size: int
    sha256: str | None = None
    revision: str | None = None


class ModelDTO(BaseModel):
    id: str
    repo_id: str | None = None
    canonical_id: str | None = None
    type: str | None = None
    family: str | None = None
    status: str
    installed: bool
    local_path: str | None = None
    size_bytes: int | None = None
    revision: str | None = None
    source: str | None = None
    aliases: list[str] = []
    tags: list[str] = []
    description: str = ""
    downloaded_at: datetime | None = None
    last_used_at: datetime | None = None
    managed: bool = True
    capabilities: CapabilitiesDTO | None = None
    review_reasons: list[str] = []
    display_name: str | None = None

    @classmethod
    def from_domain(cls, m: Model) -> "ModelDTO":
        return cls(
            id=m.model_id,
            repo_id=m.repo_id,
            canonical_id=m.canonical_id,
            type=m.model_type.value if m.model_type else None,
            family=m.family,
            status=m.status.value,
            installed=m.is_installed,
            local_path=m.local_path,
            size_bytes=m.size_bytes,
            revision=m.revision,
            source=m.source,
            aliases=list(m.aliases),
            tags=list(m.tags),
            description=m.description,
            downloaded_at=m.downloaded_at,
            last_used_at=m.last_used_at,
            managed=m.managed,
            capabilities=CapabilitiesDTO.from_domain(m.capabilities),
            review_reasons=list(m.review_reasons),
            display_name=m.display_name,
        )


class ModelDetailDTO(ModelDTO):
    files: list[ModelFileDTO] = []
    # Keys as in this object: type, family, tags ({"add", "remove"}), description, display_name.
    overrides: dict[str, OverrideDTO] = {}
    confirmed: list[str] = []  # fields whose inferred value the user confirmed (settles their review)

    @classmethod
    def from_domain(cls, m: Model, overlays=None) -> "ModelDetailDTO":
        base = ModelDTO.from_domain(m).model_dump()
        return cls(**base, files=[ModelFileDTO(path=f.path, size=f.size, sha256=f.sha256, revision=f.revision) for f in m.files],
                   overrides=overrides_of(overlays), confirmed=confirmed_fields(overlays))


class ModelListQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")

    q: str | None = Field(default=None, description="Free text: prefix match on ids, aliases, family, tags")
    type: Literal["text-gen", "vision", "embeddings", "audio"] | None = None
    capability: Literal["tools", "thinking", "multi_image", "video", "tts", "stt", "normalized"] | None = None
    status: Literal["pending", "starting", "downloading", "paused", "completed", "failed", "cancelled"] | None = None
    limit: PageLimit = 50
    offset: Offset = 0


class ModelListDTO(BaseModel):
    object: Literal["list"] = "list"
    data: list[ModelDTO]
    total: int
    limit: int
    offset: int


class ImportRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    path: str = Field(description="A local MLX model folder (config.json + safetensors)")
    name: str = Field(description="The id the model is registered under")


class DeletedDTO(BaseModel):
    id: str
    deleted: bool = True


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


# -- chat (management) ---------------------------------------------------------------
class ChatMessageDTO(BaseModel):
    model_config = ConfigDict(extra="forbid")

    role: Literal["system", "user", "assistant"]
    content: str
    reasoning: str | None = Field(default=None, description="An assistant turn's thinking (answers only)")


class ChatRequestMessageDTO(ChatMessageDTO):
    """A request's message: may carry images (answers never do)."""

    images: list[str] | None = Field(default=None, description="base64 or data: / http(s) URLs (vision models)")


class ChatRequest(BaseModel):
    """Chat through a profile (by id or name) or a model, with per-request overrides."""

    model_config = ConfigDict(extra="forbid")

    profile_id: int | str | None = None
    model: str | None = None
    messages: list[ChatRequestMessageDTO] = Field(min_length=1)
    overrides: InferenceParamsDTO | None = None
    enable_thinking: bool | None = Field(default=None, description="false switches the model's thinking off")
    # OpenAI's shape: {"type": "json_object"} or {"type": "json_schema", "json_schema": {"schema": {...}}}.
    response_format: dict[str, Any] | None = None
    stream: bool = False


class ChatUsageDTO(BaseModel):
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int
    cached_tokens: int = 0  # prompt tokens served from the prompt (KV) cache


class ChatResponse(BaseModel):
    model: str
    profile: str | None = None
    message: ChatMessageDTO
    finish_reason: str | None
    usage: ChatUsageDTO


class ChatStreamEvent(BaseModel):
    delta: str = ""
    reasoning_delta: str = ""
    finish_reason: str | None = None
    usage: ChatUsageDTO | None = None


# -- pool --------------------------------------------------------------------------
class ShardingDTO(BaseModel):
    mode: str = Field(description="tensor | pipeline")
    ranks: int
    hosts: list[str] = Field(description="ssh names from the hostfile, rank 0 first")
    backend: str
    rank_bytes: list[int] = Field(default_factory=list, description="Each rank's share of the weights")
    unavailable: str | None = Field(default=None, description="Why the model cannot serve now")


class PromptCacheDTO(BaseModel):
    bytes: int = Field(description="Bytes the cache holds now; counted with the weights against max_memory_bytes")
    entries: int = Field(description="Cached sequences (prompts, or prompt + answer)")
    max_entries: int = Field(description="MLX_SERVER_PROMPT_CACHE_SIZE")
    max_bytes: int = Field(description="MLX_SERVER_PROMPT_CACHE_BYTES")


class LoadedModelDTO(BaseModel):
    model_id: str
    type: str | None = None
    size_bytes: int | None = None
    loaded_at: datetime | None = None
    last_used_at: datetime | None = None
    use_count: int | None = None
    pinned: bool = False
    in_use: int = Field(default=0, description="Requests holding the model right now")
    sharding: ShardingDTO | None = Field(default=None, description="Placement over several ranks (mlxm serve --hosts)")
    available: bool = Field(default=True, description="False: the model cannot serve now (a rank died or hung)")
    prompt_cache: PromptCacheDTO | None = Field(
        default=None, description="The model's prompt (KV) cache; null: it has none (off, audio, embeddings, sharded)")


class PoolDTO(BaseModel):
    loaded: list[LoadedModelDTO]
    max_models: int | None = None
    max_memory_bytes: int | None = None
    used_bytes: int | None = Field(default=None, description="What the pool counts against max_memory_bytes: "
                                   "the loaded models' weights plus their prompt caches")
    eviction_policy: str | None = None


class HostLoadedModelDTO(BaseModel):
    model_id: str
    type: str
    size_bytes: int
    loaded_at: datetime
    last_used_at: datetime
    use_count: int
    updated_at: datetime | None = Field(None, description="When that host last published its pool")


class PoolHostsDTO(BaseModel):
    this_host: str
    hosts: dict[str, list[HostLoadedModelDTO]] = Field(description="Loaded models by host name")


class PoolActionRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    model: str = Field(description="A profile name, canonical id, alias or repo id")


class PoolActionResponse(BaseModel):
    model_id: str
    loaded: bool


# -- selection -----------------------------------------------------------------------
class SelectionDTO(BaseModel):
    model_id: str
    changed: bool
    reason: str = ""


class SelectionRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    model: str


# -- probe ---------------------------------------------------------------------------
class ProbeResponse(BaseModel):
    model_id: str
    capabilities: CapabilitiesDTO | None
    sample_output: str | None = None
    warnings: list[str] = []
