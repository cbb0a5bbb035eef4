from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

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
    Route("/api/health", health, methods=["GET"]),
    Route("/api/catalog", list_catalog, methods=["GET"]),
    Route("/api/catalog/{name:path}", show_catalog, methods=["GET"]),
]
