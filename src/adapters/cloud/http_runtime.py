"""`ModelRuntime` adapters for remote chat APIs over httpx: OpenAI-compatible and Anthropic-compatible.

Errors become `BackendError` (connection errors and 5xx/429 are retryable, so a mapping's fallback
can take over) or `BackendTimeout`. The API key only ever travels in a request header: it is not
part of any URL, repr, log line or error message.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Iterator, Sequence

import httpx

from application.errors import BackendError, BackendTimeout, InvalidRequest
from application.routing.ports import CloudEndpoint
from application.inference.ports import GenerationChunk, GenerationRequest, LoadedModel, Transcription
from domain.enums import ApiType, ModelType
from domain.profiles.params import AudioDefaults

ANTHROPIC_VERSION = "2023-06-01"
DEFAULT_ANTHROPIC_MAX_TOKENS = 4096  # the Messages API requires max_tokens
_ANTHROPIC_STOP = {"end_turn": "stop", "stop_sequence": "stop", "max_tokens": "length", "tool_use": "tool_calls"}


class HttpCloudRuntimeFactory:
    """Builds a runtime per endpoint over one shared connection pool."""

    def __init__(self, timeout: float = 300.0, connect_timeout: float = 10.0,
                 transport: httpx.BaseTransport | None = None) -> None:
        self._timeout = httpx.Timeout(timeout, connect=min(connect_timeout, timeout))
        self._transport = transport
        self._client = self._new_client()

    def _new_client(self) -> httpx.Client:
        return httpx.Client(timeout=self._timeout, transport=self._transport)

    def __call__(self, endpoint: CloudEndpoint) -> "HttpCloudRuntime":
        if self._client.is_closed:  # closed at a server shutdown; the factory may be used again
            self._client = self._new_client()
        return HttpCloudRuntime(endpoint, self._client)

    def close(self) -> None:
        self._client.close()


class HttpCloudRuntime:
    def __init__(self, endpoint: CloudEndpoint, client: httpx.Client) -> None:
        self._endpoint = endpoint
        self._client = client
        self._name = endpoint.api_type.value

    def __repr__(self) -> str:
        return f"HttpCloudRuntime({self._endpoint.api_type.value}, {self._endpoint.base_url})"

    # --- ModelRuntime ---
    def load(self, model_id: str, path: Path, model_type: ModelType) -> LoadedModel:
        """Nothing to load: the handle is the remote model name."""
        return LoadedModel(model_id=model_id, model_type=ModelType.TEXT_GEN, path=path, size_bytes=0)

    def unload(self, model: LoadedModel) -> None:
        pass

    def generate(self, model: LoadedModel, request: GenerationRequest) -> Iterator[GenerationChunk]:
        """Stream deltas from the remote API; closing the iterator closes the connection."""
        _refuse_tools(model, request)
        if self._endpoint.api_type is ApiType.ANTHROPIC:
            return self._stream_anthropic(model.model_id, request)
        return self._stream_openai(model.model_id, request)

    def complete(self, model: LoadedModel, request: GenerationRequest) -> GenerationChunk:
        """One non-streaming call: the whole text and usage in one chunk."""
        _refuse_tools(model, request)
        if self._endpoint.api_type is ApiType.ANTHROPIC:
            body = self._post(self._anthropic_url(), self._anthropic_body(model.model_id, request, False),
                              self._anthropic_headers())
            text = "".join(b.get("text", "") for b in body.get("content", []) if b.get("type") == "text")
            usage = body.get("usage") or {}
            return GenerationChunk(text, usage.get("input_tokens", 0) or 0, usage.get("output_tokens", 0) or 0,
                                   _ANTHROPIC_STOP.get(body.get("stop_reason"), "stop"))
        body = self._post(self._openai_url(), self._openai_body(model.model_id, request, False), self._openai_headers())
        try:
            choice = body["choices"][0]
            text = choice["message"].get("content") or ""
        except (KeyError, IndexError, TypeError, AttributeError) as exc:
            raise BackendError(f"{self._name} backend sent an unexpected answer", backend=self._name) from exc
        usage = body.get("usage") or {}
        return GenerationChunk(text, usage.get("prompt_tokens", 0) or 0, usage.get("completion_tokens", 0) or 0,
                               choice.get("finish_reason") or "stop")

    def synthesize(self, model: LoadedModel, text: str, audio: AudioDefaults) -> bytes:
        raise InvalidRequest("cloud routes serve chat only")

    def transcribe(self, model: LoadedModel, audio: bytes, language: str | None) -> Transcription:
        raise InvalidRequest("cloud routes serve chat only")

    def embed(self, model: LoadedModel, texts: Sequence[str]) -> list[list[float]]:
        raise InvalidRequest("cloud routes serve chat only")

    # --- OpenAI-compatible ---
    def _openai_url(self) -> str:
        return f"{self._endpoint.base_url}/chat/completions"

    def _openai_headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self._endpoint.api_key}"}

    @staticmethod
    def _messages(request: GenerationRequest) -> list[dict[str, str]]:
        if any(m.images for m in request.messages):  # never silently drop what the client sent
            raise InvalidRequest("images are not forwarded to cloud backends; use a local vision model")
        if request.messages:
            return [{"role": m.role, "content": m.content} for m in request.messages]
        return [{"role": "user", "content": request.prompt or ""}]

    def _openai_body(self, model: str, request: GenerationRequest, stream: bool) -> dict[str, Any]:
        p = request.params
        body: dict[str, Any] = {"model": model, "messages": self._messages(request), "stream": stream}
        for name in ("temperature", "top_p", "max_tokens", "seed"):
            if getattr(p, name) is not None:
                body[name] = getattr(p, name)
        if p.stop:
            body["stop"] = list(p.stop)
        if stream:
            body["stream_options"] = {"include_usage": True}
        return body

    def _stream_openai(self, model: str, request: GenerationRequest) -> Iterator[GenerationChunk]:
        prompt_tokens = completion_tokens = 0
        finish = None
        done = False
        for event in self._sse(self._openai_url(), self._openai_body(model, request, True), self._openai_headers()):
            if event.get("type") == "[DONE]":
                done = True
                break
            if event.get("usage"):
                prompt_tokens = event["usage"].get("prompt_tokens", 0) or 0
                completion_tokens = event["usage"].get("completion_tokens", 0) or 0
            for choice in event.get("choices") or []:
                delta = (choice.get("delta") or {}).get("content") or ""
                finish = choice.get("finish_reason") or finish
                if delta:
                    yield GenerationChunk(delta)
        if not done:
            raise self._truncated()
        yield GenerationChunk("", prompt_tokens, completion_tokens, finish or "stop")

    # --- Anthropic-compatible ---
    def _anthropic_url(self) -> str:
        base = self._endpoint.base_url
        return f"{base}/messages" if base.endswith("/v1") else f"{base}/v1/messages"

    def _anthropic_headers(self) -> dict[str, str]:
        return {"x-api-key": self._endpoint.api_key, "anthropic-version": ANTHROPIC_VERSION}

    def _anthropic_body(self, model: str, request: GenerationRequest, stream: bool) -> dict[str, Any]:
        p = request.params
        system = "\n\n".join(m["content"] for m in self._messages(request) if m["role"] == "system")
        messages = [m for m in self._messages(request) if m["role"] != "system"]
        body: dict[str, Any] = {"model": model, "messages": messages,
                                "max_tokens": p.max_tokens or DEFAULT_ANTHROPIC_MAX_TOKENS, "stream": stream}
        if system:
            body["system"] = system
        for name in ("temperature", "top_p", "top_k"):
            if getattr(p, name) is not None:
                body[name] = getattr(p, name)
        if p.stop:
            body["stop_sequences"] = list(p.stop)
        return body

    def _stream_anthropic(self, model: str, request: GenerationRequest) -> Iterator[GenerationChunk]:
        prompt_tokens = completion_tokens = 0
        finish = None
        body = self._anthropic_body(model, request, True)
        done = False
        for event in self._sse(self._anthropic_url(), body, self._anthropic_headers()):
            kind = event.get("type")
            if kind == "message_stop":
                done = True
            if kind == "message_start":
                usage = (event.get("message") or {}).get("usage") or {}
                prompt_tokens = usage.get("input_tokens", 0) or 0
                completion_tokens = usage.get("output_tokens", 0) or 0
            elif kind == "content_block_delta":
                text = (event.get("delta") or {}).get("text") or ""
                if text:
                    yield GenerationChunk(text)
            elif kind == "message_delta":
                completion_tokens = ((event.get("usage") or {}).get("output_tokens")) or completion_tokens
                finish = _ANTHROPIC_STOP.get((event.get("delta") or {}).get("stop_reason"), finish)
            elif kind == "error":
                error = event.get("error") or {}
                raise BackendError(f"{self._name} backend error: {error.get('message', 'unknown')}",
                                   backend=self._name, retryable=error.get("type") == "overloaded_error")
        if not done:
            raise self._truncated()
        yield GenerationChunk("", prompt_tokens, completion_tokens, finish or "stop")

    # --- transport ---
    def _post(self, url: str, body: dict, headers: dict) -> dict:
        try:
            response = self._client.post(url, json=body, headers=headers)
            if response.status_code >= 400:
                raise self._status_error(response.status_code, response.text)
            return response.json()
        except httpx.TimeoutException as exc:
            raise BackendTimeout(f"{self._name} backend timed out", backend=self._name) from None
        except httpx.TransportError as exc:
            raise BackendError(f"{self._name} backend unreachable: {type(exc).__name__}", backend=self._name) from None
        except httpx.InvalidURL as exc:  # a stored base_url httpx cannot use
            raise BackendError(f"{self._name} backend URL is not usable: {exc}", backend=self._name) from None
        except ValueError as exc:
            raise BackendError(f"{self._name} backend sent invalid JSON", backend=self._name) from None

    def _sse(self, url: str, body: dict, headers: dict) -> Iterator[dict]:
        try:
            with self._client.stream("POST", url, json=body, headers=headers) as response:
                if response.status_code >= 400:
                    raise self._status_error(response.status_code, response.read().decode(errors="replace"))
                for line in response.iter_lines():
                    if not line.startswith("data:"):
                        continue
                    data = line[5:].strip()
                    if data == "[DONE]":
                        yield {"type": "[DONE]"}
                        return
                    try:
                        yield json.loads(data)
                    except ValueError:
                        raise BackendError(f"{self._name} backend sent invalid JSON", backend=self._name) from None
        except httpx.TimeoutException:
            raise BackendTimeout(f"{self._name} backend timed out", backend=self._name) from None
        except httpx.TransportError as exc:
            raise BackendError(f"{self._name} backend unreachable: {type(exc).__name__}", backend=self._name) from None
        except httpx.InvalidURL as exc:  # a stored base_url httpx cannot use
            raise BackendError(f"{self._name} backend URL is not usable: {exc}", backend=self._name) from None

    def _truncated(self) -> BackendError:
        # A stream that stops without its end marker was cut: never pass it off as a complete answer.
        return BackendError(f"{self._name} backend closed the stream before its end", backend=self._name)

    def _status_error(self, status: int, text: str) -> BackendError:
        try:
            detail = json.loads(text).get("error", {})
            message = detail.get("message") if isinstance(detail, dict) else str(detail)
        except (ValueError, AttributeError):
            message = None
        message = (message or text or "").strip()[:300].replace(self._endpoint.api_key, "***")
        # 5xx and 429 are the backend's trouble: a fallback may serve; other 4xx are the request's fault.
        retryable = status >= 500 or status == 429
        return BackendError(f"{self._name} backend answered {status}: {message}", backend=self._name,
                            retryable=retryable)


def _refuse_tools(model: LoadedModel, request: GenerationRequest) -> None:
    """Tools and tool history are not translated for cloud backends (yet): a 400, never silently dropped.
    Likewise the local engine's options that are not forwarded: response_format, n, logprobs."""
    params = request.params
    for name, used in (("response_format", request.constraint is not None), ("n", request.n != 1),
                       ("logprobs", bool(params.logprobs or params.top_logprobs))):
        if used:
            raise InvalidRequest(f"{model.model_id}: {name} is not forwarded to cloud backends yet; "
                                 "use a local model for it")
    offered = bool(request.tools) and request.tool_choice != "none"
    in_history = any(m.tool_calls or m.role == "tool" for m in request.messages)
    if offered or in_history:
        raise InvalidRequest(f"{model.model_id}: tool calling is not forwarded to cloud backends yet; "
                             "use a local model for requests with tools")
