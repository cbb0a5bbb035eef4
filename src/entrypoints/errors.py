"""The one place where domain and application errors become HTTP statuses and exit codes."""

from __future__ import annotations

from dataclasses import dataclass

from application import errors as app
from application.catalog.ports import CatalogFetchFailed, KeyFileRefused
from domain import errors as dom
from domain.catalog.signed import CatalogRefused


@dataclass(frozen=True)
class ErrorMapping:
    status: int
    type: str
    exit_code: int


# Most specific first: the first isinstance match wins.
ERROR_MAP: list[tuple[type[BaseException], ErrorMapping]] = [
    (app.NotInstalled, ErrorMapping(404, "model_not_installed", 3)),
    (app.NotFound, ErrorMapping(404, "not_found", 3)),
    (dom.UnknownModel, ErrorMapping(404, "model_not_found", 3)),
    (app.Conflict, ErrorMapping(409, "conflict", 4)),
    (app.Unauthorized, ErrorMapping(401, "authentication_error", 5)),
    (app.Forbidden, ErrorMapping(403, "permission_error", 5)),
    (app.IntegrityError, ErrorMapping(502, "integrity_error", 6)),
    (CatalogRefused, ErrorMapping(502, "catalog_refused", 6)),
    (CatalogFetchFailed, ErrorMapping(502, "catalog_refused", 6)),
    (KeyFileRefused, ErrorMapping(400, "invalid_request_error", 2)),
    (app.SourceError, ErrorMapping(502, "source_error", 6)),
    (dom.NoSourceAvailable, ErrorMapping(502, "source_error", 6)),
    (app.BackendTimeout, ErrorMapping(504, "backend_timeout", 7)),
    (app.BackendError, ErrorMapping(502, "backend_error", 7)),
    (app.Unavailable, ErrorMapping(503, "unavailable", 7)),
    (app.DownloadCancelled, ErrorMapping(409, "cancelled", 8)),
    (dom.ProfileTypeMismatch, ErrorMapping(422, "invalid_request_error", 2)),
    (dom.InvalidParameter, ErrorMapping(422, "invalid_request_error", 2)),
    (dom.InvalidPattern, ErrorMapping(422, "invalid_request_error", 2)),
    (dom.IllegalTransition, ErrorMapping(409, "conflict", 4)),
    (app.InvalidRequest, ErrorMapping(400, "invalid_request_error", 2)),
    (dom.InvalidCanonicalId, ErrorMapping(422, "invalid_request_error", 2)),
    (dom.DomainError, ErrorMapping(400, "invalid_request_error", 2)),
    (app.ApplicationError, ErrorMapping(400, "invalid_request_error", 2)),
]


def mapping_for(exc: BaseException) -> ErrorMapping | None:
    for cls, mapping in ERROR_MAP:
        if isinstance(exc, cls):
            return mapping
    return None
