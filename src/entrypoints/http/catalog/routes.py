from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

from starlette.requests import Request
from starlette.responses import JSONResponse

from entrypoints.http.openapi import api_route
from entrypoints.http.schemas import CatalogListDTO, CatalogModelDTO, HealthDTO


def _version() -> str:
    try:
        return version("mlxm")
    except PackageNotFoundError:  # pragma: no cover - running from a source tree
        return "0+unknown"


async def health(request: Request) -> JSONResponse:
    return JSONResponse(HealthDTO(status="ok", version=_version()).model_dump())


async def list_catalog(request: Request) -> JSONResponse:
    service = request.app.state.container.catalog_service()
    dto = CatalogListDTO(data=[CatalogModelDTO.from_domain(m) for m in service.list_models()])
    return JSONResponse(dto.model_dump())


async def show_catalog(request: Request) -> JSONResponse:
    service = request.app.state.container.catalog_service()
    model = service.show(request.path_params["name"])
    return JSONResponse(CatalogModelDTO.from_domain(model).model_dump())


routes = [
    api_route("/api/health", health, "GET", summary="Liveness and version", tags=("health",), response=HealthDTO,
              error_statuses=()),
    api_route("/api/catalog", list_catalog, "GET", summary="The catalog: IDs, aliases, type and sources",
              tags=("catalog",), response=CatalogListDTO, error_statuses=()),
    api_route("/api/catalog/{name:path}", show_catalog, "GET", summary="One catalog entry by canonical ID, alias or repo id",
              tags=("catalog",), response=CatalogModelDTO, error_statuses=(404,)),
]
