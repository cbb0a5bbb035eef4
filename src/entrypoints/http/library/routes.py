"""`/api/models`: the library (list, search, show, delete, probe, import)."""

from __future__ import annotations

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse

from entrypoints.http.library.model_schemas import (
    CapabilitiesDTO,
    ModelDetailDTO,
    ModelDTO,
    ModelListDTO,
    ModelListQuery,
    ProbeResponse,
)
from entrypoints.http.library.overlay_schemas import ModelPatch, ModelPatchResponse, ProfileConversionDTO
from entrypoints.http.library.schemas import ModelDeletedDTO
from entrypoints.http.openapi import api_route, parse_body, parse_query

TAGS = ("models",)


def _container(request: Request):
    return request.app.state.container


async def list_models(request: Request) -> JSONResponse:
    """List and search the library (filters apply before the page is cut)."""
    query = parse_query(request, ModelListQuery)
    service = _container(request).library_service()
    page = await run_in_threadpool(
        service.search,
        text=query.q,
        model_type=query.type,
        capability=query.capability,
        status=query.status,
        limit=query.limit,
        offset=query.offset,
    )
    dto = ModelListDTO(
        data=[ModelDTO.from_domain(m) for m in page.items], total=page.total, limit=query.limit, offset=query.offset
    )
    return JSONResponse(dto.model_dump(mode="json"))


async def show_model(request: Request) -> JSONResponse:
    """One library model by id, canonical id, alias or repo id (with the fields the user overrode)."""
    container = _container(request)
    model = await run_in_threadpool(container.library_service().show, request.path_params["name"])
    overlays = await run_in_threadpool(container.metadata_edit_service().overlays_of, model.model_id)
    return JSONResponse(ModelDetailDTO.from_domain(model, overlays).model_dump(mode="json"))


async def edit_model(request: Request) -> JSONResponse:
    """Override inferred metadata (type, family, tags, description, display name), reset or confirm it."""
    from application.library.metadata_edit import MetadataEdit

    body = await parse_body(request, ModelPatch)
    edit = MetadataEdit(model_type=body.type, family=body.family, description=body.description,
                        display_name=body.display_name, add_tags=tuple(body.add_tags),
                        remove_tags=tuple(body.remove_tags), reset=tuple(body.reset), confirm=tuple(body.confirm),
                        force=body.force)
    result = await run_in_threadpool(_container(request).metadata_edit_service().edit, request.path_params["name"],
                                     edit)
    dto = ModelPatchResponse(
        model=ModelDetailDTO.from_domain(result.model, result.overlays),
        converted_profiles=[ProfileConversionDTO(name=c.name, from_type=c.from_type.value, to_type=c.to_type.value,
                                                 dropped=list(c.dropped)) for c in result.conversions],
        manifest=result.manifest, notes=result.notes,
    )
    return JSONResponse(dto.model_dump(mode="json"))


async def delete_model(request: Request) -> JSONResponse:
    """Remove a model from the library (and its folder when mlxm created it)."""
    container = _container(request)
    removal = await run_in_threadpool(container.library_service().remove, request.path_params["name"])  # also unloads
    dto = ModelDeletedDTO(id=removal.model.model_id, kept=list(removal.kept))
    # `kept` only when something stayed, as in `mlxm rm --json`
    return JSONResponse(dto.model_dump(exclude=None if removal.kept else {"kept"}))


def _optional(container, name: str):
    provider = getattr(container, name, None)
    return provider() if provider is not None else None


async def probe_model(request: Request) -> JSONResponse:
    """Detect the model's capabilities (writes them to the library)."""
    container = _container(request)
    prober = _optional(container, "probe_service")
    if prober is None:
        from application.errors import Unavailable

        raise Unavailable("probing is not available in this build")
    model = await run_in_threadpool(container.library_service().show, request.path_params["name"])
    result = await run_in_threadpool(prober.probe, model.model_id)
    dto = ProbeResponse(
        model_id=model.model_id,
        capabilities=CapabilitiesDTO.from_domain(getattr(result, "capabilities", result)),
        sample_output=getattr(result, "sample_output", None),
        warnings=list(getattr(result, "warnings", []) or []),
    )
    return JSONResponse(dto.model_dump(mode="json"))


routes = [
    api_route("/api/models", list_models, "GET", tags=TAGS, query=ModelListQuery, response=ModelListDTO),
    # POST /api/models/import: the full import pipeline is in routes_library (registered before these routes).
    api_route("/api/models/{name:path}/probe", probe_model, "POST", tags=TAGS, response=ProbeResponse,
              error_statuses=(404, 503)),
    api_route("/api/models/{name:path}", show_model, "GET", tags=TAGS, response=ModelDetailDTO, error_statuses=(404,)),
    api_route("/api/models/{name:path}", edit_model, "PATCH", tags=TAGS, body=ModelPatch, response=ModelPatchResponse,
              error_statuses=(400, 404, 409, 422)),
    api_route("/api/models/{name:path}", delete_model, "DELETE", tags=TAGS, response=ModelDeletedDTO,
              error_statuses=(404, 409)),
]
