"""DTOs of the library's models in the management API (`/api/models`, probe results)."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from domain.library.capabilities import ModelCapabilities
from domain.library.models import Model
from entrypoints.http.overlay_names import confirmed_fields
from entrypoints.http.overlay_views import OverrideDTO, overrides_of
from entrypoints.http.schemas import Offset, PageLimit


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


# -- probe ---------------------------------------------------------------------------
class ProbeResponse(BaseModel):
    model_id: str
    capabilities: CapabilitiesDTO | None
    sample_output: str | None = None
    warnings: list[str] = []
