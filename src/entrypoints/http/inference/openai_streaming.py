"""SSE event streams for `/v1/chat/completions` and `/v1/completions` (OpenAI's chunk shapes).

Per-token events are formatted by hand (the same JSON shapes as the pydantic DTOs): they are the
hot path. Each choice gets its own events (`index`), its own finish event as soon as it ends,
and, when asked for, its tokens' logprobs in the event that carries them.
"""

from __future__ import annotations

import json
from typing import Any, AsyncIterator

from starlette.responses import StreamingResponse

from application.inference.ports import GenerationChunk, TokenLogprob
from entrypoints.http.inference.openai_tools import ToolCallDeltas, chunk_deltas
from entrypoints.http.inference.streaming import (
    _chunk_batches,
    _event_prefix,
    _event_stream,
    _sse,
    _stream_error,
)
from entrypoints.http.inference.openai_schemas import (
    FINISH_REASONS,
    ChatCompletionChunk,
    Completion,
    CompletionChoice,
    CompletionTokensDetails,
    PromptTokensDetails,
    Usage,
)


# -- logprobs and usage (shared with openai_generation's non-streamed answers) ----------
def _entry(lp: TokenLogprob) -> dict[str, Any]:
    return {"token": lp.token, "logprob": lp.logprob, "bytes": list(lp.bytes)}


def chat_logprobs(entries: list[TokenLogprob] | tuple[TokenLogprob, ...]) -> dict[str, Any]:
    return {"content": [{**_entry(lp), "top_logprobs": [_entry(t) for t in lp.top]} for lp in entries],
            "refusal": None}


def completion_logprobs(entries, offset: int = 0, with_top: bool = True) -> dict[str, Any]:
    """The legacy completions shape; `text_offset` counts characters from `offset`."""
    offsets = []
    for lp in entries:
        offsets.append(offset)
        offset += len(lp.token)
    return {
        "tokens": [lp.token for lp in entries],
        "token_logprobs": [lp.logprob for lp in entries],
        "top_logprobs": [{t.token: t.logprob for t in lp.top} for lp in entries] if with_top else None,
        "text_offset": offsets,
    }


def usage_of(lasts: dict[int, GenerationChunk], n: int) -> Usage:
    """Prompt tokens once per prompt (choices of one prompt share it), completion tokens summed over choices."""
    prompts: dict[int, list[GenerationChunk]] = {}
    for index, chunk in lasts.items():
        prompts.setdefault(index // n, []).append(chunk)
    prompt = sum(max(c.prompt_tokens for c in choices) for choices in prompts.values())
    # Each choice looks the prompt up in the cache itself (a later one can find an earlier one's entry): a prompt
    # token counts as read from the cache if any choice read it; prefixes nest, so that is the longest.
    cached = sum(max(c.cached_tokens for c in choices) for choices in prompts.values())
    completion = sum(c.completion_tokens for c in lasts.values())
    reasoning = sum(c.reasoning_tokens for c in lasts.values())
    return Usage(prompt_tokens=prompt, completion_tokens=completion, total_tokens=prompt + completion,
                 prompt_tokens_details=PromptTokensDetails(cached_tokens=cached),
                 completion_tokens_details=CompletionTokensDetails(reasoning_tokens=reasoning))


def finish_of(chunk: GenerationChunk | None) -> str:
    reason = chunk.finish_reason if chunk is not None else None
    return reason if reason in FINISH_REASONS else "stop"


def _dumps(value) -> str:
    return json.dumps(value, separators=(",", ":"))


def chat_events(iterator, first: GenerationChunk | None, completion_id: str, created: int, model: str, n: int,
                want_logprobs: bool, include_usage: bool) -> StreamingResponse:
    prefix = _event_prefix(completion_id, "chat.completion.chunk", created, model)
    usage_tail = (',"usage":null' if include_usage else "") + "}\n\n"

    def event(index: int, delta: dict, finish: str | None = None, logprobs: str = "null") -> str:
        return (f'{prefix},"choices":[{{"index":{index},"delta":{_dumps(delta)},"finish_reason":'
                f'{_dumps(finish)},"logprobs":{logprobs}}}]{usage_tail}')

    def content_event(chunk: GenerationChunk) -> str:
        logprobs = _dumps(chat_logprobs(chunk.logprobs or ())) if want_logprobs else "null"
        return (f'{prefix},"choices":[{{"index":{chunk.index},"delta":{{"content":{json.dumps(chunk.text)}}},'
                f'"finish_reason":null,"logprobs":{logprobs}}}]{usage_tail}')

    calls = {index: ToolCallDeltas() for index in range(n)}  # tool calls are numbered per choice

    async def events() -> AsyncIterator[str]:
        for index in range(n):
            yield event(index, {"role": "assistant", "content": ""})
        lasts: dict[int, GenerationChunk] = {}
        finished: set[int] = set()
        try:
            async for batch in _chunk_batches(iterator, first):
                out = []
                for chunk in batch:
                    lasts[chunk.index] = chunk
                    if chunk.reasoning or chunk.tool_calls:
                        deltas = chunk_deltas(chunk, calls.setdefault(chunk.index, ToolCallDeltas()))
                        out.extend(event(chunk.index, delta) for delta in deltas)
                    elif chunk.text or (want_logprobs and chunk.logprobs):
                        out.append(content_event(chunk))
                    if chunk.finish_reason is not None and chunk.index not in finished:
                        finished.add(chunk.index)
                        out.append(event(chunk.index, {}, finish_of(chunk)))
                if out:
                    yield "".join(out)
        except Exception as exc:  # noqa: BLE001 - headers are sent: report in-band, then end the stream
            yield _stream_error(exc)
            yield "data: [DONE]\n\n"
            return
        for index in range(n):  # a choice the runtime ended without a finish reason
            if index not in finished:
                yield event(index, {}, finish_of(lasts.get(index)))
        if include_usage:
            payload = ChatCompletionChunk(id=completion_id, created=created, model=model, choices=[],
                                          usage=usage_of(lasts, n)).model_dump()
            yield _sse(payload)
        yield "data: [DONE]\n\n"

    return _event_stream(events())


def completion_events(iterator, first: GenerationChunk | None, completion_id: str, created: int, model: str, n: int,
                      echoes: dict[int, str], logprobs_top: bool | None, include_usage: bool) -> StreamingResponse:
    """`logprobs_top`: None = no logprobs; False = tokens only; True = with alternatives."""
    prefix = _event_prefix(completion_id, "text_completion", created, model)
    offsets = {i: len(e) for i, e in echoes.items()}

    def text_event(chunk: GenerationChunk) -> str:
        logprobs = "null"
        if logprobs_top is not None:
            entries = chunk.logprobs or ()
            logprobs = _dumps(completion_logprobs(entries, offsets[chunk.index], with_top=logprobs_top))
            offsets[chunk.index] += sum(len(lp.token) for lp in entries)
        return (f'{prefix},"choices":[{{"index":{chunk.index},"text":{json.dumps(chunk.text)},'
                f'"finish_reason":null,"logprobs":{logprobs}}}]}}\n\n')

    def final(index: int, text: str, finish: str | None) -> str:
        return _sse(Completion(id=completion_id, created=created, model=model,
                               choices=[CompletionChoice(index=index, text=text, finish_reason=finish)]
                               ).model_dump(exclude={"usage"}))

    async def events() -> AsyncIterator[str]:
        started: set[int] = set()
        for index, echo in echoes.items():
            if echo:
                started.add(index)
                yield final(index, echo, None)
        lasts: dict[int, GenerationChunk] = {}
        finished: set[int] = set()
        try:
            async for batch in _chunk_batches(iterator, first):
                out = []
                for chunk in batch:
                    lasts[chunk.index] = chunk
                    # A choice's first token always makes an event (even while the detokenizer holds
                    # back partial UTF-8), so clients see generation start; later empty deltas are skipped.
                    if chunk.text or chunk.index not in started or (logprobs_top is not None and chunk.logprobs):
                        started.add(chunk.index)
                        out.append(text_event(chunk))
                    if chunk.finish_reason is not None and chunk.index not in finished:
                        finished.add(chunk.index)
                        out.append(final(chunk.index, "", finish_of(chunk)))
                if out:
                    yield "".join(out)
        except Exception as exc:  # noqa: BLE001 - headers are sent: report in-band
            yield _stream_error(exc)
            yield "data: [DONE]\n\n"
            return
        for index in echoes:
            if index not in finished:
                yield final(index, "", finish_of(lasts.get(index)))
        if include_usage:
            yield _sse(Completion(id=completion_id, created=created, model=model, choices=[],
                                  usage=usage_of(lasts, n)).model_dump())
        yield "data: [DONE]\n\n"

    return _event_stream(events())
