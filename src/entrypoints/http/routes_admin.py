"""Management routes of the auth / routing / audit area: API keys, users, backend mappings,
cloud credentials (masked, never returned in clear) and the audit log."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field, RootModel, field_validator
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from domain.audit import AuditQuery
from domain.enums import BackendType, PatternType
from domain.errors import InvalidParameter
from entrypoints.bounds import MAX_SQL_INT
from entrypoints.http.auth import principal_of
from entrypoints.http.openapi import api_route, parse_body, parse_query
from entrypoints.http.schemas import Offset, PageLimit

TAGS_KEYS, TAGS_USERS, TAGS_ROUTING, TAGS_AUDIT = ("keys",), ("users",), ("routing",), ("audit",)


def _c(request: Request):
    return request.app.state.container


def _json(dto: BaseModel | list, status: int = 200) -> JSONResponse:
    if isinstance(dto, list):
        return JSONResponse([d.model_dump(mode="json") for d in dto], status_code=status)
    return JSONResponse(dto.model_dump(mode="json"), status_code=status)


# -- DTOs -------------------------------------------------------------------------------
class ApiKeyDTO(BaseModel):
    id: int
    name: str
    prefix: str
    user_id: int
    created_at: datetime
    revoked_at: datetime | None = None
    active: bool

    @classmethod
    def from_domain(cls, k) -> "ApiKeyDTO":
        return cls(id=k.id, name=k.name, prefix=k.prefix, user_id=k.user_id, created_at=k.created_at,
                   revoked_at=k.revoked_at, active=k.is_active)


class CreatedApiKeyDTO(ApiKeyDTO):
    key: str = Field(description="The API key. Shown once: only its hash is stored.")


class CreateKeyRequest(BaseModel):
    name: str = Field(min_length=1, max_length=64)
    user: str | None = Field(default=None, description="User id or email (admins only); default: the caller")


class LoginRequest(BaseModel):
    email: str
    password: str
    key_name: str = Field(default="login", min_length=1, max_length=64)


class UserDTO(BaseModel):
    id: int
    email: str
    is_admin: bool
    status: str
    created_at: datetime | None = None
    approved_at: datetime | None = None

    @classmethod
    def from_domain(cls, u) -> "UserDTO":
        return cls(id=u.id, email=u.email, is_admin=u.is_admin, status=u.status.value, created_at=u.created_at,
                   approved_at=u.approved_at)


class CreateUserRequest(BaseModel):
    email: str
    password: str | None = None
    is_admin: bool = False
    approved: bool = False


class MappingDTO(BaseModel):
    id: int
    model_pattern: str
    pattern_type: PatternType
    backend_type: BackendType
    backend_model: str | None = None
    fallback_backend: BackendType | None = None
    priority: int
    enabled: bool
    problem: str | None = Field(default=None, description="Why a stored mapping is disabled (fails vetting).")

    @classmethod
    def from_domain(cls, m) -> "MappingDTO":
        return cls(id=m.id, model_pattern=m.model_pattern, pattern_type=m.pattern_type, backend_type=m.backend_type,
                   backend_model=m.backend_model, fallback_backend=m.fallback_backend, priority=m.priority,
                   enabled=m.enabled, problem=m.problem)


class CreateMappingRequest(BaseModel):
    model_pattern: str
    pattern_type: PatternType = PatternType.EXACT
    backend_type: BackendType
    backend_model: str | None = None
    fallback_backend: BackendType | None = None
    priority: int = Field(default=0, ge=-1_000_000, le=1_000_000)
    enabled: bool = True


class UpdateMappingRequest(BaseModel):
    """Only the fields sent change; `backend_model` and `fallback_backend` may be null (cleared), the rest not."""

    model_pattern: str | None = None
    pattern_type: PatternType | None = None
    backend_type: BackendType | None = None
    backend_model: str | None = None
    fallback_backend: BackendType | None = None
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


class AuditQueryParams(BaseModel):
    model: str | None = None
    status: Literal["success", "error", "cancelled"] | None = None
    since: datetime | None = None
    until: datetime | None = None
    limit: PageLimit = 50
    offset: Offset = 0


# The JSON arrays the list routes answer, named so /openapi.json documents them.
class ApiKeyListDTO(RootModel[list[ApiKeyDTO]]):
    """API keys (never the keys themselves)."""


class UserListDTO(RootModel[list[UserDTO]]):
    """Users with their status."""


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


class AuditEntryDTO(BaseModel):
    id: int | None
    request_id: str
    timestamp: datetime
    model: str
    backend: str
    endpoint: str
    duration_ms: int
    status: str
    prompt_tokens: int
    completion_tokens: int
    error_type: str | None = None

    @classmethod
    def from_domain(cls, e) -> "AuditEntryDTO":
        return cls(id=e.id, request_id=e.request_id, timestamp=e.timestamp, model=e.model, backend=e.backend,
                   endpoint=e.endpoint, duration_ms=e.duration_ms, status=e.status.value,
                   prompt_tokens=e.prompt_tokens, completion_tokens=e.completion_tokens, error_type=e.error_type)


class AuditPageDTO(BaseModel):
    items: list[AuditEntryDTO]
    total: int
    limit: int
    offset: int


class SummaryParams(BaseModel):
    since: datetime | None = None
    until: datetime | None = None


class ModelUsageDTO(BaseModel):
    model: str
    requests: int
    errors: int
    error_rate: float
    prompt_tokens: int
    completion_tokens: int


class AuditSummaryDTO(BaseModel):
    models: list[ModelUsageDTO]
    requests: int
    errors: int
    error_rate: float
    prompt_tokens: int
    completion_tokens: int


def summary_dto(usages) -> AuditSummaryDTO:
    requests = sum(u.requests for u in usages)
    errors = sum(u.errors for u in usages)
    return AuditSummaryDTO(
        models=[ModelUsageDTO(model=u.model, requests=u.requests, errors=u.errors, error_rate=u.error_rate,
                              prompt_tokens=u.prompt_tokens, completion_tokens=u.completion_tokens) for u in usages],
        requests=requests, errors=errors, error_rate=errors / requests if requests else 0.0,
        prompt_tokens=sum(u.prompt_tokens for u in usages), completion_tokens=sum(u.completion_tokens for u in usages),
    )


# -- keys -------------------------------------------------------------------------------
def _created(created) -> CreatedApiKeyDTO:
    return CreatedApiKeyDTO(**ApiKeyDTO.from_domain(created.key).model_dump(), key=created.secret)


async def login(request: Request) -> Response:
    """Exchange an approved user's email and password for a new API key (shown once)."""
    body = await parse_body(request, LoginRequest)
    created = await run_in_threadpool(_c(request).api_key_service().login, body.email, body.password, body.key_name)
    return _json(_created(created), 201)


async def list_keys(request: Request) -> Response:
    """API keys: all of them for an admin, the caller's own otherwise. Never the keys themselves."""
    keys = await run_in_threadpool(_c(request).api_key_service().list, principal_of(request))
    return _json([ApiKeyDTO.from_domain(k) for k in keys])


async def create_key(request: Request) -> Response:
    """Create an API key; the response is the only place the key ever appears."""
    body = await parse_body(request, CreateKeyRequest)
    created = await run_in_threadpool(_c(request).api_key_service().create, body.name, body.user,
                                      principal_of(request))
    return _json(_created(created), 201)


async def revoke_key(request: Request) -> Response:
    """Revoke a key by id, name or prefix."""
    key = await run_in_threadpool(_c(request).api_key_service().revoke, request.path_params["ref"],
                                  principal_of(request))
    return _json(ApiKeyDTO.from_domain(key))


# -- users ------------------------------------------------------------------------------
async def list_users(request: Request) -> Response:
    """Users with their status (admins only)."""
    return _json([UserDTO.from_domain(u) for u in await run_in_threadpool(_c(request).user_service().list)])


async def create_user(request: Request) -> Response:
    """Create a user: pending unless `approved` (admins only)."""
    body = await parse_body(request, CreateUserRequest)
    user = await run_in_threadpool(
        lambda: _c(request).user_service().register(body.email, body.password, is_admin=body.is_admin,
                                                    approved=body.approved)
    )
    return _json(UserDTO.from_domain(user), 201)


async def approve_user(request: Request) -> Response:
    """Approve a pending (or disabled) user."""
    user = await run_in_threadpool(_c(request).user_service().approve, request.path_params["ref"],
                                   principal_of(request))
    return _json(UserDTO.from_domain(user))


async def disable_user(request: Request) -> Response:
    """Disable a user: their keys stop working at once."""
    user = await run_in_threadpool(_c(request).user_service().disable, request.path_params["ref"],
                                   principal_of(request))
    return _json(UserDTO.from_domain(user))


# -- backend mappings ---------------------------------------------------------------------
async def list_mappings(request: Request) -> Response:
    """Backend mappings, highest priority first."""
    return _json([MappingDTO.from_domain(m) for m in await run_in_threadpool(_c(request).backend_mapping_service().list)])


async def create_mapping(request: Request) -> Response:
    """Add a mapping; regex patterns are checked for catastrophic backtracking (422)."""
    body = await parse_body(request, CreateMappingRequest)
    mapping = await run_in_threadpool(lambda: _c(request).backend_mapping_service().add(
        body.model_pattern, body.backend_type, pattern_type=body.pattern_type, backend_model=body.backend_model,
        fallback_backend=body.fallback_backend, priority=body.priority, enabled=body.enabled))
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


# -- audit ------------------------------------------------------------------------------
async def list_audit(request: Request) -> Response:
    """Audit rows, newest first, filtered by model, status and time range (admins only)."""
    params = parse_query(request, AuditQueryParams)
    query = AuditQuery(model=params.model, status=params.status, since=params.since, until=params.until,
                       limit=params.limit, offset=params.offset)
    page = await run_in_threadpool(_c(request).audit_service().query, query)
    return _json(AuditPageDTO(items=[AuditEntryDTO.from_domain(e) for e in page.items], total=page.total,
                              limit=params.limit, offset=params.offset))


async def audit_summary(request: Request) -> Response:
    """Requests, error rate and tokens per model (admins only)."""
    params = parse_query(request, SummaryParams)
    usages = await run_in_threadpool(_c(request).audit_service().summary, params.since, params.until)
    return _json(summary_dto(usages))


_BACKEND = "{backend_type:str}"
routes = [
    api_route("/api/auth/login", login, "POST", tags=TAGS_KEYS, body=LoginRequest, response=CreatedApiKeyDTO,
              status=201, error_statuses=(401, 403, 422)),
    api_route("/api/keys", list_keys, "GET", tags=TAGS_KEYS, response=ApiKeyListDTO, error_statuses=(401,)),
    api_route("/api/keys", create_key, "POST", tags=TAGS_KEYS, body=CreateKeyRequest, response=CreatedApiKeyDTO,
              status=201, error_statuses=(401, 403, 404, 409, 422)),
    api_route("/api/keys/{ref:str}", revoke_key, "DELETE", tags=TAGS_KEYS, response=ApiKeyDTO,
              error_statuses=(401, 403, 404, 409)),
    api_route("/api/users", list_users, "GET", tags=TAGS_USERS, response=UserListDTO, error_statuses=(401, 403)),
    api_route("/api/users", create_user, "POST", tags=TAGS_USERS, body=CreateUserRequest, response=UserDTO,
              status=201, error_statuses=(400, 401, 403, 409, 422)),
    api_route("/api/users/{ref:str}/approve", approve_user, "POST", tags=TAGS_USERS, response=UserDTO,
              error_statuses=(401, 403, 404)),
    api_route("/api/users/{ref:str}/disable", disable_user, "POST", tags=TAGS_USERS, response=UserDTO,
              error_statuses=(401, 403, 404, 409)),
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
    api_route("/api/audit", list_audit, "GET", tags=TAGS_AUDIT, query=AuditQueryParams, response=AuditPageDTO,
              error_statuses=(401, 403, 422)),
    api_route("/api/audit/summary", audit_summary, "GET", tags=TAGS_AUDIT, query=SummaryParams,
              response=AuditSummaryDTO, error_statuses=(401, 403, 422)),
]
