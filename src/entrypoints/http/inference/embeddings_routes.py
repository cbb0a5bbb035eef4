"""`POST /v1/embeddings` (OpenAI-compatible): strings or token arrays in, float or base64 vectors out.

`dimensions` truncates Matryoshka-trained models (others: 400); `truncate: true` (an mlxm
extension, as Ollama's) cuts inputs past the model's max sequence length instead of a 400.
Usage counts the tokens the model really saw.
"""

from __future__ import annotations

import base64
import struct
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse

from entrypoints.http.openapi import api_route, parse_body

TAGS = ("openai",)


class EmbeddingRequest(BaseModel):
    model_config = ConfigDict(extra="ignore")

    model: str = Field(description="A profile name, canonical id, alias or repo id")
    input: str | list[str] | list[int] | list[list[int]] = Field(
        description="A string, a list of strings, a token array or a list of token arrays")
    encoding_format: Literal["float", "base64"] = "float"
    dimensions: int | None = Field(default=None, ge=1, description="Matryoshka truncation (others: 400)")
    truncate: bool = Field(default=False, description="Cut inputs past the model's max sequence length instead of a 400")
    user: str | None = None


class EmbeddingObject(BaseModel):
    object: Literal["embedding"] = "embedding"
    index: int
    embedding: list[float] | str = Field(description="floats, or base64 of little-endian float32 when asked")


class EmbeddingUsage(BaseModel):
    prompt_tokens: int = Field(description="Tokens the model saw, special tokens included")
    total_tokens: int = Field(description="Equals prompt_tokens")


class EmbeddingList(BaseModel):
    object: Literal["list"] = "list"
    data: list[EmbeddingObject]
    model: str
    usage: EmbeddingUsage


def _inference(request: Request):
    container = request.app.state.container
    routed = getattr(container, "routed_inference_service", None)  # audited like every inference call
    return routed() if routed is not None else container.inference_service()


def encode(vector: list[float], encoding_format: str) -> list[float] | str:
    if encoding_format == "base64":
        return base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode()
    return [float(v) for v in vector]


async def embeddings(request: Request) -> JSONResponse:
    """Embeddings for one input or a list of inputs."""
    body = await parse_body(request, EmbeddingRequest)
    service = _inference(request)
    result = await run_in_threadpool(
        lambda: service.embed(body.model, body.input, dimensions=body.dimensions, truncate=body.truncate))
    data = [EmbeddingObject(index=i, embedding=encode(v, body.encoding_format)) for i, v in enumerate(result.vectors)]
    usage = EmbeddingUsage(prompt_tokens=result.prompt_tokens, total_tokens=result.prompt_tokens)
    return JSONResponse(EmbeddingList(data=data, model=body.model, usage=usage).model_dump())


routes = [
    api_route("/v1/embeddings", embeddings, "POST", tags=TAGS, body=EmbeddingRequest, response=EmbeddingList,
              error_statuses=(400, 404, 413, 422, 501)),
]
