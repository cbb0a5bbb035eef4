"""Management routes of the identity context: login, API keys and users."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field, RootModel
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from domain.enums import UserStatus
from entrypoints.http.auth import principal_of
from entrypoints.http.openapi import api_route, parse_body, parse_query
from entrypoints.http.responses import _c, _json


TAGS_KEYS = ("keys",)


TAGS_USERS = ("users",)


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


class UserListQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")  # a misspelt filter is a 422, not the unfiltered list

    status: UserStatus | None = Field(default=None, description="Only users with this status")


class CreateUserRequest(BaseModel):
    email: str
    password: str | None = None
    is_admin: bool = False
    approved: bool = False


# The JSON arrays the list routes answer, named so /openapi.json documents them.
class ApiKeyListDTO(RootModel[list[ApiKeyDTO]]):
    """API keys (never the keys themselves)."""


class UserListDTO(RootModel[list[UserDTO]]):
    """Users with their status."""


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
    """Users with their status (admins only); `?status=` keeps one status."""
    query = parse_query(request, UserListQuery)
    users = await run_in_threadpool(_c(request).user_service().list, query.status)
    return _json([UserDTO.from_domain(u) for u in users])


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


routes = [
    api_route("/api/auth/login", login, "POST", tags=TAGS_KEYS, body=LoginRequest, response=CreatedApiKeyDTO,
              status=201, error_statuses=(401, 403, 422)),
    api_route("/api/keys", list_keys, "GET", tags=TAGS_KEYS, response=ApiKeyListDTO, error_statuses=(401,)),
    api_route("/api/keys", create_key, "POST", tags=TAGS_KEYS, body=CreateKeyRequest, response=CreatedApiKeyDTO,
              status=201, error_statuses=(401, 403, 404, 409, 422)),
    api_route("/api/keys/{ref:str}", revoke_key, "DELETE", tags=TAGS_KEYS, response=ApiKeyDTO,
              error_statuses=(401, 403, 404, 409)),
    api_route("/api/users", list_users, "GET", tags=TAGS_USERS, query=UserListQuery, response=UserListDTO,
              error_statuses=(401, 403, 422)),
    api_route("/api/users", create_user, "POST", tags=TAGS_USERS, body=CreateUserRequest, response=UserDTO,
              status=201, error_statuses=(400, 401, 403, 409, 422)),
    api_route("/api/users/{ref:str}/approve", approve_user, "POST", tags=TAGS_USERS, response=UserDTO,
              error_statuses=(401, 403, 404)),
    api_route("/api/users/{ref:str}/disable", disable_user, "POST", tags=TAGS_USERS, response=UserDTO,
              error_statuses=(401, 403, 404, 409)),
]
