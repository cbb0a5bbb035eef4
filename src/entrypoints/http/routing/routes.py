"""Management routes of the routing context: backend mappings and cloud credentials (masked, never returned in clear)."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field, RootModel, field_validator
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from domain.enums import BackendType, PatternType
from domain.errors import InvalidParameter
from entrypoints.bounds import MAX_SQL_INT
from entrypoints.http.openapi import api_route, parse_body
from entrypoints.http.responses import _c, _json


TAGS_ROUTING = ("routing",)


class MappingDTO(BaseModel):
    id: int
    model_pattern: str
    pattern_type: PatternType
    backend_type: BackendType
    backend_model: str | None = None
    fallback_backend: BackendType | None = None
    fallback_model: str | None = Field(default=None, description="The local fallback's model or profile.")
    priority: int
    enabled: bool
    problem: str | None = Field(default=None, description="Why a stored mapping is disabled (fails vetting).")

    @classmethod
    def from_domain(cls, m) -> "MappingDTO":
        return cls(id=m.id, model_pattern=m.model_pattern, pattern_type=m.pattern_type, backend_type=m.backend_type,
                   backend_model=m.backend_model, fallback_backend=m.fallback_backend,
                   fallback_model=m.fallback_model, priority=m.priority,
                   enabled=m.enabled, problem=m.problem)


class CreateMappingRequest(BaseModel):
    model_pattern: str
    pattern_type: PatternType = PatternType.EXACT
    backend_type: BackendType
    backend_model: str | None = None
    fallback_backend: BackendType | None = None
    fallback_model: str | None = Field(default=None, max_length=255,
                                       description="With fallback_backend local: the local model or profile it runs.")
    priority: int = Field(default=0, ge=-1_000_000, le=1_000_000)
    enabled: bool = True


class UpdateMappingRequest(BaseModel):
    """Only the fields sent change; `backend_model` and `fallback_backend` may be null (cleared), the rest not."""

    model_pattern: str | None = None
    pattern_type: PatternType | None = None
    backend_type: BackendType | None = None
    backend_model: str | None = None
    fallback_backend: BackendType | None = None
    fallback_model: str | None = Field(default=None, max_length=255)
    priority: int | None = Field(default=None, ge=-1_000_000, le=1_000_000)
    enabled: bool | None = None

    @field_validator("model_pattern", "pattern_type", "backend_type", "priority", "enabled", mode="before")
    @classmethod
    def _not_null(cls, value):
        if value is None:  # only an explicit null gets here (defaults are not validated)
            raise ValueError("may be left out but not null")
        return value


class CredentialDTO(BaseModel):
    backend_type: BackendType
    base_url: str
    api_key: str = Field(description="Masked, e.g. sk-...abcd. The key itself is never returned.")
    updated_at: datetime | None = None

    @classmethod
    def from_domain(cls, c) -> "CredentialDTO":
        return cls(backend_type=c.backend_type, base_url=c.base_url, api_key=c.masked_key, updated_at=c.updated_at)


class SetCredentialRequest(BaseModel):
    api_key: str = Field(min_length=1, max_length=4096)
    base_url: str | None = None


class MappingListDTO(RootModel[list[MappingDTO]]):
    """Backend mappings, highest priority first."""


class CredentialListDTO(RootModel[list[CredentialDTO]]):
    """Cloud credentials, masked."""


class ResolvedRouteDTO(BaseModel):
    model: str
    backend_type: str
    backend_model: str | None = None
    fallback_backend: str | None = None
    mapping_id: int | None = None


# -- backend mappings ---------------------------------------------------------------------
async def list_mappings(request: Request) -> Response:
    """Backend mappings, highest priority first."""
    return _json([MappingDTO.from_domain(m) for m in await run_in_threadpool(_c(request).backend_mapping_service().list)])


async def create_mapping(request: Request) -> Response:
    """Add a mapping; regex patterns are checked for catastrophic backtracking (422)."""
    body = await parse_body(request, CreateMappingRequest)
    mapping = await run_in_threadpool(lambda: _c(request).backend_mapping_service().add(
        body.model_pattern, body.backend_type, pattern_type=body.pattern_type, backend_model=body.backend_model,
        fallback_backend=body.fallback_backend, fallback_model=body.fallback_model, priority=body.priority,
        enabled=body.enabled))
    return _json(MappingDTO.from_domain(mapping), 201)


def _backend(request: Request) -> BackendType:
    value = request.path_params["backend_type"]
    try:
        return BackendType(value)
    except ValueError:
        raise InvalidParameter("backend_type", f"unknown backend {value!r}; one of "
                               + ", ".join(b.value for b in BackendType)) from None


def _mapping_id(request: Request) -> int:
    raw = str(request.path_params["mapping_id"])
    # ASCII digits within a SQLite integer; anything else names no mapping (never a ValueError/OverflowError 500).
    if not (raw.isascii() and raw.isdigit()) or not 0 < int(raw) <= MAX_SQL_INT:
        raise HTTPException(404, f"mapping {raw[:40]!r} not found")
    return int(raw)


async def show_mapping(request: Request) -> Response:
    """One mapping."""
    return _json(MappingDTO.from_domain(
        await run_in_threadpool(_c(request).backend_mapping_service().get, _mapping_id(request))))


async def update_mapping(request: Request) -> Response:
    """Change fields of a mapping (validated like a new one)."""
    body = await parse_body(request, UpdateMappingRequest)
    changes = body.model_dump(exclude_unset=True)
    mapping = await run_in_threadpool(lambda: _c(request).backend_mapping_service().update(_mapping_id(request),
                                                                                        **changes))
    return _json(MappingDTO.from_domain(mapping))


async def delete_mapping(request: Request) -> Response:
    """Remove a mapping."""
    await run_in_threadpool(_c(request).backend_mapping_service().remove, _mapping_id(request))
    return Response(status_code=204)


async def resolve_route(request: Request) -> Response:
    """Where a request for `model` would go."""
    decision = await run_in_threadpool(_c(request).backend_mapping_service().resolve, request.path_params["model"])
    return _json(ResolvedRouteDTO(
        model=request.path_params["model"], backend_type=decision.backend_type.value,
        backend_model=decision.backend_model,
        fallback_backend=decision.fallback_backend.value if decision.fallback_backend else None,
        mapping_id=decision.mapping_id))


# -- credentials ---------------------------------------------------------------------------
async def list_credentials(request: Request) -> Response:
    """Cloud credentials, masked (admins only)."""
    return _json([CredentialDTO.from_domain(c) for c in await run_in_threadpool(_c(request).credential_service().list)])


async def set_credential(request: Request) -> Response:
    """Store the API key of a cloud backend type, encrypted; answers it masked."""
    body = await parse_body(request, SetCredentialRequest)
    backend = _backend(request)
    masked = await run_in_threadpool(_c(request).credential_service().set, backend, body.api_key, body.base_url)
    return _json(CredentialDTO.from_domain(masked))


async def delete_credential(request: Request) -> Response:
    """Remove the credential of a backend type."""
    await run_in_threadpool(_c(request).credential_service().remove, _backend(request))
    return Response(status_code=204)


_BACKEND = "{backend_type:str}"


routes = [
    api_route("/api/mappings", list_mappings, "GET", tags=TAGS_ROUTING, response=MappingListDTO,
              error_statuses=(401,)),
    api_route("/api/mappings", create_mapping, "POST", tags=TAGS_ROUTING, body=CreateMappingRequest,
              response=MappingDTO, status=201, error_statuses=(401, 403, 422)),
    api_route("/api/mappings/resolve/{model:path}", resolve_route, "GET", tags=TAGS_ROUTING,
              response=ResolvedRouteDTO, error_statuses=(401,)),
    api_route("/api/mappings/{mapping_id:int}", show_mapping, "GET", tags=TAGS_ROUTING, response=MappingDTO,
              error_statuses=(401, 404)),
    api_route("/api/mappings/{mapping_id:int}", update_mapping, "PATCH", tags=TAGS_ROUTING,
              body=UpdateMappingRequest, response=MappingDTO, error_statuses=(401, 403, 404, 422)),
    api_route("/api/mappings/{mapping_id:int}", delete_mapping, "DELETE", tags=TAGS_ROUTING, status=204,
              error_statuses=(401, 403, 404)),
    api_route("/api/credentials", list_credentials, "GET", tags=TAGS_ROUTING, response=CredentialListDTO,
              error_statuses=(401, 403)),
    api_route(f"/api/credentials/{_BACKEND}", set_credential, "PUT", tags=TAGS_ROUTING, body=SetCredentialRequest,
              response=CredentialDTO, error_statuses=(401, 403, 422)),
    api_route(f"/api/credentials/{_BACKEND}", delete_credential, "DELETE", tags=TAGS_ROUTING, status=204,
              error_statuses=(401, 403, 404, 422)),
]
