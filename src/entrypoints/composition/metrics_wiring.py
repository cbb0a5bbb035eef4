"""Factories the container uses for Prometheus metrics (kept here so container.py stays declarative)."""

from __future__ import annotations


def metrics(container):
    from adapters.prometheus.metrics import ModelLabels, PrometheusMetrics
    from application.errors import ApplicationError
    from domain.errors import DomainError

    def lookup(name: str) -> str | None:
        # The library first (its model ids are what users run), then the catalog's canonical id.
        try:
            return container.library_service().show(name).model_id
        except (ApplicationError, DomainError):
            pass
        try:
            return container.catalog_service().show(name).id
        except (ApplicationError, DomainError):
            return None

    def pool():
        provider = getattr(container, "model_pool", None)
        return provider() if provider is not None else None

    return PrometheusMetrics(ModelLabels(lookup), pool=pool)


# A CLI command's container has no metrics (`command_line_container`): the decorators are left out.
def metered_audit_sink(inner, metrics):
    if metrics is None:
        return inner
    from adapters.prometheus.metrics import MeteredAuditSink

    return MeteredAuditSink(inner, metrics)


def timed_local_generation(inner, metrics):
    if metrics is None:
        return inner
    from adapters.prometheus.metrics import TimedLocalGeneration

    return TimedLocalGeneration(inner, metrics) if inner is not None else None


def metered_downloader(inner, metrics):
    if metrics is None:
        return inner
    from adapters.prometheus.metrics import MeteredDownloader

    return MeteredDownloader(inner, metrics)
