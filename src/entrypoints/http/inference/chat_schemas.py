"""DTOs of the management chat API (`/api/chat`)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from entrypoints.http.profiles.schemas import InferenceParamsDTO


# -- chat (management) ---------------------------------------------------------------
class ChatMessageDTO(BaseModel):
    model_config = ConfigDict(extra="forbid")

    role: Literal["system", "user", "assistant"]
    content: str
    reasoning: str | None = Field(default=None, description="An assistant turn's thinking (answers only)")


class ChatRequestMessageDTO(ChatMessageDTO):
    """A request's message: may carry images (answers never do)."""

    images: list[str] | None = Field(default=None, description="base64 or data: / http(s) URLs (vision models)")


class ChatRequest(BaseModel):
    """Chat through a profile (by id or name) or a model, with per-request overrides."""

    model_config = ConfigDict(extra="forbid")

    profile_id: int | str | None = None
    model: str | None = None
    messages: list[ChatRequestMessageDTO] = Field(min_length=1)
    overrides: InferenceParamsDTO | None = None
    enable_thinking: bool | None = Field(default=None, description="false switches the model's thinking off")
    # OpenAI's shape: {"type": "json_object"} or {"type": "json_schema", "json_schema": {"schema": {...}}}.
    response_format: dict[str, Any] | None = None
    stream: bool = False


class ChatUsageDTO(BaseModel):
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int
    cached_tokens: int = 0  # prompt tokens served from the prompt (KV) cache
    reasoning_tokens: int = 0  # completion tokens generated inside the model's thinking block


class ChatResponse(BaseModel):
    model: str
    profile: str | None = None
    message: ChatMessageDTO
    finish_reason: str | None
    usage: ChatUsageDTO


class ChatStreamEvent(BaseModel):
    delta: str = ""
    reasoning_delta: str = ""
    finish_reason: str | None = None
    usage: ChatUsageDTO | None = None
