"""Routes that declare their DTOs, and the OpenAPI document built from them.

Every route module builds its routes with `api_route(...)`, naming the pydantic models of
its query, body and response. `build_openapi(routes)` turns those declarations into
`/openapi.json` with `model_json_schema()`, so the document cannot drift from the DTOs.
A route mounted without a declaration still appears (with a generic operation).
"""

from __future__ import annotations

import functools
import inspect
import re
from dataclasses import dataclass, field
from typing import Any, Callable

from pydantic import BaseModel, ConfigDict, ValidationError
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.routing import BaseRoute, Route

from entrypoints.http.schemas import ErrorResponse

REF_TEMPLATE = "#/components/schemas/{model}"


@dataclass(frozen=True)
class RouteDoc:
    summary: str
    tags: tuple[str, ...] = ()
    query: type[BaseModel] | None = None
    body: type[BaseModel] | None = None
    body_content_type: str = "application/json"
    response: type[BaseModel] | None = None
    status: int = 200
    response_content_types: tuple[str, ...] = ("application/json",)
    stream: type[BaseModel] | None = None  # the event payload of an SSE (text/event-stream) variant
    error_statuses: tuple[int, ...] = (400, 404, 413, 422)
    extra: dict[str, Any] = field(default_factory=dict)


def api_route(
    path: str,
    endpoint: Callable,
    method: str,
    *,
    summary: str | None = None,
    tags: tuple[str, ...] | list[str] = (),
    query: type[BaseModel] | None = None,
    body: type[BaseModel] | None = None,
    body_content_type: str = "application/json",
    response: type[BaseModel] | None = None,
    status: int = 200,
    response_content_types: tuple[str, ...] = ("application/json",),
    stream: type[BaseModel] | None = None,
    error_statuses: tuple[int, ...] = (400, 404, 413, 422),
) -> Route:
    """A Starlette `Route` for one method that carries its OpenAPI declaration.

    A management route (`/api/...`) that declares no query refuses any query parameter (a 422, like a
    misspelt filter on the routes that have filters), so a client never believes it filtered a list.
    """
    if query is None and path.startswith("/api/") and path not in QUERY_IGNORED:
        endpoint = _refusing_query(endpoint)
    route = Route(path, endpoint, methods=[method.upper()])
    doc_summary = summary or ((endpoint.__doc__ or "").strip().splitlines() or [endpoint.__name__])[0]
    route.openapi = RouteDoc(  # type: ignore[attr-defined]
        summary=doc_summary,
        tags=tuple(tags),
        query=query,
        body=body,
        body_content_type=body_content_type,
        response=response,
        status=status,
        response_content_types=response_content_types,
        stream=stream,
        error_statuses=error_statuses,
    )
    return route


# -- request parsing ---------------------------------------------------------------
# The liveness probe answers whatever monitors append (cache-busters): a refusal there would read as "down".
# /v1 is not here at all: OpenAI's and Anthropic's clients add query parameters of their own (the
# AzureOpenAI client `api-version` on every request, Claude Code `?beta=true` on /v1/messages).
QUERY_IGNORED = frozenset({"/api/health"})


class NoQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")


def _refusing_query(endpoint: Callable) -> Callable:
    @functools.wraps(endpoint)
    async def endpoint_without_query(request: Request):
        if request.query_params:
            parse_query(request, NoQuery)  # raises: every key is unknown
        if inspect.iscoroutinefunction(endpoint):
            return await endpoint(request)
        return await run_in_threadpool(endpoint, request)

    return endpoint_without_query


async def parse_body(request: Request, model: type[BaseModel]):
    """The JSON body validated into `model`; bad JSON is a 400, wrong fields a 422.

    Hostile JSON (lone surrogates, deep nesting, huge integers) is refused by `json_body.load_json`; a
    refused inference request still gets its audit row, with the refusal's error type.
    """
    from entrypoints.http.json_body import BodyRefused, load_json
    from entrypoints.http.refusal_audit import record_refusal

    data: Any = None
    try:
        raw = await request.body()
        if not raw:
            raise BodyRefused(400, "invalid_json", "request body is empty; expected a JSON object")
        data = load_json(raw)
        if not isinstance(data, dict):
            raise BodyRefused(400, "invalid_json", "request body must be a JSON object")
        return validate_request(model, data)
    except BodyRefused as exc:
        await record_refusal(request, exc.kind, data)
        raise HTTPException(exc.status, str(exc)) from None
    except RequestValidationError:
        await record_refusal(request, "invalid_request_error", data)
        raise
    except HTTPException as exc:  # 413 while reading the body
        await record_refusal(request, "request_too_large" if exc.status_code == 413 else "invalid_request_error",
                             data)
        raise


def parse_query(request: Request, model: type[BaseModel]):
    """Query parameters validated into `model` (repeated keys become lists when the field is a list)."""
    data: dict[str, Any] = {}
    for key in request.query_params.keys():
        values = request.query_params.getlist(key)
        annotation = model.model_fields.get(key).annotation if key in model.model_fields else None
        data[key] = values if "list" in str(annotation) else values[-1]
    return validate_request(model, data, source="query")


class RequestValidationError(Exception):
    """The client's query or body does not fit its DTO (a 422).

    Only request parsing raises it: a pydantic error anywhere else (a response DTO) is a bug, so a 500.
    """

    def __init__(self, error: ValidationError, accepted: tuple[str, ...] = (), source: str = "body") -> None:
        super().__init__(str(error))
        self.errors = error.errors()
        self.accepted = accepted  # the fields the DTO knows, named when an unknown one was sent
        self.source = source  # "query" or "body": what an unknown field was sent in


def validate_request(model: type[BaseModel], data: Any, source: str = "body"):
    """`data` validated into `model`; a mismatch is the client's mistake (RequestValidationError)."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise RequestValidationError(exc, tuple(f.alias or n for n, f in model.model_fields.items()),
                                     source) from None


# -- the document ------------------------------------------------------------------
_PARAM = re.compile(r"{([^}:]+)(:[^}]+)?}")


def _openapi_path(path: str) -> tuple[str, list[str]]:
    names = [m.group(1) for m in _PARAM.finditer(path)]
    return _PARAM.sub(lambda m: "{" + m.group(1) + "}", path), names


class _Schemas:
    def __init__(self) -> None:
        self.components: dict[str, Any] = {}

    def ref(self, model: type[BaseModel]) -> dict[str, Any]:
        schema = model.model_json_schema(ref_template=REF_TEMPLATE)
        for name, definition in schema.pop("$defs", {}).items():
            self.components.setdefault(name, definition)
        self.components.setdefault(model.__name__, schema)
        return {"$ref": REF_TEMPLATE.format(model=model.__name__)}

    def query_parameters(self, model: type[BaseModel]) -> list[dict[str, Any]]:
        schema = model.model_json_schema(ref_template=REF_TEMPLATE)
        for name, definition in schema.pop("$defs", {}).items():
            self.components.setdefault(name, definition)
        required = set(schema.get("required", []))
        return [
            {
                "name": name,
                "in": "query",
                "required": name in required,
                "schema": prop,
                **({"description": prop["description"]} if "description" in prop else {}),
            }
            for name, prop in schema.get("properties", {}).items()
        ]


def _operation(doc: RouteDoc | None, path_params: list[str], schemas: _Schemas, name: str) -> dict[str, Any]:
    parameters = [{"name": p, "in": "path", "required": True, "schema": {"type": "string"}} for p in path_params]
    if doc is None:
        return {
            "summary": name,
            "operationId": name,
            "parameters": parameters,
            "responses": {"200": {"description": "Success"}},
        }
    operation: dict[str, Any] = {"summary": doc.summary, "operationId": name, "tags": list(doc.tags)}
    if doc.query is not None:
        parameters += schemas.query_parameters(doc.query)
    operation["parameters"] = parameters
    if doc.body is not None:
        operation["requestBody"] = {"required": True, "content": {doc.body_content_type: {"schema": schemas.ref(doc.body)}}}
    content: dict[str, Any] = {}
    # 204 No Content has no body to describe.
    for media_type in doc.response_content_types if doc.status != 204 else ():
        if media_type == "application/json" and doc.response is not None:
            content[media_type] = {"schema": schemas.ref(doc.response)}
        elif media_type.startswith("audio/"):
            content[media_type] = {"schema": {"type": "string", "format": "binary"}}
        else:
            content[media_type] = {"schema": {"type": "string"}}
    if doc.stream is not None:
        content["text/event-stream"] = {
            "schema": {"type": "string", "description": f"Server-sent events; each `data:` line is a {doc.stream.__name__}"},
            "x-event-schema": schemas.ref(doc.stream),
        }
    success = "No content" if doc.status == 204 else "Success"
    responses: dict[str, Any] = {str(doc.status): {"description": success, "content": content} if content else {"description": success}}
    error = {"content": {"application/json": {"schema": schemas.ref(ErrorResponse)}}}
    for status in doc.error_statuses:
        responses[str(status)] = {"description": _ERROR_DESCRIPTIONS.get(status, "Error"), **error}
    operation["responses"] = responses
    return operation


_ERROR_DESCRIPTIONS = {
    400: "Bad request (malformed JSON, wrong model type for the call)",
    404: "Not found (the error names close matches)",
    409: "Conflict",
    413: "Request body too large",
    422: "Invalid parameters",
    501: "Not supported by this server",
    503: "Unavailable",
    507: "Insufficient storage (the disk under MLX_MANAGER_HOME is full; what was written so far stays)",
}


def build_openapi(routes: list[BaseRoute], *, title: str = "mlxm", version: str = "0") -> dict[str, Any]:
    """The OpenAPI 3.1 document of every `Route` in `routes`."""
    schemas = _Schemas()
    paths: dict[str, dict[str, Any]] = {}
    for route in routes:
        if not isinstance(route, Route) or not route.include_in_schema:
            continue
        path, params = _openapi_path(route.path)
        doc = getattr(route, "openapi", None)
        for method in sorted((route.methods or {"GET"}) - {"HEAD"}):
            name = f"{method.lower()}_{re.sub(r'[^a-zA-Z0-9]+', '_', path).strip('_')}"
            paths.setdefault(path, {})[method.lower()] = _operation(doc, params, schemas, name)
    return {
        "openapi": "3.1.0",
        "info": {"title": title, "version": version},
        "paths": paths,
        "components": {"schemas": schemas.components},
    }
