"""`GET /api/chat/params`: the values a chat request would run with, and where each comes from."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse

from entrypoints.http.openapi import api_route, parse_query

TAGS = ("chat",)


class ParamsQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")

    target: str = Field(min_length=1, max_length=512, description="A profile name or any model name")
    temperature: float | None = None
    top_p: float | None = None
    max_tokens: int | None = None
    seed: int | None = None
    system_prompt: str | None = Field(default=None, max_length=20_000)


class ResolvedValue(BaseModel):
    value: float | int | str | list[str] | None
    source: Literal["request", "profile", "system"] | None


class ResolvedParamsDTO(BaseModel):
    target: str
    model_id: str
    model_type: str | None
    profile: str | None
    params: dict[str, ResolvedValue]
    system_prompt: ResolvedValue


async def chat_params(request: Request) -> JSONResponse:
    """The cascade's resolved values (request > profile > system) for a chat target and overrides."""
    from application.inference.params_view import explain_cascade
    from domain.profiles.params import InferenceParams

    query = parse_query(request, ParamsQuery)
    overrides = InferenceParams(temperature=query.temperature, top_p=query.top_p, max_tokens=query.max_tokens,
                                seed=query.seed)  # out-of-range values raise InvalidParameter (422)
    inference = request.app.state.container.inference_service()
    data = await run_in_threadpool(explain_cascade, inference, query.target, overrides, query.system_prompt)
    return JSONResponse(ResolvedParamsDTO.model_validate(data).model_dump(mode="json"))


routes = [
    api_route("/api/chat/params", chat_params, "GET", tags=TAGS, query=ParamsQuery, response=ResolvedParamsDTO,
              error_statuses=(400, 404, 422)),
]
