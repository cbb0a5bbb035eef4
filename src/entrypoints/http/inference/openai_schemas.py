"""DTOs shaped like the OpenAI API (`/v1/...`).

Types are checked here; ranges are checked once, by `domain.profiles.params.InferenceParams`.
Unknown fields are ignored, as clients send many optional OpenAI fields.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


# Every value OpenAI documents: a cloud backend's reason passes through; the routes map anything else to "stop".
FinishReason = Literal["stop", "length", "content_filter", "tool_calls", "function_call"]
FINISH_REASONS = frozenset(FinishReason.__args__)


class _Lenient(BaseModel):
    model_config = ConfigDict(extra="ignore")


class TextContentPart(_Lenient):
    type: str
    text: str | None = None
    image_url: dict[str, Any] | str | None = Field(default=None, description='type "image_url": {"url": "data:..."}')


class FunctionCallDTO(_Lenient):
    name: str = Field(min_length=1)
    arguments: str | dict[str, Any] = Field(default="{}", description="JSON text (an object is accepted too)")


class ToolCallDTO(_Lenient):
    id: str = ""
    type: Literal["function"] = "function"
    function: FunctionCallDTO


class ChatCompletionMessage(_Lenient):
    role: Literal["system", "developer", "user", "assistant", "tool"]
    content: str | list[TextContentPart] | None = None
    name: str | None = None
    tool_calls: list[ToolCallDTO] | None = Field(default=None, description="An assistant turn's calls")
    tool_call_id: str | None = Field(default=None, description="A tool message: the call it answers")
    reasoning_content: str | None = Field(default=None, description="An assistant turn's thinking")
    reasoning: str | None = Field(default=None, description="Same as reasoning_content")


class FunctionDefinition(_Lenient):
    name: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.:-]+$")
    description: str | None = None
    parameters: dict[str, Any] | None = None
    strict: bool | None = None


class ToolDefinition(_Lenient):
    type: Literal["function"] = "function"
    function: FunctionDefinition


class StreamOptions(_Lenient):
    include_usage: bool = False


class _SamplingFields(_Lenient):
    model: str = Field(default="default", description="A profile name, canonical id, alias or repo id; "
                                                       "`default` (or none) is the model chosen with `mlxm select`")
    temperature: float | None = None
    top_p: float | None = None
    top_k: int | None = None
    min_p: float | None = None
    repetition_penalty: float | None = None
    max_tokens: int | None = None
    seed: int | None = None
    stop: str | list[str] | None = None
    presence_penalty: float | None = None
    frequency_penalty: float | None = None
    n: int | None = Field(default=None, description="Choices to generate (1-16), batched together")
    stream: bool = False
    stream_options: StreamOptions | None = None


class ChatCompletionRequest(_SamplingFields):
    messages: list[ChatCompletionMessage] = Field(min_length=1)
    max_completion_tokens: int | None = None
    tools: list[ToolDefinition] | None = Field(default=None, description="Function tools the model may call")
    tool_choice: Literal["none", "auto", "required"] | dict[str, Any] | None = Field(
        default=None, description='"auto" (default with tools), "none", "required", or '
                                  '{"type": "function", "function": {"name": ...}}')
    parallel_tool_calls: bool | None = None
    # The pre-tools API: declared so a client that relies on it gets a 400 naming it, not a silent answer.
    functions: list[Any] | None = Field(default=None, description="Deprecated by OpenAI: a 400; send `tools`")
    function_call: Any = Field(default=None, description="Deprecated by OpenAI: a 400; send `tool_choice`")
    chat_template_kwargs: dict[str, Any] | None = Field(
        default=None, description="Chat template switches; `enable_thinking` (bool) is honoured")
    reasoning_effort: str | None = Field(default=None, description='"none" switches thinking off')
    response_format: dict[str, Any] | None = Field(
        default=None, description='{"type": "text" | "json_object" | "json_schema", "json_schema": {"schema": ...}}: '
                                  "constrained decoding")
    logprobs: bool | None = Field(default=None, description="Return each token's log probability")
    top_logprobs: int | None = Field(default=None, description="Also the most likely alternatives (0-20)")


class CompletionRequest(_SamplingFields):
    prompt: str | list[str]
    echo: bool = False
    logprobs: int | None = Field(default=None, description="Log probabilities of the tokens and this many alternatives")


class PromptTokensDetails(BaseModel):
    cached_tokens: int = 0  # served from the prompt (KV) cache, not prefilled again


class CompletionTokensDetails(BaseModel):
    reasoning_tokens: int = 0  # generated inside the model's thinking block


class Usage(BaseModel):
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int
    prompt_tokens_details: PromptTokensDetails | None = None
    completion_tokens_details: CompletionTokensDetails | None = None


class AssistantMessage(BaseModel):
    role: Literal["assistant"] = "assistant"
    content: str | None
    reasoning_content: str | None = None
    reasoning: str | None = None
    tool_calls: list[ToolCallDTO] | None = None


class ChatChoice(BaseModel):
    index: int = 0
    message: AssistantMessage
    finish_reason: FinishReason | None
    logprobs: dict[str, Any] | None = None


class ChatCompletion(BaseModel):
    id: str
    object: Literal["chat.completion"] = "chat.completion"
    created: int
    model: str
    choices: list[ChatChoice]
    usage: Usage


class ChunkDelta(BaseModel):
    role: Literal["assistant"] | None = None
    content: str | None = None
    reasoning_content: str | None = None
    reasoning: str | None = None
    tool_calls: list[dict[str, Any]] | None = None


class ChunkChoice(BaseModel):
    index: int = 0
    delta: ChunkDelta
    finish_reason: FinishReason | None = None
    logprobs: dict[str, Any] | None = None


class ChatCompletionChunk(BaseModel):
    id: str
    object: Literal["chat.completion.chunk"] = "chat.completion.chunk"
    created: int
    model: str
    choices: list[ChunkChoice]
    usage: Usage | None = None


class CompletionChoice(BaseModel):
    index: int = 0
    text: str
    finish_reason: FinishReason | None
    logprobs: dict[str, Any] | None = None


class Completion(BaseModel):
    id: str
    object: Literal["text_completion"] = "text_completion"
    created: int
    model: str
    choices: list[CompletionChoice]
    usage: Usage | None = None


class ModelObject(BaseModel):
    id: str
    object: Literal["model"] = "model"
    created: int
    owned_by: str


class ModelList(BaseModel):
    object: Literal["list"] = "list"
    data: list[ModelObject]


# OpenAI's documented bound for `input`. Unbounded, one long run of text makes the TTS model allocate
# memory quadratic in its length (300k characters: a ~90 GB request that killed the server).
MAX_SPEECH_INPUT_CHARS = 4096


class SpeechRequest(_Lenient):
    model: str
    input: str = Field(min_length=1, max_length=MAX_SPEECH_INPUT_CHARS)
    voice: str | None = None
    speed: float | None = None
    response_format: Literal["wav"] = "wav"


class TranscriptionForm(BaseModel):
    """multipart/form-data fields of `/v1/audio/transcriptions`."""

    file: bytes = Field(description="The audio file (WAV, or any format soundfile reads)")
    model: str
    language: str | None = None
    prompt: str | None = None
    response_format: Literal["json", "text", "verbose_json"] = "json"
    # Form fields are text, where "nan" and "inf" parse as floats; JSON bodies refuse them (json_body).
    temperature: float | None = Field(default=None, allow_inf_nan=False)


class Transcription(BaseModel):
    text: str


class TranscriptionSegment(BaseModel):
    id: int
    start: float | None = None
    end: float | None = None
    text: str


class VerboseTranscription(BaseModel):
    task: Literal["transcribe"] = "transcribe"
    language: str | None
    duration: float | None
    text: str
    segments: list[TranscriptionSegment]
