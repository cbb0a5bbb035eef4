"""`/api/downloads`: start, list, show, an SSE progress stream, pause, resume, cancel."""

from __future__ import annotations

import json

import anyio
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse

from domain.enums import DownloadStatus
from entrypoints.errors import mapping_for, message_for, recognise
from entrypoints.http.event_stream import EventStreamResponse
from entrypoints.http.openapi import api_route, parse_body, parse_query

TAGS = ("downloads",)
TERMINAL = {DownloadStatus.COMPLETED, DownloadStatus.FAILED, DownloadStatus.CANCELLED, DownloadStatus.PAUSED}
EVENT_POLL_SECONDS = 0.25


class DownloadCreate(BaseModel):
    model: str = Field(min_length=1, description="Catalog ID, alias or HF repo `org/name[@revision]`")
    repair: bool = Field(False, description="An installed model: rehash it and re-fetch only its damaged files "
                                            "(`mlxm verify --repair`); the row's `files` lists them")


class DownloadDTO(BaseModel):
    id: int
    model_id: str
    status: str
    downloaded_bytes: int
    total_bytes: int | None = None
    progress: float | None = None
    speed_bps: float | None = None
    revision: str | None = None
    source: str | None = None
    error: str | None = None
    files: list[str] = []
    started_at: str | None = None
    completed_at: str | None = None

    @classmethod
    def from_domain(cls, d) -> "DownloadDTO":
        return cls(id=d.id, model_id=d.model_id, status=d.status.value, downloaded_bytes=d.downloaded_bytes,
                   total_bytes=d.total_bytes, progress=d.progress, speed_bps=d.speed_bps, revision=d.revision,
                   source=d.source, error=d.error, files=list(d.files),
                   started_at=d.started_at.isoformat() if d.started_at else None,
                   completed_at=d.completed_at.isoformat() if d.completed_at else None)


class DownloadListQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")  # a misspelt filter is a 422, not the unfiltered list

    status: list[DownloadStatus] | None = Field(default=None, description="Only these statuses (repeatable)")


class DownloadListDTO(BaseModel):
    object: str = "list"
    data: list[DownloadDTO]


class FileProgressDTO(BaseModel):
    path: str
    downloaded_bytes: int
    total_bytes: int | None = None
    done: bool = False


class DownloadEventDTO(BaseModel):
    download_id: int | None
    model_id: str
    status: str
    downloaded_bytes: int
    total_bytes: int | None = None
    bytes_per_second: float | None = None
    eta_seconds: float | None = None
    current_file: str | None = None
    files_done: int = 0
    files_total: int = 0
    error: str | None = None
    files: list[FileProgressDTO] = Field(default_factory=list, description="Per-file bytes while a pull runs here")


def _service(request: Request):
    return request.app.state.container.download_service()


def _id(request: Request) -> int:
    raw = str(request.path_params["download_id"])
    # ASCII digits only (str.isdigit() accepts '²') and within a SQLite integer: anything else names no row.
    if not (raw.isascii() and raw.isdigit()) or not 0 < int(raw) < 2**63:
        raise HTTPException(404, f"download {raw[:40]!r} not found")
    return int(raw)


def _dto(d) -> dict:
    return DownloadDTO.from_domain(d).model_dump(mode="json")


async def start_download(request: Request) -> JSONResponse:
    """Start pulling a model (or join the pull already running), or repair an installed one; 202 with the row."""
    body = await parse_body(request, DownloadCreate)
    service = _service(request)
    download = await run_in_threadpool(service.start_repair if body.repair else service.start, body.model)
    return JSONResponse(_dto(download), status_code=202)


async def list_downloads(request: Request) -> JSONResponse:
    """Every download (or those with the given statuses), oldest first."""
    query = parse_query(request, DownloadListQuery)
    rows = await run_in_threadpool(_service(request).list, query.status)
    return JSONResponse(DownloadListDTO(data=[DownloadDTO.from_domain(d) for d in rows]).model_dump(mode="json"))


async def show_download(request: Request) -> JSONResponse:
    """One download by id."""
    return JSONResponse(_dto(await run_in_threadpool(_service(request).get, _id(request))))


async def pause_download(request: Request) -> JSONResponse:
    """Stop transferring and keep the partial data."""
    return JSONResponse(_dto(await run_in_threadpool(_service(request).pause, _id(request))))


async def resume_download(request: Request) -> JSONResponse:
    """Continue a paused or failed download from the bytes already on disk."""
    return JSONResponse(_dto(await run_in_threadpool(_service(request).resume, _id(request))), status_code=202)


async def cancel_download(request: Request) -> JSONResponse:
    """Stop transferring and delete the partial data."""
    return JSONResponse(_dto(await run_in_threadpool(_service(request).cancel, _id(request))))


async def download_events(request: Request) -> EventStreamResponse:
    """Server-sent events: `progress` while the download runs, then one `end` event with the final state
    (or one `error` event if its state cannot be read any more)."""
    service = _service(request)
    download_id = _id(request)
    await run_in_threadpool(service.get, download_id)  # 404 before the stream starts

    async def stream():
        last = None
        while True:
            snapshot = await run_in_threadpool(service.progress_of, download_id)
            data = DownloadEventDTO(**snapshot.to_dict()).model_dump(mode="json")
            active = await run_in_threadpool(service.is_active_here, download_id)
            finished = not active and snapshot.status in TERMINAL
            if data != last or finished:
                event = "end" if finished else "progress"
                yield f"event: {event}\ndata: {json.dumps(data)}\n\n"
                last = data
            if finished or await request.is_disconnected():
                return
            await anyio.sleep(EVENT_POLL_SECONDS)

    return EventStreamResponse(stream(), error_event=_error_event)


def _error_event(exc: Exception) -> str:
    """The stream's last event when reading the download's state fails after the stream started."""
    exc = recognise(exc)  # a full disk is `insufficient_storage`, as in a JSON answer
    mapping = mapping_for(exc)
    error = {"type": mapping.type, "message": message_for(exc)} if mapping else \
        {"type": "server_error", "message": "internal server error"}  # the log line has the details
    return f"event: error\ndata: {json.dumps({'error': error})}\n\n"


routes = [
    api_route("/api/downloads", start_download, "POST", tags=TAGS, body=DownloadCreate, response=DownloadDTO,
              status=202, error_statuses=(400, 404, 409, 413, 422, 507)),
    api_route("/api/downloads", list_downloads, "GET", tags=TAGS, query=DownloadListQuery, response=DownloadListDTO,
              error_statuses=(422,)),
    api_route("/api/downloads/{download_id}", show_download, "GET", tags=TAGS, response=DownloadDTO,
              error_statuses=(404,)),
    api_route("/api/downloads/{download_id}/events", download_events, "GET", tags=TAGS,
              response_content_types=("text/event-stream",), stream=DownloadEventDTO, error_statuses=(404,)),
    api_route("/api/downloads/{download_id}/pause", pause_download, "POST", tags=TAGS, response=DownloadDTO,
              error_statuses=(404, 409)),
    api_route("/api/downloads/{download_id}/resume", resume_download, "POST", tags=TAGS, response=DownloadDTO,
              status=202, error_statuses=(404, 409)),
    api_route("/api/downloads/{download_id}/cancel", cancel_download, "POST", tags=TAGS, response=DownloadDTO,
              error_statuses=(404, 409)),
]
