"""Application errors. Entrypoints map them (and domain errors) to HTTP status and exit codes."""

from __future__ import annotations

import errno
import os


class ApplicationError(Exception):
    """Base class of use-case failures a user can act on."""


class NotFound(ApplicationError):
    """A named thing (model, profile, download) does not exist."""

    def __init__(self, message: str, suggestions: list[str] | tuple[str, ...] = ()) -> None:
        self.suggestions = tuple(suggestions)
        super().__init__(message)


class Conflict(ApplicationError):
    """The request contradicts current state (duplicate name, contract version mismatch...)."""


class InvalidRequest(ApplicationError):
    """The request is well-formed but cannot be served (wrong model type for the call...)."""


class NotInstalled(NotFound):
    """The model is known but not on disk."""


class SourceError(ApplicationError):
    """A source failed for one file or model; the next source may be tried."""

    fatal = False


class SourceNotConfigured(SourceError):
    """A source kind that needs configuration (e.g. MLX_MIRROR_BASE_URL) that is not set."""


class IntegrityError(SourceError):
    """Downloaded bytes do not match the expected size or sha256."""

    def __init__(self, path: str, expected: str, received: str) -> None:
        self.path = path
        self.expected = expected
        self.received = received
        super().__init__(f"{path}: expected {expected}, received {received}")


class DownloadCancelled(ApplicationError):
    """A pause or cancel request stopped a transfer."""


class Unavailable(ApplicationError):
    """A backend or resource is temporarily unable to serve (maps to 503/502)."""


class OutOfSpace(ApplicationError):
    """The disk (or quota) under a path mlxm writes is full (ENOSPC/EDQUOT): 507 / its own exit code.

    What was written so far stays (a pull resumes from it). `path`: where the write failed, when known;
    `server`: the disk is a database server's (PostgreSQL), not this machine's, so freeing local space is no help.
    """

    def __init__(self, message: str, path: str | None = None, *, server: bool = False) -> None:
        self.path = path
        self.server = server
        super().__init__(message)

    @classmethod
    def from_os_error(cls, exc: OSError, what: str = "") -> OutOfSpace:
        """`exc` (see `is_out_of_space`) as "<what>: <reason>: <path>"; the path is where the write failed."""
        path = os.fsdecode(exc.filename) if isinstance(exc.filename, (str, bytes, os.PathLike)) else None
        reason = exc.strerror or os.strerror(exc.errno or errno.ENOSPC)  # "No space left on device"
        words = ": ".join(part for part in (what, reason, path) if part)
        return cls(words, path=path)


# A full disk or quota: the one OS error that is neither the user's mistake nor a bug, wherever it is raised.
# Defined here, once, so adapters (which raise OutOfSpace) and entrypoints (which recognise raw ones) agree.
NO_SPACE_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT})


def is_out_of_space(exc: BaseException) -> bool:
    """`exc` is an OSError saying the disk (or the user's quota) under the path it wrote is full."""
    return isinstance(exc, OSError) and exc.errno in NO_SPACE_ERRNOS


class Unauthorized(ApplicationError):
    pass


class Forbidden(ApplicationError):
    pass


class BackendError(ApplicationError):
    """A routed (cloud) backend failed: connection error, 5xx or a malformed answer (502).

    `retryable` errors (connection, 5xx, timeout) may go to the mapping's fallback backend.
    """

    def __init__(self, message: str, *, backend: str = "", retryable: bool = True) -> None:
        self.backend = backend
        self.retryable = retryable
        super().__init__(message)


class BackendTimeout(BackendError):
    """A routed backend did not answer in time (504)."""


class BackendNotConfigured(BackendError):
    """A route points at a cloud backend that has no credential (502; the mapping's fallback applies)."""


class SecretUnreadable(Unavailable):
    """A stored secret cannot be decrypted (the secret key changed or the data is corrupt)."""
