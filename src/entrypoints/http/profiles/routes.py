"""`/api/profiles`: execution profile CRUD (422 when defaults do not fit the model type)."""

from __future__ import annotations

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse

from application.profiles.service import ProfileChanges
from entrypoints.http.openapi import api_route, parse_body
from entrypoints.http.profiles.schemas import ProfileCreate, ProfileListDTO, ProfileResponse, ProfileUpdate
from entrypoints.http.schemas import DeletedDTO

TAGS = ("profiles",)


def _service(request: Request):
    return request.app.state.container.profile_service()


def _response(request: Request, profile) -> dict:
    from entrypoints.composition.login_service_state import serves_this_home

    installed = serves_this_home(request.app.state.container.settings().manager.home)
    return ProfileResponse.from_domain(profile, service_installed=installed).model_dump(mode="json")


def _group(dto) -> dict | None:
    return None if dto is None else dto.model_dump(exclude_none=True)


async def list_profiles(request: Request) -> JSONResponse:
    """Every execution profile."""
    from entrypoints.composition.login_service_state import serves_this_home

    profiles = await run_in_threadpool(_service(request).list_profiles)
    installed = serves_this_home(request.app.state.container.settings().manager.home)
    data = [ProfileResponse.from_domain(p, service_installed=installed) for p in profiles]
    return JSONResponse(ProfileListDTO(data=data).model_dump(mode="json"))


async def create_profile(request: Request) -> JSONResponse:
    """Create a profile for a library model; its type follows the model's type."""
    body = await parse_body(request, ProfileCreate)
    profile = await run_in_threadpool(
        lambda: _service(request).create(
            body.name,
            body.model,
            description=body.description,
            auto_start=body.auto_start,
            inference=_group(body.inference),
            context=_group(body.context),
            audio=_group(body.audio),
        )
    )
    return JSONResponse(_response(request, profile), status_code=201)


def _key(request: Request) -> str | int:
    raw = request.path_params["profile"]
    return raw


async def show_profile(request: Request) -> JSONResponse:
    """A profile by name or id."""
    profile = await run_in_threadpool(_service(request).get, _key(request))
    return JSONResponse(_response(request, profile))


async def update_profile(request: Request) -> JSONResponse:
    """Partially update a profile; the result is re-validated against the model's type."""
    body = await parse_body(request, ProfileUpdate)
    changes = ProfileChanges(
        name=body.name,
        model=body.model,
        description=body.description,
        auto_start=body.auto_start,
        inference=_group(body.inference),
        context=_group(body.context),
        audio=_group(body.audio),
    )
    profile = await run_in_threadpool(_service(request).update, _key(request), changes)
    return JSONResponse(_response(request, profile))


async def delete_profile(request: Request) -> JSONResponse:
    """Delete a profile."""
    profile = await run_in_threadpool(_service(request).delete, _key(request))
    return JSONResponse(DeletedDTO(id=profile.name).model_dump())


routes = [
    api_route("/api/profiles", list_profiles, "GET", tags=TAGS, response=ProfileListDTO, error_statuses=()),
    api_route("/api/profiles", create_profile, "POST", tags=TAGS, body=ProfileCreate, response=ProfileResponse,
              status=201, error_statuses=(400, 404, 409, 413, 422)),
    api_route("/api/profiles/{profile}", show_profile, "GET", tags=TAGS, response=ProfileResponse, error_statuses=(404,)),
    api_route("/api/profiles/{profile}", update_profile, "PATCH", tags=TAGS, body=ProfileUpdate,
              response=ProfileResponse, error_statuses=(400, 404, 409, 413, 422)),
    api_route("/api/profiles/{profile}", update_profile, "PUT", tags=TAGS, body=ProfileUpdate,
              response=ProfileResponse, error_statuses=(400, 404, 409, 413, 422)),
    api_route("/api/profiles/{profile}", delete_profile, "DELETE", tags=TAGS, response=DeletedDTO, error_statuses=(404,)),
]
