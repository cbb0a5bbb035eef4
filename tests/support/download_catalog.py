"""The tiny catalog and repo files the download use-case tests pull (unit tests on the in-memory store,
integration tests on real files)."""

from __future__ import annotations

import hashlib
import json

from domain.catalog.model import catalog_from_dict
from tests.support.fake_downloader import FakeDownloader

CONFIG = json.dumps({"model_type": "llama", "architectures": ["LlamaForCausalLM"]}).encode()
WEIGHTS = bytes(range(256)) * 40  # 10 KiB, an "LFS" file for the fake (>= 64 bytes)


def make_catalog(sources=None, **extra):
    sources = sources or [{"kind": "huggingface_repo", "value": "org/tiny", "priority": 10}]
    models = [
        {"id": "tiny-v1", "type": "text-gen", "family": "llama", "aliases": ["tiny", "tiny-old"], "sources": sources,
         **extra},
        {"id": "tiny-v2", "type": "text-gen", "family": "llama", "aliases": [], "supersedes": ["tiny-v1"],
         "sources": [{"kind": "huggingface_repo", "value": "org/tiny2"}]},
    ]
    return catalog_from_dict({"default_model": "tiny-v1", "models": models})


def tiny_repo_downloader() -> FakeDownloader:
    """A fake downloader serving `org/tiny` (config.json + model.safetensors), the catalog's source."""
    fake = FakeDownloader()
    fake.add_repo("org/tiny", {"config.json": CONFIG, "model.safetensors": WEIGHTS})
    return fake


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
