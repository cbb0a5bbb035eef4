"""`/api/selection`: the persisted model selection, always canonical."""

from __future__ import annotations

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse

from entrypoints.http.openapi import api_route, parse_body
from entrypoints.http.catalog.selection_schemas import SelectionDTO, SelectionRequest

TAGS = ("selection",)


def _dto(result) -> dict:
    return SelectionDTO(model_id=result.model_id, changed=result.changed, reason=result.reason).model_dump()


async def get_selection(request: Request) -> JSONResponse:
    """The selected model, normalised (a legacy alias is written back as its canonical id)."""
    result = await run_in_threadpool(request.app.state.container.selection_service().current)
    return JSONResponse(_dto(result))


async def set_selection(request: Request) -> JSONResponse:
    """Select a model by canonical id, alias or repo id; the canonical id is stored."""
    body = await parse_body(request, SelectionRequest)
    result = await run_in_threadpool(request.app.state.container.selection_service().select, body.model)
    return JSONResponse(_dto(result))


routes = [
    api_route("/api/selection", get_selection, "GET", tags=TAGS, response=SelectionDTO, error_statuses=()),
    api_route("/api/selection", set_selection, "PUT", tags=TAGS, body=SelectionRequest, response=SelectionDTO),
    api_route("/api/selection", set_selection, "POST", tags=TAGS, body=SelectionRequest, response=SelectionDTO),
]
