"""Helpers shared by the management routes: the container of the app, and a DTO as a JSON response."""

from __future__ import annotations

from pydantic import BaseModel
from starlette.requests import Request
from starlette.responses import JSONResponse


def _c(request: Request):
    return request.app.state.container


def _json(dto: BaseModel | list, status: int = 200) -> JSONResponse:
    if isinstance(dto, list):
        return JSONResponse([d.model_dump(mode="json") for d in dto], status_code=status)
    return JSONResponse(dto.model_dump(mode="json"), status_code=status)
