"""The one place where domain and application errors become HTTP statuses and exit codes."""

from __future__ import annotations

import os
from dataclasses import dataclass

from application import errors as app
from application.catalog.ports import CatalogFetchFailed, KeyFileRefused
from domain import errors as dom
from domain.catalog.signed import CatalogRefused
from domain.paths import is_inside


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
    (app.OutOfSpace, ErrorMapping(507, "insufficient_storage", 10)),
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


def recognise(exc: BaseException) -> BaseException:
    """The error to map for `exc`: itself, or, when the map does not know it and a full disk caused it
    (a raw ENOSPC/EDQUOT OSError from any write: an import's copy, a link config, a database file), the
    `OutOfSpace` it stands for."""
    if mapping_for(exc) is not None:
        return exc
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, OSError) and app.is_out_of_space(current):
            return app.OutOfSpace.from_os_error(current)  # "No space left on device: <path>"
        current = current.__cause__ or current.__context__
    return exc


def message_for(exc: BaseException, home: str | None = None) -> str:
    """The user's message for a mapped error; a full disk also says what to do (`home`: MLX_MANAGER_HOME)."""
    if not isinstance(exc, app.OutOfSpace):
        return str(exc)
    if exc.server:
        advice = "free space on the database server's disk"
    elif home is None:
        advice = "free space under MLX_MANAGER_HOME, or point MLX_MANAGER_HOME at a disk with room"
    elif exc.path is not None and not is_inside(os.path.abspath(exc.path), os.path.abspath(home)):
        advice = "free space on that disk"  # e.g. `mlxm speak -o /elsewhere/out.wav`: not mlxm's folder
    else:
        advice = f"free space under MLX_MANAGER_HOME ({home}), or point MLX_MANAGER_HOME at a disk with room"
    return f"{exc}; {advice}"
