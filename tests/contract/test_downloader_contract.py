"""One contract for the `ModelDownloader` port, run against the fake and the real HuggingFaceDownloader.

The real adapter talks to the loopback hub (tests/support/fake_hub.py) through the real
huggingface_hub client; the fake keeps its repos in memory.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

os.environ.setdefault("HF_HUB_DISABLE_XET", "1")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")

import pytest

from application.errors import DownloadCancelled, SourceError, SourceNotConfigured
from application.downloads.ports import ModelDownloader, RemoteFile
from domain.catalog.model import ModelSource
from domain.enums import SourceKind

CONFIG = b'{"model_type": "llama"}'
WEIGHTS = os.urandom(200_000)
HF = ModelSource(SourceKind.HUGGINGFACE_REPO, "org/contract")
MIRROR = ModelSource(SourceKind.HTTP_MIRROR, "org/contract")


@dataclass
class Subject:
    downloader: ModelDownloader
    add_repo: Callable[[str, dict[str, bytes]], str]
    bytes_served: Callable[[str], int]
    unconfigured_mirror: ModelDownloader
    extra: dict = field(default_factory=dict)


def _fake_subject() -> Subject:
    from tests.support.fake_downloader import FakeDownloader

    fake = FakeDownloader(chunk_size=8192, lfs_threshold=1024)
    unconfigured = FakeDownloader()
    unconfigured.mirror_configured = False
    return Subject(fake, fake.add_repo, lambda p: fake.served.get(p, 0), unconfigured)


@pytest.fixture(params=["fake", "huggingface"])
def subject(request):
    if request.param == "fake":
        yield _fake_subject()
        return
    from adapters.downloads.dispatch import SourceDispatchingDownloader
    from adapters.huggingface import HuggingFaceDownloader
    from adapters.mirror import HttpMirrorDownloader
    from tests.support.fake_hub import FakeHub

    with FakeHub() as hub:
        def by_kind(mirror_url):
            return SourceDispatchingDownloader({
                SourceKind.HUGGINGFACE_REPO: HuggingFaceDownloader(endpoint=hub.url, backoff_seconds=0.01),
                SourceKind.HTTP_MIRROR: HttpMirrorDownloader(base_url=lambda: mirror_url, backoff_seconds=0.01),
            })

        old = os.environ.pop("MLX_MIRROR_BASE_URL", None)
        try:
            yield Subject(
                by_kind(f"{hub.url}/mirror"),
                lambda repo, files: hub.add_repo(repo, files),
                lambda path: hub.bytes_served.get(f"org/contract/{path}", 0),
                by_kind(None),
                {"hub": hub},
            )
        finally:
            if old is not None:
                os.environ["MLX_MIRROR_BASE_URL"] = old


def _noop(path: str, done: int, total: int | None) -> None:
    return None


def test_list_resolves_revision_to_a_commit_with_sizes_and_sha256(subject: Subject, tmp_path: Path) -> None:
    sha = subject.add_repo("org/contract", {"config.json": CONFIG, "model.safetensors": WEIGHTS})
    listing = subject.downloader.list_files(HF, None, tmp_path)
    assert listing.revision == sha and len(sha) == 40 and listing.repo_id == "org/contract"
    by_path = {f.path: f for f in listing.files}
    assert set(by_path) == {"config.json", "model.safetensors"}
    assert by_path["model.safetensors"].size == len(WEIGHTS)
    assert by_path["model.safetensors"].sha256 == hashlib.sha256(WEIGHTS).hexdigest()
    assert by_path["config.json"].size == len(CONFIG)
    assert all(f.revision == sha for f in listing.files)
    # A pinned sha lists the same commit.
    assert subject.downloader.list_files(HF, sha, tmp_path).revision == sha


def test_unknown_repo_and_revision_are_source_errors(subject: Subject, tmp_path: Path) -> None:
    subject.add_repo("org/contract", {"config.json": CONFIG})
    with pytest.raises(SourceError):
        subject.downloader.list_files(ModelSource(SourceKind.HUGGINGFACE_REPO, "org/nope"), None, tmp_path)
    with pytest.raises(SourceError):
        subject.downloader.list_files(HF, "no-such-branch", tmp_path)


def test_download_writes_exact_bytes_and_reports_progress(subject: Subject, tmp_path: Path) -> None:
    subject.add_repo("org/contract", {"config.json": CONFIG, "model.safetensors": WEIGHTS})
    file = next(f for f in subject.downloader.list_files(HF, None, tmp_path).files if f.path == "model.safetensors")
    seen: list[int] = []
    path = subject.downloader.download_from_source(HF, file, lambda p, done, total: seen.append(done))
    assert path == file.dest and path.read_bytes() == WEIGHTS
    assert seen[-1] == len(WEIGHTS) and seen == sorted(seen)


def test_download_resumes_from_bytes_on_disk(subject: Subject, tmp_path: Path) -> None:
    subject.add_repo("org/contract", {"model.safetensors": WEIGHTS})
    file = subject.downloader.list_files(HF, None, tmp_path).files[0]
    file.dest.parent.mkdir(parents=True, exist_ok=True)
    file.dest.write_bytes(WEIGHTS[:150_000])
    subject.downloader.download_from_source(HF, file, _noop)
    assert file.dest.read_bytes() == WEIGHTS
    assert subject.bytes_served("model.safetensors") == len(WEIGHTS) - 150_000


def test_progress_callback_can_stop_a_transfer_keeping_the_partial(subject: Subject, tmp_path: Path) -> None:
    subject.add_repo("org/contract", {"model.safetensors": WEIGHTS})
    file = subject.downloader.list_files(HF, None, tmp_path).files[0]

    def stop_midway(path: str, done: int, total: int | None) -> None:
        if done >= 50_000:
            raise DownloadCancelled("pause")

    with pytest.raises(DownloadCancelled):
        subject.downloader.download_from_source(HF, file, stop_midway)
    assert 50_000 <= file.dest.stat().st_size < len(WEIGHTS)


def test_unconfigured_mirror_raises_source_not_configured(subject: Subject, tmp_path: Path) -> None:
    sha = subject.add_repo("org/contract", {"config.json": CONFIG})
    file = RemoteFile("config.json", len(CONFIG), None, sha, tmp_path / "config.json.part")
    with pytest.raises(SourceNotConfigured):
        subject.unconfigured_mirror.download_from_source(MIRROR, file, _noop)
    # The product's failover moves on from it to the next source, which serves the file.
    from application.downloads.targets import is_fatal_source_error
    from domain.catalog.model import run_failover

    mirror_first = ModelSource(SourceKind.HTTP_MIRROR, "org/contract", priority=1)
    hf_next = ModelSource(SourceKind.HUGGINGFACE_REPO, "org/contract", priority=2)

    def attempt(source: ModelSource) -> ModelSource:
        downloader = subject.unconfigured_mirror if source is mirror_first else subject.downloader
        downloader.download_from_source(source, file, _noop)
        return source

    served_by, failures = run_failover([hf_next, mirror_first], attempt, is_fatal_source_error)
    assert served_by is hf_next
    assert [(s, type(e)) for s, e in failures] == [(mirror_first, SourceNotConfigured)]
    assert file.dest.read_bytes() == CONFIG


def test_configured_mirror_serves_the_same_bytes(subject: Subject, tmp_path: Path) -> None:
    sha = subject.add_repo("org/contract", {"model.safetensors": WEIGHTS})
    file = RemoteFile("model.safetensors", len(WEIGHTS), hashlib.sha256(WEIGHTS).hexdigest(), sha,
                      tmp_path / "m.part")
    subject.downloader.download_from_source(MIRROR, file, _noop)
    assert file.dest.read_bytes() == WEIGHTS
