"""OpenAI text generation: `/v1/chat/completions` and `/v1/completions`.

Beyond plain text: `response_format` (json_object / json_schema, constrained decoding),
`logprobs` / `top_logprobs` (chat shape and the legacy completions shape, streamed too), `n`
choices generated together in the batch (each chunk carries its choice `index`), a list of
prompts on `/v1/completions` (choice index = prompt * n + choice), presence / frequency penalties,
and `usage.prompt_tokens_details.cached_tokens` (prompt tokens served from the prompt cache).
"""

from __future__ import annotations

import json
import queue
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Any, Iterator

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from application.errors import InvalidRequest
from application.inference.service import open_generation
from application.inference.ports import GenerationChunk, GenerationRequest, TokenLogprob
from domain.profiles.constraints import OutputConstraint
from domain.profiles.params import InferenceParams
from entrypoints.http.inference.openai_streaming import (
    chat_events,
    chat_logprobs,
    completion_events,
    completion_logprobs,
    finish_of,
    usage_of,
)
from entrypoints.http.inference.streaming import _collect, _inference, _start
from entrypoints.http.openapi import parse_body
from entrypoints.http.inference.openai_schemas import (
    AssistantMessage,
    ChatChoice,
    ChatCompletion,
    ChatCompletionRequest,
    Completion,
    CompletionChoice,
    CompletionRequest,
)

MAX_N = 16


# -- translation ----------------------------------------------------------------------
def request_params(body: ChatCompletionRequest | CompletionRequest, max_tokens: int | None) -> InferenceParams:
    stop = body.stop
    if isinstance(stop, str):
        stop = (stop,)
    if isinstance(body, CompletionRequest):
        logprobs = True if body.logprobs is not None else None
        top = body.logprobs or None
    else:
        logprobs = body.logprobs
        top = body.top_logprobs or None
        if top and not logprobs:
            raise _invalid("top_logprobs", "needs logprobs: true")
    return InferenceParams(
        temperature=body.temperature, max_tokens=max_tokens, top_p=body.top_p, top_k=body.top_k, min_p=body.min_p,
        repetition_penalty=body.repetition_penalty, seed=body.seed, stop=tuple(stop) if stop else None,
        presence_penalty=body.presence_penalty, frequency_penalty=body.frequency_penalty,
        logprobs=logprobs or None, top_logprobs=top,
    )


def choice_count(body) -> int:
    n = 1 if body.n is None else body.n
    if not 1 <= n <= MAX_N:
        raise _invalid("n", f"must be between 1 and {MAX_N}, got {n}")
    return n


def constraint_from(response_format: dict[str, Any] | None) -> OutputConstraint | None:
    """OpenAI's `response_format` as an output constraint (None for plain text)."""
    if response_format is None:
        return None
    kind = response_format.get("type", "text")
    if kind == "text":
        return None
    if kind == "json_object":
        return OutputConstraint("json_object")
    if kind == "json_schema":
        spec = response_format.get("json_schema")
        if not isinstance(spec, dict) or not isinstance(spec.get("schema"), dict):
            raise _invalid("response_format", 'json_schema needs {"json_schema": {"name": ..., "schema": {...}}}')
        # `strict` or not, the schema is enforced: constrained decoding has no cheaper "best effort" mode.
        return OutputConstraint("json_schema", json.dumps(spec["schema"]))
    raise _invalid("response_format", f"type {kind!r} is not supported; use text, json_object or json_schema")


def _invalid(field_name: str, message: str) -> InvalidRequest:
    error = InvalidRequest(f"{field_name}: {message}")
    error.field = field_name  # type: ignore[attr-defined] - becomes the error's `param`
    return error


# -- several prompts as one stream ----------------------------------------------------
class MergedStream:
    """Chunks of several generations (one per prompt) as one iterator; choice indexes become prompt * n + i.

    One thread per source reads it, so the generations run (and batch) together; closing the
    merged stream closes every source, which stops their generation.
    """

    _DONE = object()

    def __init__(self, sources: list[Iterator[GenerationChunk]], n: int) -> None:
        self._sources = sources
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._left = len(sources)
        self._closed = threading.Event()
        for number, source in enumerate(sources):
            threading.Thread(target=self._pump, args=(number, source, n), daemon=True,
                             name=f"mlxm-merge-{number}").start()

    def _pump(self, number: int, source: Iterator[GenerationChunk], n: int) -> None:
        try:
            for chunk in source:
                if self._closed.is_set():
                    break
                self._queue.put(_reindex(chunk, number * n + chunk.index))
        except BaseException as exc:  # noqa: BLE001 - handed to the reader
            self._queue.put(exc)
        finally:
            self._queue.put(self._DONE)

    def __iter__(self) -> "MergedStream":
        return self

    def __next__(self) -> GenerationChunk:
        while self._left:
            item = self._queue.get()
            if item is self._DONE:
                self._left -= 1
                continue
            if isinstance(item, BaseException):
                self.close()
                raise item
            return item
        raise StopIteration

    def close(self) -> None:
        self._closed.set()
        for source in self._sources:
            close = getattr(source, "close", None)
            if close is not None:
                try:
                    close()
                except Exception:  # noqa: BLE001 - closing one must not keep the others open
                    pass


def _reindex(chunk: GenerationChunk, index: int) -> GenerationChunk:
    if chunk.index == index:
        return chunk
    from dataclasses import replace

    return replace(chunk, index=index)


# -- collecting -----------------------------------------------------------------------
@dataclass
class ChoiceResult:
    pieces: list[str] = field(default_factory=list)
    reasoning_pieces: list[str] = field(default_factory=list)
    tool_calls: list = field(default_factory=list)
    logprobs: list[TokenLogprob] = field(default_factory=list)
    last: GenerationChunk | None = None

    @property
    def text(self) -> str:
        return "".join(self.pieces)

    @property
    def reasoning(self) -> str:
        return "".join(self.reasoning_pieces)


def add_chunk(results: dict[int, ChoiceResult], chunk: GenerationChunk) -> None:
    result = results.setdefault(chunk.index, ChoiceResult())
    result.pieces.append(chunk.text)
    if chunk.reasoning:
        result.reasoning_pieces.append(chunk.reasoning)
    result.tool_calls.extend(chunk.tool_calls)
    if chunk.logprobs:
        result.logprobs.extend(chunk.logprobs)
    result.last = chunk


async def collect_choices(request: Request, iterator, first) -> dict[int, ChoiceResult]:
    """Every choice's whole answer; a client that disconnects first stops the generation too."""
    results: dict[int, ChoiceResult] = {}
    await _collect(request, iterator, first, lambda chunk: add_chunk(results, chunk))
    return results


# -- endpoints ------------------------------------------------------------------------
async def chat_completions(request: Request) -> Response:
    """Chat completion, non-streaming or SSE (`stream: true`, `data: [DONE]`)."""
    from entrypoints.http.inference.openai_tools import (
        chat_message,
        request_thinking,
        request_tools,
        response_message,
    )

    body = await parse_body(request, ChatCompletionRequest)
    max_tokens = body.max_completion_tokens if body.max_completion_tokens is not None else body.max_tokens
    n = choice_count(body)
    tools, tool_choice = request_tools(body)
    internal = GenerationRequest(
        params=request_params(body, max_tokens), messages=tuple(chat_message(m) for m in body.messages),
        tools=tools, tool_choice=tool_choice, enable_thinking=request_thinking(body),
        parallel_tool_calls=body.parallel_tool_calls is not False,
        constraint=constraint_from(body.response_format), n=n,
    )
    iterator, first = await _start(request, body.model, internal)
    completion_id = f"chatcmpl-{uuid.uuid4().hex}"
    created = int(time.time())
    want_logprobs = bool(internal.params.logprobs)

    if not body.stream:
        results = await collect_choices(request, iterator, first)
        choices = []
        for i, r in sorted(results.items()):
            choice = ChatChoice(index=i, message=AssistantMessage(content=r.text), finish_reason=finish_of(r.last),
                                logprobs=chat_logprobs(r.logprobs) if want_logprobs else None).model_dump()
            choice["message"] = response_message(r.text, r.reasoning, r.tool_calls)
            choices.append(choice)
        usage = usage_of({i: r.last for i, r in results.items() if r.last is not None}, n)
        response = ChatCompletion(id=completion_id, created=created, model=body.model, choices=[], usage=usage).model_dump()
        response["choices"] = choices
        return JSONResponse(response)

    include_usage = bool(body.stream_options and body.stream_options.include_usage)
    return chat_events(iterator, first, completion_id, created, body.model, n, want_logprobs, include_usage)


async def completions(request: Request) -> Response:
    """Legacy text completion on a raw prompt (no chat template); a list of prompts is answered together."""

    body = await parse_body(request, CompletionRequest)
    prompts = body.prompt if isinstance(body.prompt, list) else [body.prompt]
    if not prompts or not all(isinstance(p, str) and p for p in prompts):
        raise _invalid("prompt", "give a non-empty string or a list of non-empty strings")
    if len(prompts) * choice_count(body) > 64:
        raise _invalid("prompt", "at most 64 completions (prompts x n) per request")
    n = choice_count(body)
    params = request_params(body, body.max_tokens)
    service = _inference(request)

    def start():
        sources = []
        try:
            for prompt in prompts:
                sources.append(open_generation(service, body.model, GenerationRequest(params=params, prompt=prompt, n=n)))
            iterator = sources[0] if len(sources) == 1 else MergedStream(sources, n)
            return iterator, next(iterator, None)
        except BaseException:
            for source in sources:
                close = getattr(source, "close", None)
                if close is not None:
                    try:
                        close()
                    except ValueError:  # "generator already executing": a merged-stream thread is inside it;
                        pass  # the merged stream, closed already, stops it at its next chunk
            raise

    iterator, first = await run_in_threadpool(start)
    completion_id = f"cmpl-{uuid.uuid4().hex}"
    created = int(time.time())
    echoes = {i: (prompts[i // n] if body.echo else "") for i in range(len(prompts) * n)}
    want = body.logprobs is not None

    if not body.stream:
        results = await collect_choices(request, iterator, first)
        choices = []
        for i, r in sorted(results.items()):
            logprobs = completion_logprobs(r.logprobs, len(echoes[i]), with_top=bool(body.logprobs)) if want else None
            choices.append(CompletionChoice(index=i, text=echoes[i] + r.text, finish_reason=finish_of(r.last),
                                            logprobs=logprobs))
        usage = usage_of({i: r.last for i, r in results.items() if r.last is not None}, n)
        response = Completion(id=completion_id, created=created, model=body.model, choices=choices, usage=usage)
        return JSONResponse(response.model_dump())

    include_usage = bool(body.stream_options and body.stream_options.include_usage)
    return completion_events(iterator, first, completion_id, created, body.model, n, echoes,
                             (bool(body.logprobs) if want else None), include_usage)
