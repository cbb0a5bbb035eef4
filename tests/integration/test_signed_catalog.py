"""The signed remote catalog against a loopback catalog server, with real Ed25519 keys (issue 17).

Every refusal keeps the catalog in use and writes nothing to the cache.
"""

from __future__ import annotations

import json
import os
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from adapters.catalog.ed25519_signatures import Ed25519CatalogSigner, Ed25519SignatureVerifier
from adapters.catalog.embedded import EmbeddedCatalogProvider
from adapters.catalog.filesystem_cache import FilesystemCatalogCache
from adapters.catalog.httpx_fetcher import HttpxCatalogFetcher
from adapters.system.clock import SystemClock
from application.catalog.remote import RemoteCatalogService
from application.catalog.ports import KeyFileRefused
from domain.catalog.signed import CatalogRefused
from tests.support.catalog_server import CatalogServer, catalog_document, encode, team_model


@pytest.fixture
def keys(tmp_path):
    signer = Ed25519CatalogSigner()
    pair = signer.generate(str(tmp_path / "team.key"))
    other = signer.generate(str(tmp_path / "other.key"))
    return signer, pair, other


@pytest.fixture
def server():
    with CatalogServer() as s:
        yield s


class World:
    def __init__(self, tmp_path: Path, server: CatalogServer, keys, timeout: float = 5.0,
                 max_bytes: int = 1024 * 1024) -> None:
        self.signer, self.pair, self.other = keys
        self.server = server
        self.cache_dir = tmp_path / "home" / "catalog"
        self.timeout = timeout
        self.max_bytes = max_bytes
        self.service = self.new_service()

    def new_service(self, pubkey: str | None = None) -> RemoteCatalogService:
        return RemoteCatalogService(
            embedded=EmbeddedCatalogProvider(),
            fetcher=HttpxCatalogFetcher(self.timeout, self.max_bytes),
            verifier=Ed25519SignatureVerifier(pubkey or self.pair.public_key),
            cache=FilesystemCatalogCache(self.cache_dir),
            clock=SystemClock(),
            url=self.server.url + "/catalog.json",
            fetch_when_stale=False,
        )

    def publish(self, document: dict | bytes, key: str | None = None, gzip: bool = False) -> bytes:
        data = document if isinstance(document, bytes) else encode(document)
        self.server.put("/catalog.json", data, gzip=gzip)
        self.server.put("/catalog.json.sig", self.signer.sign(key or self.pair.private_key_path, data))
        return data

    def doc(self, sequence: int, **kwargs) -> dict:
        return catalog_document(sequence=sequence, key_id=self.pair.key_id, **kwargs)

    def cache_snapshot(self) -> dict[str, bytes]:
        if not self.cache_dir.exists():
            return {}
        return {p.name: p.read_bytes() for p in sorted(self.cache_dir.iterdir())}


@pytest.fixture
def world(tmp_path, server, keys) -> World:
    return World(tmp_path, server, keys)


@pytest.fixture
def accepted(world) -> World:
    """A world where sequence 1 (team-tiny-v1 -> org/tiny) was accepted."""
    world.publish(world.doc(1))
    result = world.service.refresh()
    assert result.sequence == 1 and result.changed
    return world


def assert_refused_and_kept(world: World, reason: str) -> None:
    before_cache = world.cache_snapshot()
    before = world.service.load_catalog()
    with pytest.raises(CatalogRefused) as refused:
        world.service.refresh()
    assert reason in refused.value.reason, refused.value.reason
    assert world.service.load_catalog() is before  # the previous catalog stays in use
    assert world.cache_snapshot() == before_cache  # nothing cached
    assert reason in (world.service.status().problem or "")


# -- acceptance and precedence --------------------------------------------------------------------


def test_a_signed_catalog_is_fetched_verified_cached_and_used(accepted) -> None:
    catalog = accepted.service.load_catalog()
    assert catalog.find("team-tiny-v1").primary_repo_id == "org/tiny"
    status = accepted.service.status()
    assert (status.source, status.sequence, status.key_id) == ("remote", 1, accepted.pair.key_id)
    assert set(accepted.cache_snapshot()) == {"remote.json", "remote.json.sig", "state.json"}
    state = json.loads(accepted.cache_snapshot()["state.json"])
    assert state["sequence"] == 1 and state["pins"]["team-tiny-v1"] == {"repos": ["org/tiny"], "revision": None}


def test_the_cached_catalog_is_re_verified_on_load_and_used_when_the_server_is_gone(accepted) -> None:
    accepted.server.remove("/catalog.json")
    fresh = accepted.new_service()
    fresh.fetch_when_stale = True  # would fetch: the server 404s, so the verified cache stays in use
    assert "team-tiny-v1" in fresh.load_catalog()
    assert fresh.status().source == "cache"


def test_a_tampered_cache_is_not_used_and_the_embedded_catalog_is(accepted) -> None:
    path = accepted.cache_dir / "remote.json"
    path.write_bytes(path.read_bytes().replace(b"org/tiny", b"org/evil"))
    fresh = accepted.new_service()
    assert "team-tiny-v1" not in fresh.load_catalog()
    assert fresh.load_catalog().default_model_id == EmbeddedCatalogProvider().load_catalog().default_model_id
    status = fresh.status()
    assert status.source == "embedded" and "does not verify" in status.problem


def test_a_cache_signed_by_another_key_is_not_used_after_a_key_change(accepted) -> None:
    fresh = accepted.new_service(pubkey=accepted.other.public_key)
    assert fresh.status().source == "embedded"
    assert "not with MLX_CATALOG_PUBKEY" in fresh.status().problem


def test_a_gzip_encoded_catalog_is_verified_on_its_decoded_bytes(world) -> None:
    world.publish(world.doc(1), gzip=True)
    assert world.service.refresh().sequence == 1
    assert json.loads(world.cache_snapshot()["remote.json"])["sequence"] == 1


def test_a_newer_sequence_replaces_the_catalog_and_the_same_one_is_unchanged(accepted) -> None:
    accepted.publish(accepted.doc(2, models=[team_model("team-tiny-v1", "org/tiny"),
                                              team_model("team-small-v1", "org/small")]))
    assert accepted.service.refresh().changed
    assert "team-small-v1" in accepted.service.load_catalog()
    again = accepted.service.refresh()
    assert (again.sequence, again.changed) == (2, False)


# -- refusals -------------------------------------------------------------------------------------


def test_missing_signature_is_refused(accepted) -> None:
    accepted.server.put("/catalog.json", encode(accepted.doc(2)))
    accepted.server.remove("/catalog.json.sig")
    assert_refused_and_kept(accepted, "no signature at")


def test_garbage_signature_is_refused(accepted) -> None:
    accepted.publish(accepted.doc(2))
    accepted.server.put("/catalog.json.sig", b"not a signature")
    assert_refused_and_kept(accepted, "not an mlxm signature")


def test_signature_by_another_key_is_refused(accepted) -> None:
    accepted.publish(accepted.doc(2), key=accepted.other.private_key_path)
    assert_refused_and_kept(accepted, f"signed with key {accepted.other.key_id}")


def test_a_valid_signature_over_other_bytes_is_refused(accepted) -> None:
    accepted.publish(accepted.doc(2))
    tampered = encode(accepted.doc(3, models=[team_model("team-tiny-v1", "org/tiny"),
                                               team_model("team-evil-v1", "org/evil")]))
    accepted.server.put("/catalog.json", tampered)  # the .sig is still the valid one over sequence 2
    assert_refused_and_kept(accepted, "does not verify over these bytes")


def test_an_expired_catalog_is_refused(accepted) -> None:
    old = datetime.now(timezone.utc) - timedelta(days=10)
    accepted.publish(accepted.doc(2, issued_at=old, expires_in=timedelta(days=1)))
    assert_refused_and_kept(accepted, "expired at")


def test_a_rollback_is_refused(accepted) -> None:
    accepted.publish(accepted.doc(2))
    accepted.service.refresh()
    accepted.publish(accepted.doc(1))  # an older, validly signed catalog
    assert_refused_and_kept(accepted, "rollback: sequence 1 is lower than the accepted sequence 2")


def test_the_same_sequence_with_other_content_is_refused(accepted) -> None:
    accepted.publish(accepted.doc(1, models=[team_model("team-tiny-v1", "org/tiny"),
                                              team_model("team-small-v1", "org/small")]))
    assert_refused_and_kept(accepted, "sequence 1 was already accepted with different content")


def test_a_catalog_breaking_an_invariant_is_refused(accepted) -> None:
    models = [team_model("team-tiny-v1", "org/tiny", aliases=["tiny"]),
              team_model("team-small-v1", "org/small", aliases=["tiny"])]
    accepted.publish(accepted.doc(2, models=models))
    assert_refused_and_kept(accepted, "breaks a catalog invariant: aliases collide")


def test_invalid_json_is_refused_even_when_signed(accepted) -> None:
    accepted.publish(b'{"sequence": 2, "models": [')
    assert_refused_and_kept(accepted, "not valid JSON")


def test_a_catalog_naming_another_key_id_is_refused(accepted) -> None:
    document = accepted.doc(2)
    document["key_id"] = accepted.other.key_id  # signed by the trusted key, but claims another publisher
    accepted.publish(document)
    assert_refused_and_kept(accepted, f"it names key {accepted.other.key_id}")


def test_changing_the_repo_of_a_canonical_id_is_refused_but_a_new_id_is_accepted(accepted) -> None:
    accepted.publish(accepted.doc(2, models=[team_model("team-tiny-v1", "org/tiny-retrained")]))
    assert_refused_and_kept(accepted, "team-tiny-v1 was org/tiny@default branch, now org/tiny-retrained")

    # The same change under a new ID, the old ID left untouched, the alias moved to the new ID: accepted.
    models = [team_model("team-tiny-v1", "org/tiny"),
              team_model("team-tiny-v2", "org/tiny-retrained", aliases=["tiny"], supersedes=["team-tiny-v1"])]
    accepted.publish(accepted.doc(3, models=models))
    assert accepted.service.refresh().sequence == 3
    catalog = accepted.service.load_catalog()
    assert catalog.get("team-tiny-v1").primary_repo_id == "org/tiny"
    assert catalog.resolve("tiny").id == "team-tiny-v2"


def test_an_id_dropped_and_later_redefined_is_still_refused(accepted) -> None:
    accepted.publish(accepted.doc(2, models=[team_model("team-small-v1", "org/small")]))
    accepted.service.refresh()  # team-tiny-v1 no longer listed
    accepted.publish(accepted.doc(3, models=[team_model("team-tiny-v1", "org/other")]))
    assert_refused_and_kept(accepted, "team-tiny-v1 was org/tiny")


def test_changing_the_revision_of_a_canonical_id_is_refused(accepted) -> None:
    accepted.publish(accepted.doc(2, models=[team_model("team-tiny-v1", "org/tiny", revision="a" * 40)]))
    assert_refused_and_kept(accepted, "team-tiny-v1 was org/tiny@default branch, now org/tiny@" + "a" * 40)


def test_redefining_an_embedded_id_is_refused(accepted) -> None:
    model = team_model("qwen3-0.6b-4bit-v1", "someone/Qwen3-0.6B-4bit-evil", family="qwen3")
    accepted.publish(accepted.doc(2, models=[model]))
    assert_refused_and_kept(accepted, "qwen3-0.6b-4bit-v1 was mlx-community/qwen3-0.6b-4bit")


def test_a_hanging_server_is_refused_after_the_timeout(tmp_path, server, keys) -> None:
    world = World(tmp_path, server, keys, timeout=0.5)
    world.publish(world.doc(1))
    world.service.refresh()
    server.hang("/catalog.json")
    assert_refused_and_kept(world, "timed out after 0.5 s")


def test_a_10_gb_body_is_refused_by_the_size_cap(accepted) -> None:
    accepted.server.endless("/catalog.json", declared=10 * 1024**3)
    assert_refused_and_kept(accepted, "body of 10737418240 bytes is over the 1048576-byte cap")
    assert accepted.server.bytes_sent < 64 * 1024 * 1024  # the client hung up; it never read the 10 GB


def test_an_endless_chunked_body_is_cut_at_the_cap(accepted) -> None:
    accepted.server.endless("/catalog.json", declared=None)
    assert_refused_and_kept(accepted, "body is over the 1048576-byte cap")


# -- publisher's keys ------------------------------------------------------------------------------


def test_a_private_key_readable_by_others_is_refused_for_signing(world, tmp_path) -> None:
    os.chmod(world.pair.private_key_path, 0o644)
    with pytest.raises(KeyFileRefused, match="readable by others"):
        world.signer.sign(world.pair.private_key_path, b"{}")


def test_keygen_writes_a_0600_key_and_never_overwrites_one(world) -> None:
    assert os.stat(world.pair.private_key_path).st_mode & 0o777 == 0o600
    with pytest.raises(FileExistsError):
        world.signer.generate(world.pair.private_key_path)


def test_the_public_key_may_be_a_file(world) -> None:
    verifier = Ed25519SignatureVerifier(world.pair.public_key_path)
    assert verifier.key_id == world.pair.key_id
    with pytest.raises(KeyFileRefused):
        Ed25519SignatureVerifier("not-a-key-and-not-a-file")
