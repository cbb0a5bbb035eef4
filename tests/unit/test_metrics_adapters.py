"""The metering decorators: download bytes (not those resumed from disk), failures, bounded labels."""

from pathlib import Path

import pytest

from adapters.prometheus.metrics import MeteredDownloader, ModelLabels, PrometheusMetrics
from application.errors import DownloadCancelled
from application.downloads.ports import RemoteFile


class _Inner:
    def __init__(self, steps, error=None):
        self.steps, self.error = steps, error

    def download_from_source(self, source, file, progress):
        for done in self.steps:
            progress(file.path, done, 100)
        if self.error:
            raise self.error
        return file.dest


def _file(tmp_path: Path, on_disk: int) -> RemoteFile:
    dest = tmp_path / "w.part"
    if on_disk:
        dest.write_bytes(b"x" * on_disk)
    return RemoteFile("w.bin", 100, None, "a" * 40, dest)


def test_resumed_bytes_are_not_counted_and_failures_are(tmp_path):
    metrics = PrometheusMetrics(ModelLabels(lambda name: None))
    seen = []
    MeteredDownloader(_Inner([40, 70, 100]), metrics).download_from_source(
        None, _file(tmp_path, 30), lambda *a: seen.append(a[1]))
    assert seen == [40, 70, 100]
    assert metrics.registry.get_sample_value("mlxm_download_bytes_total") == 70
    (tmp_path / "x").mkdir()
    with pytest.raises(OSError):
        MeteredDownloader(_Inner([10], OSError("reset")), metrics).download_from_source(
            None, _file(tmp_path / "x", 0), lambda *a: None)
    assert metrics.registry.get_sample_value("mlxm_download_failures_total", {"reason": "OSError"}) == 1
    with pytest.raises(DownloadCancelled):
        MeteredDownloader(_Inner([], DownloadCancelled("paused")), metrics).download_from_source(
            None, _file(tmp_path, 0), lambda *a: None)
    assert metrics.registry.get_sample_value("mlxm_download_failures_total", {"reason": "DownloadCancelled"}) is None


def test_model_labels_are_bounded_and_canonical():
    calls = []

    def lookup(name):
        calls.append(name)
        return {"q3": "qwen3-4b", "qwen3-4b": "qwen3-4b"}.get(name)

    labels = ModelLabels(lookup, unknown_cache=2)
    assert labels("q3") == "qwen3-4b" and labels("q3") == "qwen3-4b"
    assert [labels(f"random-{i}") for i in range(5)] == ["other"] * 5
    assert labels("random-4") == "other"
    assert calls.count("q3") == 1 and calls.count("random-4") == 1  # remembered
    assert labels(None) == "other"


def test_prompt_cache_metrics_follow_the_chunks_cached_tokens():
    from dataclasses import dataclass

    from adapters.prometheus.metrics import TimedLocalGeneration

    @dataclass
    class Chunk:
        text: str
        completion_tokens: int
        cached_tokens: int | None = None

    class Local:
        def __init__(self, chunks):
            self.chunks = chunks

        def generate(self, model, request):
            return iter(self.chunks)

    metrics = PrometheusMetrics(ModelLabels(lambda name: name))
    get = metrics.registry.get_sample_value
    list(TimedLocalGeneration(Local([Chunk("a", 1), Chunk("b", 2)]), metrics).generate("m", None))
    assert get("mlxm_prompt_cache_lookups_total", {"result": "miss"}) is None  # no report, no lookup counted
    list(TimedLocalGeneration(Local([Chunk("a", 1, 0), Chunk("b", 2, 0)]), metrics).generate("m", None))
    list(TimedLocalGeneration(Local([Chunk("a", 1, 12), Chunk("b", 2, 12)]), metrics).generate("m", None))
    assert get("mlxm_prompt_cache_lookups_total", {"result": "miss"}) == 1
    assert get("mlxm_prompt_cache_lookups_total", {"result": "hit"}) == 1
    assert get("mlxm_prompt_cache_reused_tokens_total") == 12
    assert get("mlxm_time_to_first_token_seconds_count", {"model": "m"}) == 3
