"""Hub and mirror as two loopback servers: failover, wrong bytes, mirror checksums, compression (issue 17).

The hub is the fake Hugging Face Hub driven by the real `huggingface_hub` client; the mirror is a
separate plain HTTP server (`tests/support/mirror_server.py`).
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

os.environ.setdefault("HF_HUB_DISABLE_XET", "1")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")

import pytest

from adapters.catalog.embedded import StaticCatalogProvider
from adapters.system.clock import SystemClock
from adapters.downloads.dispatch import SourceDispatchingDownloader
from adapters.huggingface import HuggingFaceDownloader
from adapters.memory.repositories import InMemoryUnitOfWork
from adapters.mirror import HttpMirrorDownloader
from application.downloads.service import DownloadService
from adapters.filesystem.model_store import FilesystemModelStore
from domain.catalog.model import catalog_from_dict
from domain.enums import SourceKind
from domain.errors import NoSourceAvailable
from tests.support.fake_hub import FakeHub
from tests.support.mirror_server import MirrorServer, closed_port_url

REPO = "org/tiny"
CONFIG = b'{"model_type": "llama", "architectures": ["LlamaForCausalLM"]}'
# Compressible but not trivial: half random, half zeros.
WEIGHTS = os.urandom(300_000) + bytes(300_000)
HUB = f"huggingface_repo:{REPO}"
MIRROR = f"http_mirror:{REPO}"


@pytest.fixture
def hub():
    with FakeHub() as h:
        h.add_repo(REPO, {"config.json": CONFIG, "model.safetensors": WEIGHTS})
        yield h


@pytest.fixture
def mirror(hub):
    with MirrorServer() as m:
        m.add(REPO, hub.commit_sha(REPO), {"config.json": CONFIG, "model.safetensors": WEIGHTS})
        yield m


def catalog(hub_priority=10, mirror_priority=20, hub_fallback=True, mirror_fallback=True):
    return catalog_from_dict({"default_model": "tiny-v1", "models": [{
        "id": "tiny-v1", "type": "text-gen", "family": "llama", "aliases": ["tiny"], "sources": [
            {"kind": "huggingface_repo", "value": REPO, "priority": hub_priority, "allow_fallback": hub_fallback},
            {"kind": "http_mirror", "value": REPO, "priority": mirror_priority, "allow_fallback": mirror_fallback},
        ]}]})


def service(home: Path, hub_url: str, mirror_url: str | None, cat=None) -> DownloadService:
    downloader = SourceDispatchingDownloader({
        SourceKind.HUGGINGFACE_REPO: HuggingFaceDownloader(endpoint=hub_url, backoff_seconds=0.01, retries=1),
        SourceKind.HTTP_MIRROR: HttpMirrorDownloader(base_url=lambda: mirror_url, backoff_seconds=0.01, retries=1),
    })
    uow = InMemoryUnitOfWork()
    return DownloadService(lambda: uow, StaticCatalogProvider(cat or catalog()), downloader, SystemClock(),
                           FilesystemModelStore(home))


def sources_of(model) -> dict[str, str]:
    return {f.path: f.source for f in model.files}


def installed_bytes(model, path: str) -> bytes:
    return (Path(model.local_path) / path).read_bytes()


def test_the_mirror_is_down_so_the_hub_serves(hub, mirror, tmp_path) -> None:
    mirror.down = True
    model = service(tmp_path, hub.url, mirror.url, catalog(hub_priority=20, mirror_priority=10)).pull("tiny").model
    assert sources_of(model) == {"config.json": HUB, "model.safetensors": HUB}
    assert mirror.gets_for("model.safetensors")  # the mirror was tried first
    assert installed_bytes(model, "model.safetensors") == WEIGHTS


def test_the_hub_is_down_so_the_mirror_lists_and_serves(hub, mirror, tmp_path) -> None:
    mirror.publish_manifest(REPO, hub.commit_sha(REPO))
    model = service(tmp_path, closed_port_url(), mirror.url).pull("tiny").model
    assert sources_of(model) == {"config.json": MIRROR, "model.safetensors": MIRROR}
    assert model.revision == hub.commit_sha(REPO)
    assert installed_bytes(model, "model.safetensors") == WEIGHTS


def test_the_hub_is_down_and_the_mirror_has_no_listing_is_a_clear_error(hub, mirror, tmp_path) -> None:
    closed = closed_port_url()
    with pytest.raises(NoSourceAvailable) as err:
        service(tmp_path, closed, mirror.url).pull("tiny")
    message = str(err.value)
    assert f"{HUB}: {closed}" in message and "did not answer" in message
    assert f"{MIRROR}: the mirror publishes no manifest.json" in message


def test_no_fallback_on_the_first_source_stops_the_chain_with_a_clear_error(hub, mirror, tmp_path) -> None:
    mirror.publish_manifest(REPO, hub.commit_sha(REPO))
    closed = closed_port_url()
    with pytest.raises(NoSourceAvailable) as err:
        service(tmp_path, closed, mirror.url, catalog(hub_fallback=False)).pull("tiny")
    assert f"{HUB}: {closed} did not answer" in str(err.value)
    assert MIRROR not in str(err.value)
    assert mirror.requests == []  # the mirror was never asked


def test_wrong_bytes_from_the_mirror_are_refused_by_sha256_and_the_hub_serves(hub, mirror, tmp_path) -> None:
    mirror.corrupt("model.safetensors")
    model = service(tmp_path, hub.url, mirror.url, catalog(hub_priority=20, mirror_priority=10)).pull("tiny").model
    assert sources_of(model) == {"config.json": MIRROR, "model.safetensors": HUB}
    assert mirror.wire_bytes["model.safetensors"] == len(WEIGHTS)  # fetched, hashed, refused
    assert installed_bytes(model, "model.safetensors") == WEIGHTS


def test_a_mirror_manifest_never_outranks_the_hub_listing(hub, mirror, tmp_path) -> None:
    # A mirror first in priority that lists (and serves) other bytes: the hub's listing is the truth.
    sha = hub.commit_sha(REPO)
    evil = bytes(len(WEIGHTS))
    mirror.add(REPO, sha, {"config.json": CONFIG, "model.safetensors": evil})
    mirror.publish_manifest(REPO, sha)
    model = service(tmp_path, hub.url, mirror.url, catalog(hub_priority=20, mirror_priority=10)).pull("tiny").model
    assert sources_of(model)["model.safetensors"] == HUB
    assert installed_bytes(model, "model.safetensors") == WEIGHTS


def test_mirror_checksums_verify_files_the_hub_lists_without_a_sha256(hub, mirror, tmp_path) -> None:
    sha = hub.commit_sha(REPO)
    # config.json is a small non-LFS file: the hub lists no sha256 for it. A mirror checksum that
    # disagrees with the hub's bytes proves the checksum is used.
    mirror.publish_checksums(REPO, sha, {"config.json": "0" * 64,
                                         "model.safetensors": hashlib.sha256(WEIGHTS).hexdigest()})
    with pytest.raises(NoSourceAvailable, match="config.json: expected sha256 0000"):
        service(tmp_path / "a", hub.url, mirror.url, catalog(mirror_priority=30)).pull("tiny")

    mirror.publish_checksums(REPO, sha)
    model = service(tmp_path / "b", hub.url, mirror.url, catalog()).pull("tiny").model
    assert {f.path: f.sha256 for f in model.files}["config.json"] == hashlib.sha256(CONFIG).hexdigest()


@pytest.mark.parametrize("encoding", ["gzip", "zstd"])
def test_a_compressed_transfer_is_verified_on_the_decoded_bytes(hub, mirror, tmp_path, encoding) -> None:
    mirror.encoding = encoding
    model = service(tmp_path, hub.url, mirror.url, catalog(hub_priority=20, mirror_priority=10)).pull("tiny").model
    assert sources_of(model)["model.safetensors"] == MIRROR
    assert installed_bytes(model, "model.safetensors") == WEIGHTS
    assert mirror.wire_bytes["model.safetensors"] < len(WEIGHTS) * 0.7  # it travelled compressed
    assert encoding in mirror.gets_for("model.safetensors")[0]["Accept-Encoding"]


@pytest.mark.parametrize("encoding", ["gzip", "zstd"])
def test_a_compressed_transfer_cut_midway_resumes_with_a_plain_range(hub, mirror, tmp_path, encoding) -> None:
    mirror.encoding = encoding
    mirror.drop_after("model.safetensors", 120_000)  # wire bytes of the compressed body
    model = service(tmp_path, hub.url, mirror.url, catalog(hub_priority=20, mirror_priority=10)).pull("tiny").model
    assert sources_of(model)["model.safetensors"] == MIRROR
    assert installed_bytes(model, "model.safetensors") == WEIGHTS
    first, second = mirror.gets_for("model.safetensors")[:2]
    assert "Range" not in first and encoding in first["Accept-Encoding"]
    offset = int(second["Range"].removeprefix("bytes=").rstrip("-"))
    assert offset > 0 and second["Accept-Encoding"] == "identity"  # resumed from the decoded bytes
    # Only the remainder travelled again, not the whole file.
    assert mirror.wire_bytes["model.safetensors"] <= 120_000 + (len(WEIGHTS) - offset)


def test_mlxm_pull_reports_which_source_served_each_file(hub, mirror, tmp_path, monkeypatch) -> None:
    from click.testing import CliRunner
    from dependency_injector import providers

    from entrypoints.cli.main import cli
    from entrypoints.composition.container import Container
    from entrypoints.composition.settings import ManagerSettings, Settings

    mirror.corrupt("model.safetensors")  # the mirror serves config.json; the hub serves the weights
    monkeypatch.setenv("HF_ENDPOINT", hub.url)
    monkeypatch.setenv("MLX_MIRROR_BASE_URL", mirror.url)
    container = Container()
    container.settings.override(providers.Object(Settings(manager=ManagerSettings(home=tmp_path))))
    container.catalog_provider.override(providers.Object(StaticCatalogProvider(
        catalog(hub_priority=20, mirror_priority=10))))
    result = CliRunner().invoke(cli, ["pull", "tiny", "--quiet"], obj=container, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0].startswith("tiny-v1 installed at ")
    assert [line.split() for line in lines[1:]] == [
        ["config.json", str(len(CONFIG)), "B", "from", MIRROR],
        ["model.safetensors", "585.9", "KB", "from", HUB],
    ]


def test_check_updates_compares_with_the_hub_listing_not_a_mirror_manifest(hub, mirror, tmp_path) -> None:
    from application.downloads.updates import UpdateService

    downloads = service(tmp_path, hub.url, mirror.url, catalog(hub_priority=20, mirror_priority=10))
    downloads.pull("tiny")
    stale = "f" * 40  # a mirror that publishes a manifest for another revision
    mirror.add(REPO, stale, {"config.json": CONFIG, "model.safetensors": WEIGHTS})
    mirror.publish_manifest(REPO, stale)
    report = UpdateService(downloads, downloads._downloader).check_updates("tiny")[0]
    assert report.error is None and report.available_revision == hub.commit_sha(REPO)
    assert not report.update_available
