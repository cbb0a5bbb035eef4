"""The loopback hub (tests/support/fake_hub.py) speaks enough Hub protocol for the real client.

Every test drives the real ``huggingface_hub`` client (or a raw HTTP client) against a
``FakeHub`` on 127.0.0.1 with ``endpoint=`` passed explicitly and the cache in ``tmp_path``.
"""

from __future__ import annotations

import hashlib
import os
import threading
from pathlib import Path

os.environ.setdefault("HF_HUB_DISABLE_XET", "1")  # belt and braces: the hub never advertises Xet anyway
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")

import httpx
import pytest
from huggingface_hub import HfApi, hf_hub_download, snapshot_download
from huggingface_hub.errors import (
    EntryNotFoundError,
    GatedRepoError,
    HfHubHTTPError,
    LocalEntryNotFoundError,
    RepositoryNotFoundError,
    RevisionNotFoundError,
)

from tests.support.fake_hub import FakeHub, Fault, git_blob_sha1

CONFIG = b'{"model_type": "llama", "hidden_size": 64}'
WEIGHTS = bytes(range(256)) * 64  # 16 KiB -> LFS with the default 1 KiB threshold
TOKENIZER = b'{"version": "1.0"}'


@pytest.fixture
def hub():
    with FakeHub() as h:
        yield h


@pytest.fixture
def repo(hub: FakeHub) -> str:
    return hub.add_repo(
        "org/tiny",
        {"config.json": CONFIG, "model.safetensors": WEIGHTS, "tokenizer/tokenizer.json": TOKENIZER},
        tags=["mlx", "text-generation"],
        downloads=42,
    )


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# --------------------------------------------------------------------------- real client


def test_snapshot_download_gets_exact_bytes(hub: FakeHub, repo: str, tmp_path: Path) -> None:
    path = Path(snapshot_download("org/tiny", endpoint=hub.url, cache_dir=tmp_path))

    assert path.name == repo
    assert (path / "config.json").read_bytes() == CONFIG
    assert (path / "model.safetensors").read_bytes() == WEIGHTS
    assert (path / "tokenizer" / "tokenizer.json").read_bytes() == TOKENIZER
    # Cache layout: blobs named by ETag (sha256 for LFS, git sha1 otherwise), refs/main -> sha.
    storage = tmp_path / "models--org--tiny"
    assert (storage / "refs" / "main").read_text() == repo
    assert (storage / "blobs" / _sha256(WEIGHTS)).read_bytes() == WEIGHTS
    assert (storage / "blobs" / git_blob_sha1(CONFIG)).read_bytes() == CONFIG
    # The client walked the documented calls and never saw anything Xet.
    methods_paths = [(r.method, r.path.split("?")[0]) for r in hub.requests]
    assert ("GET", "/api/models/org/tiny/revision/main") in methods_paths
    assert ("GET", f"/api/models/org/tiny/tree/{repo}") in methods_paths
    assert ("HEAD", f"/org/tiny/resolve/{repo}/model.safetensors") in methods_paths
    assert hub.bytes_served["org/tiny/model.safetensors"] == len(WEIGHTS)


def test_hf_hub_download_single_file_and_entry_not_found(hub: FakeHub, repo: str, tmp_path: Path) -> None:
    got = hf_hub_download("org/tiny", "tokenizer/tokenizer.json", endpoint=hub.url, cache_dir=tmp_path)
    assert Path(got).read_bytes() == TOKENIZER
    with pytest.raises(EntryNotFoundError):
        hf_hub_download("org/tiny", "missing.bin", endpoint=hub.url, cache_dir=tmp_path)
    with pytest.raises(RevisionNotFoundError):
        hf_hub_download("org/tiny", "config.json", revision="nope", endpoint=hub.url, cache_dir=tmp_path)


def test_tree_and_model_info_report_sizes_and_lfs_sha256(hub: FakeHub, repo: str) -> None:
    api = HfApi(endpoint=hub.url)

    files = {f.path: f for f in api.list_repo_tree("org/tiny", recursive=True) if hasattr(f, "size")}
    assert set(files) == {"config.json", "model.safetensors", "tokenizer/tokenizer.json"}
    assert files["model.safetensors"].size == len(WEIGHTS)
    assert files["model.safetensors"].lfs is not None
    assert files["model.safetensors"].lfs.sha256 == _sha256(WEIGHTS)
    assert files["model.safetensors"].lfs.size == len(WEIGHTS)
    assert files["config.json"].lfs is None
    assert files["config.json"].blob_id == git_blob_sha1(CONFIG)
    top = {f.path for f in api.list_repo_tree("org/tiny")}
    assert top == {"config.json", "model.safetensors", "tokenizer"}

    info = api.model_info("org/tiny", files_metadata=True)
    assert info.id == "org/tiny" and info.sha == repo
    assert info.tags == ["mlx", "text-generation"] and info.downloads == 42
    sib = {s.rfilename: s for s in info.siblings}
    assert sib["model.safetensors"].size == len(WEIGHTS)
    assert sib["model.safetensors"].lfs.sha256 == _sha256(WEIGHTS)
    assert sib["config.json"].size == len(CONFIG) and sib["config.json"].lfs is None
    # Like the real Hub, sizes only come with files_metadata=True.
    assert {s.size for s in api.model_info("org/tiny").siblings} == {None}


def test_tree_pagination_follows_link_header(tmp_path: Path) -> None:
    with FakeHub(tree_page_size=2) as hub:
        files = {f"shard-{i}.bin": bytes([i]) * 10 for i in range(5)}
        sha = hub.add_repo("org/many", files)
        listed = [f.path for f in HfApi(endpoint=hub.url).list_repo_tree("org/many", revision=sha)]
        assert listed == sorted(files)
        assert len(hub.requests_for("/tree/")) == 3
        path = Path(snapshot_download("org/many", endpoint=hub.url, cache_dir=tmp_path))
        assert {p.name: p.read_bytes() for p in path.iterdir()} == files


def test_search_filters_and_limits(hub: FakeHub) -> None:
    hub.add_repo("mlx-community/Llama-3-8B-4bit", {"config.json": b"{}"}, tags=["mlx"], downloads=10)
    hub.add_repo("mlx-community/Qwen-0.5B", {"config.json": b"{}"}, tags=["mlx"], downloads=99)
    hub.add_repo("other/llama-gguf", {"config.json": b"{}"}, tags=["gguf"], downloads=500)
    api = HfApi(endpoint=hub.url)

    assert [m.id for m in api.list_models(search="llama")] == ["mlx-community/Llama-3-8B-4bit", "other/llama-gguf"]
    assert [m.id for m in api.list_models(author="mlx-community", sort="downloads")] == [
        "mlx-community/Qwen-0.5B",
        "mlx-community/Llama-3-8B-4bit",
    ]
    assert [m.id for m in api.list_models(filter="mlx", sort="downloads", limit=1)] == ["mlx-community/Qwen-0.5B"]


def test_unknown_repo_raises_repository_not_found(hub: FakeHub, tmp_path: Path) -> None:
    with pytest.raises(RepositoryNotFoundError):
        snapshot_download("org/does-not-exist", endpoint=hub.url, cache_dir=tmp_path)
    with pytest.raises(RepositoryNotFoundError):
        HfApi(endpoint=hub.url).model_info("org/does-not-exist")
    with pytest.raises(RepositoryNotFoundError):
        hf_hub_download("org/does-not-exist", "config.json", endpoint=hub.url, cache_dir=tmp_path)


def test_second_add_repo_makes_new_commit_and_keeps_old_one(hub: FakeHub, repo: str, tmp_path: Path) -> None:
    new_weights = WEIGHTS[::-1]
    sha2 = hub.add_repo("org/tiny", {"config.json": CONFIG, "model.safetensors": new_weights})
    assert sha2 != repo and len(sha2) == 40 and int(sha2, 16) >= 0

    api = HfApi(endpoint=hub.url)
    assert api.model_info("org/tiny").sha == sha2
    new_path = Path(snapshot_download("org/tiny", endpoint=hub.url, cache_dir=tmp_path))
    assert new_path.name == sha2
    assert (new_path / "model.safetensors").read_bytes() == new_weights
    assert not (new_path / "tokenizer").exists()  # the new commit replaced the file set

    old_path = Path(snapshot_download("org/tiny", revision=repo, endpoint=hub.url, cache_dir=tmp_path))
    assert (old_path / "model.safetensors").read_bytes() == WEIGHTS
    assert (old_path / "tokenizer" / "tokenizer.json").read_bytes() == TOKENIZER


def test_gated_repo_needs_a_known_token(hub: FakeHub, tmp_path: Path) -> None:
    hub.add_repo("org/gated", {"config.json": CONFIG}, gated="manual")
    with pytest.raises(GatedRepoError):
        hf_hub_download("org/gated", "config.json", endpoint=hub.url, cache_dir=tmp_path, token=False)
    hub.tokens.add("hf_secret")
    got = hf_hub_download("org/gated", "config.json", endpoint=hub.url, cache_dir=tmp_path, token="hf_secret")
    assert Path(got).read_bytes() == CONFIG


# --------------------------------------------------------------------------- raw HTTP: ranges and mirror


def test_range_requests_return_206_with_exact_bytes(hub: FakeHub, repo: str) -> None:
    url = f"{hub.url}/org/tiny/resolve/main/model.safetensors"
    with httpx.Client() as client:
        head = client.head(url)
        assert head.status_code == 200
        assert head.headers["ETag"] == f'"{_sha256(WEIGHTS)}"'
        assert head.headers["X-Linked-Etag"] == f'"{_sha256(WEIGHTS)}"'
        assert head.headers["X-Linked-Size"] == str(len(WEIGHTS))
        assert head.headers["X-Repo-Commit"] == repo
        assert head.headers["Accept-Ranges"] == "bytes"
        assert not any(k.lower().startswith("x-xet") for k in head.headers)

        tail = client.get(url, headers={"Range": "bytes=1000-"})
        assert tail.status_code == 206
        assert tail.content == WEIGHTS[1000:]
        assert tail.headers["Content-Range"] == f"bytes 1000-{len(WEIGHTS) - 1}/{len(WEIGHTS)}"

        mid = client.get(url, headers={"Range": "bytes=10-19"})
        assert mid.status_code == 206 and mid.content == WEIGHTS[10:20]
        assert mid.headers["Content-Range"] == f"bytes 10-19/{len(WEIGHTS)}"

        assert client.get(url, headers={"Range": f"bytes={len(WEIGHTS)}-"}).status_code == 416

        small = client.head(f"{hub.url}/org/tiny/resolve/{repo}/config.json")
        assert small.headers["ETag"] == f'"{git_blob_sha1(CONFIG)}"'
        assert "X-Linked-Etag" not in small.headers

    ranges = [r.headers.get("range") for r in hub.requests_for("model.safetensors", method="GET")]
    assert ranges == ["bytes=1000-", "bytes=10-19", f"bytes={len(WEIGHTS)}-"]


def test_mirror_serves_same_bytes_with_ranges(hub: FakeHub, repo: str) -> None:
    with httpx.Client() as client:
        full = client.get(f"{hub.url}/mirror/org/tiny/model.safetensors")
        assert full.status_code == 200 and full.content == WEIGHTS
        part = client.get(f"{hub.url}/mirror/org/tiny/model.safetensors", headers={"Range": "bytes=4096-"})
        assert part.status_code == 206 and part.content == WEIGHTS[4096:]
        nested = client.get(f"{hub.url}/mirror/org/tiny/tokenizer/tokenizer.json")
        assert nested.content == TOKENIZER
        assert client.get(f"{hub.url}/mirror/org/tiny/nope.bin").status_code == 404


def test_disk_backed_files_stream_with_ranges(hub: FakeHub, tmp_path: Path) -> None:
    blob = tmp_path / "big.bin"
    payload = os.urandom(3 * 1024 * 1024 + 17)
    blob.write_bytes(payload)
    sha = hub.add_repo("org/disk", {"config.json": CONFIG, "model.safetensors": blob})
    assert hub.file("org/disk", "model.safetensors").data is None  # streamed, not held in memory
    with httpx.Client() as client:
        part = client.get(f"{hub.url}/org/disk/resolve/{sha}/model.safetensors", headers={"Range": "bytes=1000000-"})
    assert part.status_code == 206 and part.content == payload[1_000_000:]

    path = Path(snapshot_download("org/disk", endpoint=hub.url, cache_dir=tmp_path / "cache"))
    assert (path / "model.safetensors").read_bytes() == payload
    tree = {f.path: f for f in HfApi(endpoint=hub.url).list_repo_tree("org/disk")}
    assert tree["model.safetensors"].lfs.sha256 == _sha256(payload)

    # Faults apply to disk-backed files too (they then leave the zero-copy path).
    hub.inject("org/disk/model.safetensors", Fault.corrupt(times=1))
    with httpx.Client() as client:
        bad = client.get(f"{hub.url}/mirror/org/disk/model.safetensors", headers={"Range": "bytes=-100"})
    assert bad.status_code == 206 and len(bad.content) == 100 and bad.content != payload[-100:]
    assert bytes(b ^ 0xFF for b in bad.content) == payload[-100:]

    sha2 = hub.add_file_from_disk("org/disk", "extra/more.bin", blob)
    assert {f.path for f in HfApi(endpoint=hub.url).list_repo_tree("org/disk", revision=sha2, recursive=True)} == {
        "config.json", "model.safetensors", "extra", "extra/more.bin"
    }


# --------------------------------------------------------------------------- faults


def test_corrupt_fault_serves_wrong_bytes_of_same_length(hub: FakeHub, repo: str, tmp_path: Path) -> None:
    hub.inject("*.safetensors", Fault.corrupt())
    with httpx.Client() as client:
        resp = client.get(f"{hub.url}/org/tiny/resolve/main/model.safetensors")
    assert resp.headers["ETag"] == f'"{_sha256(WEIGHTS)}"'  # still advertises the genuine checksum
    assert len(resp.content) == len(WEIGHTS) and resp.content != WEIGHTS
    assert all(a != b for a, b in zip(resp.content[:256], WEIGHTS[:256]))

    # The real client checks the length only, so it accepts the corrupt bytes: verifying is mlxm's job.
    got = Path(hf_hub_download("org/tiny", "model.safetensors", endpoint=hub.url, cache_dir=tmp_path))
    data = got.read_bytes()
    assert len(data) == len(WEIGHTS) and _sha256(data) != _sha256(WEIGHTS)
    assert got.resolve().name == _sha256(WEIGHTS)  # stored under the genuine sha256 name

    hub.clear_faults()
    with httpx.Client() as client:
        assert client.get(f"{hub.url}/mirror/org/tiny/model.safetensors").content == WEIGHTS


def test_drop_fault_truncates_body(hub: FakeHub, repo: str) -> None:
    hub.inject("model.safetensors", Fault.drop_connection_after(5000, times=1))
    url = f"{hub.url}/org/tiny/resolve/main/model.safetensors"
    received = bytearray()
    with httpx.Client() as client:
        with pytest.raises(httpx.RemoteProtocolError):
            with client.stream("GET", url) as resp:
                assert resp.headers["Content-Length"] == str(len(WEIGHTS))
                for chunk in resp.iter_raw():
                    received += chunk
        assert bytes(received) == WEIGHTS[:5000]
        # times=1: the next request is served whole.
        assert client.get(url).content == WEIGHTS
    assert hub.bytes_served["org/tiny/model.safetensors"] == 5000 + len(WEIGHTS)


def test_client_resumes_with_range_after_drop(hub: FakeHub, tmp_path: Path) -> None:
    # hf_hub_download reads 10 MiB chunks, so only a drop after the first full chunk leaves
    # bytes on disk to resume from (an earlier drop restarts from 0 without a Range header).
    big = (bytes(range(251)) * (12 * 1024 * 1024 // 251 + 1))[: 12 * 1024 * 1024]
    hub.add_repo("org/big", {"model.safetensors": big})
    cut = 10 * 1024 * 1024 + 12345
    hub.inject("org/big/model.safetensors", Fault.drop_connection_after(cut, times=1))

    got = Path(hf_hub_download("org/big", "model.safetensors", endpoint=hub.url, cache_dir=tmp_path))

    assert _sha256(got.read_bytes()) == _sha256(big)
    gets = hub.requests_for("org/big/resolve", method="GET")
    assert [r.headers.get("Range") for r in gets] == [None, f"bytes={10 * 1024 * 1024}-"]


def test_status_fault_gives_errors(hub: FakeHub, repo: str, tmp_path: Path) -> None:
    # 500 on GET only (HEAD fine): the download itself fails with an HTTP error.
    hub.inject("model.safetensors", Fault.status(500, methods=("GET",)))
    with pytest.raises(HfHubHTTPError) as info:
        hf_hub_download("org/tiny", "model.safetensors", endpoint=hub.url, cache_dir=tmp_path)
    assert info.value.response.status_code == 500
    hub.clear_faults()

    # A one-off 500 on HEAD: with nothing cached, the client retries the HEAD (with backoff) and succeeds.
    hub.inject("config.json", Fault.status(500, times=1))
    got = Path(hf_hub_download("org/tiny", "config.json", endpoint=hub.url, cache_dir=tmp_path))
    assert got.read_bytes() == CONFIG
    assert [r.method for r in hub.requests_for("resolve/main/config.json")] == ["HEAD", "HEAD", "GET"]

    # A 500 on the revision API: snapshot_download falls back to the (empty) cache and says so.
    hub.inject("/api/models/org/tiny/revision/*", Fault.status(500, times=1))
    with pytest.raises(LocalEntryNotFoundError):
        snapshot_download("org/tiny", endpoint=hub.url, cache_dir=tmp_path / "other")

    # A status fault carrying an error code maps to the client's typed error, even on API paths.
    hub.inject("/api/models/org/tiny*", Fault.status(404, error_code="RepoNotFound", times=1))
    with pytest.raises(RepositoryNotFoundError):
        HfApi(endpoint=hub.url).model_info("org/tiny")
    assert HfApi(endpoint=hub.url).model_info("org/tiny").sha == repo


def test_slow_fault_throttles(hub: FakeHub, repo: str) -> None:
    import time

    hub.inject("model.safetensors", Fault.slow(bytes_per_sec=64 * 1024))  # 16 KiB -> ~0.25 s
    start = time.monotonic()
    with httpx.Client() as client:
        body = client.get(f"{hub.url}/org/tiny/resolve/main/model.safetensors").content
    assert body == WEIGHTS
    assert time.monotonic() - start >= 0.2


def test_stop_leaves_no_threads_behind() -> None:
    before = set(threading.enumerate())
    hub = FakeHub().start()
    hub.add_repo("org/x", {"a.bin": b"x" * 10})
    with httpx.Client() as client:  # keep-alive connection stays open while stop() runs
        assert client.get(f"{hub.url}/org/x/resolve/main/a.bin").content == b"x" * 10
        hub.stop()
    leftover = [t for t in threading.enumerate() if t not in before and t.is_alive()]
    assert leftover == []
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{hub.url}/org/x/resolve/main/a.bin")
