"""Prometheus metrics for mlxm (prometheus-client), in a registry of their own.

One `PrometheusMetrics` per container. The edges feed it: the HTTP middleware (requests by route
and status), the audit-sink decorator (inference requests, tokens, durations), the local-generation
decorator (time to first token, decode tokens/s, queue depth), the downloader decorator (bytes,
failures). The pool is read at scrape time (loaded models, bytes, limit, evictions).

Label values are bounded: a model label is a name the library or catalog knows (its canonical
model id), else "other"; an HTTP endpoint label is a route template, else "other".
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from typing import Callable, Iterable, Iterator

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

from application.errors import DownloadCancelled
from domain.audit.model import AuditEntry

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
OTHER = "other"
_TTFT_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
_DURATION_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0)
_TPS_BUCKETS = (1, 5, 10, 25, 50, 100, 200, 400, 800, 1600, 3200)


class ModelLabels:
    """Maps a requested model name to a bounded label: its library/catalog id, else "other".

    `lookup(name)` returns the canonical id or None; answers are remembered (known names are
    bounded by the library and catalog; unknown ones in a small LRU so random names cost one lookup).
    """

    def __init__(self, lookup: Callable[[str], str | None], unknown_cache: int = 1024) -> None:
        self._lookup = lookup
        self._known: dict[str, str] = {}
        self._unknown: OrderedDict[str, None] = OrderedDict()
        self._unknown_cache = unknown_cache
        self._lock = threading.Lock()

    def __call__(self, name: str | None) -> str:
        if not name:
            return OTHER
        with self._lock:
            if name in self._known:
                return self._known[name]
            if name in self._unknown:
                self._unknown.move_to_end(name)
                return OTHER
        try:
            label = self._lookup(name)
        except Exception:  # noqa: BLE001 - a metrics label must never fail a request
            label = None
        with self._lock:
            if label:
                if len(self._known) < 100_000:
                    self._known[name] = label
                return label
            self._unknown[name] = None
            while len(self._unknown) > self._unknown_cache:
                self._unknown.popitem(last=False)
        return OTHER

    def forget(self) -> None:
        """Drop remembered answers (a model was deleted or added)."""
        with self._lock:
            self._known.clear()
            self._unknown.clear()


class PrometheusMetrics:
    def __init__(self, labels: ModelLabels, pool: Callable[[], object | None] = lambda: None) -> None:
        self.labels = labels
        self._pool = pool
        # `*_created` timestamp series double the output and no dashboard here reads them.
        from prometheus_client import disable_created_metrics

        disable_created_metrics()
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.http_requests = Counter(
            "mlxm_http_requests", "HTTP requests by method, route template and status", ["method", "endpoint", "status"],
            registry=r)
        self.http_duration = Histogram(
            "mlxm_http_request_duration_seconds", "HTTP request duration (to the end of the response body)",
            ["endpoint"], buckets=_DURATION_BUCKETS, registry=r)
        self.requests = Counter(
            "mlxm_inference_requests", "Inference requests by endpoint, model and status (success, error, cancelled)",
            ["endpoint", "model", "status"], registry=r)
        self.prompt_tokens = Counter("mlxm_prompt_tokens", "Prompt tokens processed", ["model"], registry=r)
        self.completion_tokens = Counter("mlxm_completion_tokens", "Completion tokens generated", ["model"], registry=r)
        self.duration = Histogram(
            "mlxm_inference_request_duration_seconds", "Inference request duration", ["endpoint", "model"],
            buckets=_DURATION_BUCKETS, registry=r)
        self.ttft = Histogram(
            "mlxm_time_to_first_token_seconds", "Time from a local generation request to its first token "
            "(includes a model load and queueing)", ["model"], buckets=_TTFT_BUCKETS, registry=r)
        self.decode_tps = Histogram(
            "mlxm_decode_tokens_per_second", "Decode speed of one local generation (tokens after the first / time)",
            ["model"], buckets=_TPS_BUCKETS, registry=r)
        self.queue_depth = Gauge(
            "mlxm_inference_queue_depth", "Local generations accepted and waiting for their first token", registry=r)
        self.in_flight = Gauge("mlxm_inference_in_flight", "Local generations running (queued or decoding)", registry=r)
        self.prompt_cache_lookups = Counter(
            "mlxm_prompt_cache_lookups", "Prompt-cache lookups by result (hit, miss), from the chunks' cached_tokens "
            "(absent until the engine reports it)", ["result"], registry=r)
        self.prompt_cache_reused_tokens = Counter(
            "mlxm_prompt_cache_reused_tokens", "Prompt tokens served from the prompt cache", registry=r)
        self.download_bytes = Counter("mlxm_download_bytes", "Bytes received by model downloads", registry=r)
        self.download_failures = Counter(
            "mlxm_download_failures", "Failed file transfers by error type", ["reason"], registry=r)
        r.register(_PoolCollector(self))

    # -- feeding -------------------------------------------------------------------------------
    def observe_http(self, method: str, endpoint: str, status: int, seconds: float) -> None:
        self.http_requests.labels(method, endpoint, str(status)).inc()
        self.http_duration.labels(endpoint).observe(seconds)

    def observe_inference(self, entry: AuditEntry) -> None:
        model = self.labels(entry.model)
        self.requests.labels(entry.endpoint, model, entry.status.value).inc()
        if entry.prompt_tokens:
            self.prompt_tokens.labels(model).inc(entry.prompt_tokens)
        if entry.completion_tokens:
            self.completion_tokens.labels(model).inc(entry.completion_tokens)
        self.duration.labels(entry.endpoint, model).observe(entry.duration_ms / 1000)

    def observe_prompt_cache(self, hit: bool, reused_tokens: int = 0) -> None:
        """One generation's prompt-cache lookup (fed from chunks' `cached_tokens` once the engine reports it)."""
        self.prompt_cache_lookups.labels("hit" if hit else "miss").inc()
        if reused_tokens:
            self.prompt_cache_reused_tokens.inc(reused_tokens)

    def render(self) -> bytes:
        return generate_latest(self.registry)

    def pool(self):
        return self._pool()


class _PoolCollector:
    """Read at scrape time: the pool's own state is the truth (no second bookkeeping to drift)."""

    def __init__(self, metrics: PrometheusMetrics) -> None:
        self._metrics = metrics

    def describe(self):
        return []

    def collect(self) -> Iterator:
        pool = self._metrics.pool()
        if pool is None:
            return
        infos = list(pool.loaded())
        count = GaugeMetricFamily("mlxm_loaded_models", "Models loaded in the pool")
        count.add_metric([], len(infos))
        yield count
        per_model = GaugeMetricFamily("mlxm_loaded_model_bytes", "Weight bytes of each loaded model", labels=["model"])
        for info in infos:
            per_model.add_metric([self._metrics.labels(info.model_id)], info.size_bytes)
        yield per_model
        total = GaugeMetricFamily("mlxm_loaded_bytes", "Weight bytes of all loaded models")
        total.add_metric([], sum(info.size_bytes for info in infos))
        yield total
        limits = pool.limits
        limit = GaugeMetricFamily("mlxm_memory_limit_bytes", "The pool's memory limit (0 = none)")
        limit.add_metric([], limits.max_memory_bytes)
        yield limit
        max_models = GaugeMetricFamily("mlxm_max_models", "The pool's model limit")
        max_models.add_metric([], limits.max_models)
        yield max_models
        evictions = CounterMetricFamily("mlxm_model_evictions", "Models unloaded to make room or by the idle TTL")
        evictions.add_metric([], getattr(pool, "evictions", 0))
        yield evictions


class MeteredAuditSink:
    """An AuditSink decorator: every finished inference request also moves the counters."""

    def __init__(self, inner, metrics: PrometheusMetrics) -> None:
        self._inner = inner
        self._metrics = metrics

    def record(self, entry: AuditEntry) -> None:
        try:
            self._metrics.observe_inference(entry)
        finally:
            self._inner.record(entry)

    def __getattr__(self, name: str):
        return getattr(self._inner, name)


class TimedLocalGeneration:
    """A LocalGeneration decorator: time to first token, decode tokens/s, queue depth."""

    def __init__(self, inner, metrics: PrometheusMetrics) -> None:
        self._inner = inner
        self._metrics = metrics

    def generate(self, model: str, request) -> Iterator:
        return self._timed(model, self._inner.generate(model, request))

    def _timed(self, model: str, chunks: Iterable) -> Iterator:
        m = self._metrics
        started = time.perf_counter()
        first_at: float | None = None
        first_tokens = tokens = 0
        cached: int | None = None  # prompt tokens the engine reused, once its chunks report `cached_tokens`
        m.in_flight.inc()
        m.queue_depth.inc()
        iterator = iter(chunks)
        try:
            for chunk in iterator:
                now = time.perf_counter()
                tokens = max(tokens, chunk.completion_tokens)
                reported = getattr(chunk, "cached_tokens", None)
                if isinstance(reported, int):
                    cached = max(cached or 0, reported)
                if first_at is None:
                    first_at, first_tokens = now, max(tokens, 1)
                    m.queue_depth.dec()
                    m.ttft.labels(m.labels(model)).observe(now - started)
                yield chunk
        finally:
            if first_at is None:
                m.queue_depth.dec()
            elif tokens > first_tokens:
                elapsed = time.perf_counter() - first_at
                if elapsed > 0:
                    m.decode_tps.labels(m.labels(model)).observe((tokens - first_tokens) / elapsed)
            m.in_flight.dec()
            if cached is not None:
                m.observe_prompt_cache(cached > 0, cached)
            close = getattr(iterator, "close", None)
            if close is not None:
                close()  # stop the engine's generation with the client


class MeteredDownloader:
    """A ModelDownloader decorator: bytes received (not those resumed from disk) and failed transfers."""

    def __init__(self, inner, metrics: PrometheusMetrics) -> None:
        self._inner = inner
        self._metrics = metrics

    def list_files(self, source, revision, staging):
        return self._inner.list_files(source, revision, staging)

    def download_from_source(self, source, file, progress):
        try:
            last = file.dest.stat().st_size if file.dest.exists() else 0
        except OSError:
            last = 0
        seen = {"last": last}

        def counting(path: str, done: int, total: int | None) -> None:
            if done > seen["last"]:
                self._metrics.download_bytes.inc(done - seen["last"])
            seen["last"] = done  # a restart from 0 (no range support) counts again from there
            progress(path, done, total)

        try:
            return self._inner.download_from_source(source, file, counting)
        except DownloadCancelled:
            raise  # a pause or cancel is not a failure
        except Exception as exc:
            self._metrics.download_failures.labels(type(exc).__name__).inc()
            raise

    def __getattr__(self, name: str):
        return getattr(self._inner, name)
