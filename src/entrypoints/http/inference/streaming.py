"""Stream plumbing shared by the inference routes: start a generation off the event loop, batch its chunks through a bounded queue, stop it when the client goes away, and frame server-sent events."""

from __future__ import annotations

import asyncio
import json
import threading
from typing import Any, AsyncIterator, Callable, Iterator

import anyio
import structlog
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request

from application.inference.service import open_generation
from application.inference.ports import GenerationChunk, GenerationRequest
from entrypoints.http.event_stream import EventStreamResponse


log = structlog.get_logger("mlxm.http")


def _sse(payload: Any) -> str:
    return f"data: {json.dumps(payload, separators=(',', ':'))}\n\n"


async def _start(request: Request, model: str, internal: GenerationRequest) -> tuple[Iterator[GenerationChunk], GenerationChunk | None]:
    """Start generation and take the first chunk, so resolution errors are still a 4xx, not a broken stream."""
    service = _inference(request)

    def start():
        iterator = open_generation(service, model, internal)
        try:
            return iterator, next(iterator, None)
        except BaseException:
            close = getattr(iterator, "close", None)
            if close is not None:
                close()
            raise

    return await run_in_threadpool(start)


class _Failed:
    def __init__(self, error: BaseException) -> None:
        self.error = error


_END = object()


# How far the producer thread may run ahead of the client: a slow reader holds generation back
# (backpressure) instead of the server buffering an unbounded number of tokens.
MAX_CHUNKS_AHEAD = 256


async def _chunk_batches(
    iterator: Iterator[GenerationChunk], first: GenerationChunk | None
) -> AsyncIterator[list[GenerationChunk]]:
    """The stream's chunks, in batches of whatever has arrived since the last write.

    One producer thread iterates the (blocking) stream and hands chunks to the event loop, so a
    token costs one cross-thread hand-off instead of a threadpool round trip. Leaving early (the
    client went away) tells the producer to stop; it closes the stream in its own thread at the
    next token, which stops generation and releases the model.
    """
    if first is None:
        await run_in_threadpool(_close_quietly, iterator)
        return
    loop = asyncio.get_running_loop()
    arrived: asyncio.Queue = asyncio.Queue()
    stop = threading.Event()
    room = threading.Semaphore(MAX_CHUNKS_AHEAD)

    def deliver(item: object) -> None:
        try:
            loop.call_soon_threadsafe(arrived.put_nowait, item)
        except RuntimeError:  # the loop is gone (server shutdown): nobody is listening
            pass

    def produce() -> None:
        try:
            while not stop.is_set():
                chunk = next(iterator, None)
                if chunk is None:
                    break
                while not room.acquire(timeout=0.1):  # wait for the client to catch up; leave if it left
                    if stop.is_set():
                        return
                deliver(chunk)
        except BaseException as exc:  # noqa: BLE001 - handed to the consumer, raised there
            deliver(_Failed(exc))
        finally:
            _close_quietly(iterator)
            deliver(_END)

    threading.Thread(target=produce, name="mlxm-stream", daemon=True).start()
    try:
        yield [first]
        while True:
            items = [await arrived.get()]
            while not arrived.empty():
                items.append(arrived.get_nowait())
            batch: list[GenerationChunk] = []
            for item in items:
                if item is _END:
                    if batch:
                        yield batch
                    return
                if isinstance(item, _Failed):
                    if batch:
                        yield batch
                    raise item.error
                batch.append(item)  # type: ignore[arg-type]
            for _ in batch:
                room.release()
            yield batch
    finally:
        stop.set()


def _close_quietly(iterator) -> None:
    close = getattr(iterator, "close", None)
    if close is None:
        return
    try:
        close()
    except Exception as exc:  # noqa: BLE001 - closing must not hide the stream's own outcome
        log.warning("closing a stream failed", error=str(exc))


async def _chunks(iterator: Iterator[GenerationChunk], first: GenerationChunk | None) -> AsyncIterator[GenerationChunk]:
    """Chunks one by one (see `_chunk_batches`)."""
    async for batch in _chunk_batches(iterator, first):
        for chunk in batch:
            yield chunk


def _event_prefix(completion_id: str, object_name: str, created: int, model: str) -> str:
    """`data: {"id":...,"model":...` without the closing brace: per-token events append to it."""
    head = json.dumps({"id": completion_id, "object": object_name, "created": created, "model": model},
                      separators=(",", ":"))
    return "data: " + head[:-1]


async def _collect(
    request: Request, iterator: Iterator[GenerationChunk], first: GenerationChunk | None,
    sink: Callable[[GenerationChunk], None] | None = None,
) -> tuple[str, GenerationChunk | None]:
    """The whole answer (each chunk also to `sink`); a client that disconnects before it is done stops
    the generation too."""
    pieces: list[str] = []
    last = first

    async def watch_disconnect(scope: anyio.CancelScope) -> None:
        # The body was read already, so the next message can only be the disconnect.
        while (await request.receive())["type"] != "http.disconnect":
            pass
        log.info("client disconnected; generation stopped")
        scope.cancel()

    async with anyio.create_task_group() as tasks:
        tasks.start_soon(watch_disconnect, tasks.cancel_scope)
        async for chunk in _chunks(iterator, first):
            pieces.append(chunk.text)
            last = chunk
            if sink is not None:
                sink(chunk)
        tasks.cancel_scope.cancel()
    return "".join(pieces), last


def _event_stream(events: AsyncIterator[str]) -> EventStreamResponse:
    # The routes' generators report their own errors in-band; the response only guards what escapes them.
    return EventStreamResponse(events)


def _stream_error(exc: Exception) -> str:
    from entrypoints.errors import mapping_for

    mapping = mapping_for(exc)
    log.warning("stream failed", error=str(exc), error_type=type(exc).__name__)
    return _sse({"error": {"type": mapping.type if mapping else "server_error", "message": str(exc) if mapping else "internal server error"}})


def _inference(request: Request):
    container = request.app.state.container
    # Cloud routes, fallback and the audit log sit in front of local text generation (auth/routing area).
    routed = getattr(container, "routed_inference_service", None)
    return routed() if routed is not None else container.inference_service()
