"""DTOs of `PATCH /api/models/{id}` (the user's metadata overlays) and their JSON forms."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from entrypoints.http.library.model_schemas import ModelDetailDTO


class ModelPatch(BaseModel):
    """Correct what import, probe or a pull inferred. Each given field becomes an override that
    survives re-probes, updates and re-imports; `reset` drops overrides, `confirm` accepts inferred values."""

    model_config = ConfigDict(extra="forbid")

    type: str | None = Field(default=None, description="text-gen, vision, embeddings or audio")
    family: str | None = None
    description: str | None = None
    display_name: str | None = None
    add_tags: list[str] = Field(default=[], description="Tags that stay, whatever is inferred")
    remove_tags: list[str] = Field(default=[], description="Inferred tags to hide")
    reset: list[str] = Field(default=[], description="Fields whose override goes: type, family, tags, "
                             "description, display_name")
    confirm: list[str] = Field(default=[], description="Fields whose inferred value is right (settles needs-review)")
    force: bool = Field(default=False, description="On a type change, convert the model's profiles that no "
                        "longer fit (dropping their defaults that do not apply)")


class ProfileConversionDTO(BaseModel):
    name: str
    from_type: str
    to_type: str
    dropped: list[str]


class ModelPatchResponse(BaseModel):
    model: ModelDetailDTO  # the model as GET /api/models/{id} shows it (overrides marked)
    converted_profiles: list[ProfileConversionDTO] = []
    manifest: str | None = None
    notes: list[str] = []
