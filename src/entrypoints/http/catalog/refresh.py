"""The server's periodic refresh of the signed remote catalog (issue 17).

Refreshes run in a worker thread, and requests keep reading the catalog in use while one runs:
a slow or hanging catalog server delays only the next catalog, never a request.
"""

from __future__ import annotations

import anyio
import structlog
from starlette.concurrency import run_in_threadpool

log = structlog.get_logger("mlxm.catalog")


def remote_catalog(container):
    provider = getattr(container, "catalog_provider", None)
    catalog = provider() if provider is not None else None
    return catalog if callable(getattr(catalog, "refresh", None)) else None


def prepare(container) -> None:
    """Before start-up: the server never fetches on a request (only in the background)."""
    remote = remote_catalog(container)
    if remote is not None:
        remote.fetch_when_stale = False


async def refresh_periodically(container, interval_seconds: float) -> None:
    remote = remote_catalog(container)
    if remote is None or interval_seconds <= 0:
        return
    from domain.catalog.signed import CatalogRefused

    while True:
        try:
            result = await run_in_threadpool(remote.refresh)
            log.info("catalog refreshed", sequence=result.sequence, changed=result.changed)
        except CatalogRefused as exc:
            log.warning("remote catalog refused; keeping the catalog in use", reason=exc.reason)
        except Exception as exc:  # noqa: BLE001 - the next round may succeed; the server keeps serving
            log.warning("catalog refresh failed", error=f"{type(exc).__name__}: {exc}")
        await anyio.sleep(interval_seconds)
