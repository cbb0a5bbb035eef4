"""HTTP DTOs (pydantic)."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, Field

from domain.catalog.model import CatalogModel
from entrypoints.bounds import MAX_SQL_INT

# Query/path integers that reach SQL: bounded so a huge number is a 422, never an OverflowError (a 500).
Offset = Annotated[int, Field(ge=0, le=MAX_SQL_INT)]
PageLimit = Annotated[int, Field(ge=1, le=1000)]


class SourceDTO(BaseModel):
    kind: str
    value: str
    priority: int
    enabled: bool
    allow_fallback: bool


class CatalogModelDTO(BaseModel):
    id: str
    display_name: str
    type: str
    family: str
    aliases: list[str]
    sources: list[SourceDTO]
    revision: str | None = None
    size_bytes: int | None = None
    license: str | None = None
    description: str = ""
    tags: list[str] = []
    supersedes: list[str] = []

    @classmethod
    def from_domain(cls, m: CatalogModel) -> "CatalogModelDTO":
        return cls(
            id=m.id,
            display_name=m.display_name,
            type=m.model_type.value,
            family=m.family,
            aliases=list(m.aliases),
            sources=[
                SourceDTO(kind=s.kind.value, value=s.value, priority=s.priority, enabled=s.enabled,
                          allow_fallback=s.allow_fallback)
                for s in m.sources
            ],
            revision=m.revision,
            size_bytes=m.size_bytes,
            license=m.license,
            description=m.description,
            tags=list(m.tags),
            supersedes=list(m.supersedes),
        )


class CatalogListDTO(BaseModel):
    object: str = "list"
    data: list[CatalogModelDTO]


class HealthDTO(BaseModel):
    status: str
    version: str


# -- errors -----------------------------------------------------------------------
class ErrorBody(BaseModel):
    type: str
    message: str
    param: str | None = None
    suggestions: list[str] | None = None


class ErrorResponse(BaseModel):
    """Every 4xx/5xx body: `{"error": {"type", "message"}}`."""

    error: ErrorBody


class DeletedDTO(BaseModel):
    id: str
    deleted: bool = True
