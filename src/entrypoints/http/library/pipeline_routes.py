"""Library pipelines over HTTP: `/api/models/import`, `/api/links/{app}/...`, and
`GET /api/models/{id}/dependency-requirements` (the versioned dependency contract).

These routes are registered before `/api/models/{name:path}` so that path does not swallow them.
"""

from __future__ import annotations

import os

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse

from application.errors import InvalidRequest
from entrypoints.http.library.import_policy import check_import_path
from entrypoints.http.openapi import api_route, parse_body, parse_query
from entrypoints.http.library.schemas import (
    DependencyQuery,
    DependencyRequirementsDTO,
    ImportModelRequest,
    ImportModelResponse,
    LinkApplyDTO,
    LinkApplyRequest,
    LinkCleanDTO,
    LinkPreviewDTO,
)

TAGS = ("library",)


def _container(request: Request):
    return request.app.state.container


async def import_model(request: Request) -> JSONResponse:
    """Import a local model folder or weights file (201 when added, 200 when the content was already there)."""
    from application.library.importing import ImportRequest

    body = await parse_body(request, ImportModelRequest)
    if not os.path.isabs(os.path.expanduser(body.path)):
        raise InvalidRequest("path must be absolute (the server resolves it on its own machine)")
    check_import_path(request, body.path)
    service = _container(request).import_service()
    result = await run_in_threadpool(service.import_model, ImportRequest(
        path=body.path, name=body.name, move=body.move, in_place=body.in_place, allow_pickle=body.allow_pickle,
    ))
    model = result.model
    dto = ImportModelResponse(
        id=model.model_id,
        created=result.created,
        mode=result.mode,
        content_sha256=result.content_sha256,
        type=model.model_type.value if model.model_type else None,
        family=model.family,
        confidence=result.inference.confidence if result.inference else None,
        review_reasons=list(model.review_reasons),
        local_path=model.local_path,
        managed=model.managed,
        size_bytes=model.size_bytes,
        files=len(model.files),
    )
    return JSONResponse(dto.model_dump(mode="json"), status_code=201 if result.created else 200)


async def dependency_requirements(request: Request) -> JSONResponse:
    """The model's dependency requirements per binding, validated (409 on a contract version mismatch)."""
    from application.library.dependencies import platform_context, resolution_to_contract

    query = parse_query(request, DependencyQuery)
    context = platform_context(query.platform, query.python)
    service = _container(request).dependency_service()
    resolution = await run_in_threadpool(
        service.resolve_model_dependency_requirements,
        request.path_params["name"], context, query.backend, query.expected_contract_version,
    )
    dto = DependencyRequirementsDTO.model_validate(resolution_to_contract(resolution))
    return JSONResponse(dto.model_dump(mode="json"))


async def link_preview(request: Request) -> JSONResponse:
    """What `apply` would do for each target: create, exists, conflict or broken."""
    plan = await run_in_threadpool(_container(request).mapping_service().preview, request.path_params["app"])
    dto = LinkPreviewDTO(
        app=plan.app,
        root=plan.root,
        summary=plan.summary,
        entries=[{"model_id": e.model_id, "rule_target": e.rule_target, "path": e.relative_path,
                  "source": e.source_path, "target": e.target_path, "action": e.action.value} for e in plan.entries],
        problem=plan.problem,
    )
    return JSONResponse(dto.model_dump(mode="json"))


async def link_apply(request: Request) -> JSONResponse:
    """Create the app's links (symlink, else hardlink, else copy) and record each one."""
    raw = await request.body()
    body = await parse_body(request, LinkApplyRequest) if raw.strip() else LinkApplyRequest()
    report = await run_in_threadpool(
        _container(request).mapping_service().apply, request.path_params["app"], body.on_conflict
    )
    return JSONResponse(LinkApplyDTO.from_report(report).model_dump(mode="json"))


async def link_clean(request: Request) -> JSONResponse:
    """Remove the app's broken links (dangling symlinks) and forget vanished ones."""
    report = await run_in_threadpool(_container(request).mapping_service().clean, request.path_params["app"])
    return JSONResponse(LinkCleanDTO(app=report.app, removed=report.removed, forgotten=report.forgotten)
                        .model_dump(mode="json"))


routes = [
    api_route("/api/models/import", import_model, "POST", tags=TAGS, body=ImportModelRequest,
              response=ImportModelResponse, status=201, error_statuses=(400, 403, 409, 413, 422, 507)),
    api_route("/api/models/{name:path}/dependency-requirements", dependency_requirements, "GET", tags=TAGS,
              query=DependencyQuery, response=DependencyRequirementsDTO, error_statuses=(400, 404, 409, 422)),
    api_route("/api/links/{app}/preview", link_preview, "GET", tags=TAGS, response=LinkPreviewDTO,
              error_statuses=(400, 404, 422)),
    api_route("/api/links/{app}/apply", link_apply, "POST", tags=TAGS, body=LinkApplyRequest, response=LinkApplyDTO,
              error_statuses=(400, 404, 422, 507)),
    api_route("/api/links/{app}/clean", link_clean, "POST", tags=TAGS, response=LinkCleanDTO,
              error_statuses=(400, 404, 422)),
]
