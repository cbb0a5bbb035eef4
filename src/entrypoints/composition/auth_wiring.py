"""Factories the container uses for the auth / routing / audit area."""

from __future__ import annotations

from typing import TYPE_CHECKING

from application.audit.service import AuditService
from application.routing.service import InferenceServiceGeneration, RequestContext, RoutedInferenceService

if TYPE_CHECKING:  # imported when first built: commands that never touch secrets or audit start faster
    from adapters.fernet.secrets import FernetSecretCipher
    from adapters.threads.audit_writer import ThreadedAuditWriter


def secret_cipher(settings) -> FernetSecretCipher:
    from adapters.fernet.secrets import FernetSecretCipher

    key = settings.manager.secret_key
    return FernetSecretCipher(key=key.get_secret_value() if key else None, home=settings.manager.home)


def web_session_store(settings):
    """Web UI sessions in `<home>/sessions.sqlite` (hashed ids, sealed keys, expiry): a restart keeps logins."""
    from adapters.sqlite.web_sessions import SqliteWebSessionStore

    return SqliteWebSessionStore(settings.manager.home / "sessions.sqlite")


def audit_sink(audit: AuditService) -> ThreadedAuditWriter:
    """Batched writes on a background thread, off the request path. (A container whose unit of work is
    not thread-safe, like the tests' in-memory one, overrides `audit_sink` with an ImmediateAuditSink.)"""
    from adapters.threads.audit_writer import ThreadedAuditWriter

    return ThreadedAuditWriter(audit.write, cleanup=audit.cleanup)


def cloud_runtimes(timeout: float):
    from adapters.cloud.http_runtime import HttpCloudRuntimeFactory  # httpx only when a server or route needs it

    return HttpCloudRuntimeFactory(timeout=timeout)


def open_area(container) -> None:
    """Server start-up: start the audit writer, whose first task is the retention cleanup."""
    start = getattr(container.audit_sink(), "start", None)
    if callable(start):
        start()


def close_area(container) -> None:
    """Server shutdown: store the queued audit rows and close cloud connections."""
    for name in ("audit_sink", "cloud_runtimes"):
        provider = getattr(container, name, None)
        close = getattr(provider() if provider is not None else None, "close", None)
        if callable(close):
            close()
            reset = getattr(provider, "reset", None)
            if callable(reset):  # a later app on the same container gets fresh instances
                reset()


def local_generation(container):
    """The local inference path, if the runtime area registered an `inference_service`."""
    provider = getattr(container, "inference_service", None)
    return InferenceServiceGeneration(provider()) if provider is not None else None


def routed_inference_service(container, router) -> RoutedInferenceService:
    from entrypoints.request_context import current_request_context

    provider = getattr(container, "inference_service", None)
    return RoutedInferenceService(provider() if provider is not None else None, router, current_request_context)


__all__ = ["RequestContext", "audit_sink", "local_generation", "routed_inference_service", "secret_cipher"]
