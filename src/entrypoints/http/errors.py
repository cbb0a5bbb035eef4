"""One exception-handler map: every client mistake is a 4xx with {"error": {"type", "message"}}."""

from __future__ import annotations

import structlog
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse

from application.errors import ApplicationError, OutOfSpace
from domain.errors import DomainError
from entrypoints.errors import mapping_for, message_for, recognise
from entrypoints.http.openapi import RequestValidationError

log = structlog.get_logger("mlxm.http")


# Anthropic clients read errors in the Messages API's own shape, by status: there, and only there,
# errors are {"type": "error", "error": {"type": <Anthropic's type>, "message"}}.
ANTHROPIC_PATH = "/v1/messages"
_ANTHROPIC_TYPES = {400: "invalid_request_error", 401: "authentication_error", 403: "permission_error",
                    404: "not_found_error", 413: "request_too_large", 429: "rate_limit_error",
                    503: "overloaded_error", 529: "overloaded_error"}


def anthropic_error_type(status: int) -> str:
    return _ANTHROPIC_TYPES.get(status, "invalid_request_error" if status < 500 else "api_error")


def error_response(status: int, type_: str, message: str, *, path: str = "", **extra) -> JSONResponse:
    if path == ANTHROPIC_PATH or path.startswith(ANTHROPIC_PATH + "/"):
        body: dict = {"type": "error", "error": {"type": anthropic_error_type(status), "message": message}}
    else:
        body = {"error": {"type": type_, "message": message, **extra}}
    return JSONResponse(body, status_code=status)


async def _http_exception(request: Request, exc: HTTPException) -> JSONResponse:
    type_ = {404: "not_found", 405: "method_not_allowed", 413: "request_too_large"}.get(
        exc.status_code, "invalid_request_error" if exc.status_code < 500 else "server_error"
    )
    return error_response(exc.status_code, type_, str(exc.detail), path=request.url.path)


async def _client_disconnect(request: Request, exc: Exception) -> JSONResponse:
    # The client went away (or was cut off by the body deadline) while its body was read: nobody
    # will read this answer, and it is not a server error.
    log.info("client disconnected before its request body was read", path=request.url.path)
    return error_response(400, "client_disconnected", "the client disconnected before sending the whole body",
                          path=request.url.path)


async def _validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
    first = exc.errors[0] if exc.errors else {}
    location = ".".join(str(p) for p in first.get("loc", ()))
    message = f"{location}: {first.get('msg', 'invalid value')}" if location else first.get("msg", "invalid value")
    if first.get("type") == "extra_forbidden" and exc.accepted:
        message += f" (accepted: {', '.join(exc.accepted)})"
    elif first.get("type") == "extra_forbidden" and exc.source == "query":
        message += " (this endpoint takes no query parameters)"
    return error_response(422, "invalid_request_error", message, path=request.url.path, param=location or None)


async def _application_error(request: Request, exc: Exception) -> JSONResponse:
    exc = recognise(exc)  # e.g. a raw "No space left on device" from an import's copy: 507, not a 500
    mapping = mapping_for(exc)
    if mapping is None:
        log.exception("unhandled error", path=request.url.path)
        return error_response(500, "server_error", "internal server error", path=request.url.path)
    extra = {}
    suggestions = getattr(exc, "suggestions", None)
    if suggestions:
        extra["suggestions"] = list(suggestions)
    field = getattr(exc, "field", None)
    if field:
        extra["param"] = field
    home = _home(request) if isinstance(exc, OutOfSpace) else None
    return error_response(mapping.status, mapping.type, message_for(exc, home), path=request.url.path, **extra)


def _home(request: Request) -> str | None:
    """MLX_MANAGER_HOME, for a full disk's advice (None when the app has no settings to say it)."""
    try:
        return str(request.app.state.container.settings().manager.home)
    except Exception:  # noqa: BLE001 - the advice then names the variable only
        return None


async def _os_error(request: Request, exc: OSError) -> JSONResponse:
    if recognise(exc) is exc:
        raise exc  # not a condition a client can act on: the server-error path below (500, logged), as before
    return await _application_error(request, exc)  # a full disk: 507


EXCEPTION_HANDLERS = {
    HTTPException: _http_exception,
    # Only request parsing raises this; a pydantic error from a response DTO falls through to a 500 (a bug).
    RequestValidationError: _validation_error,
    ClientDisconnect: _client_disconnect,
    ApplicationError: _application_error,
    DomainError: _application_error,
    # Handled here rather than by the catch-all below, which re-raises after answering (a logged traceback).
    OSError: _os_error,
    # Anything else is a bug: a 500 with a JSON body (and a logged traceback).
    Exception: _application_error,
}
