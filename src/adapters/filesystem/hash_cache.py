"""A sha256 remembered next to a file, valid only while the file's size and mtime are unchanged.

Downloaders hash bytes as they arrive; the verifier reuses that digest instead of reading
large files twice. Anything stale or unreadable is ignored (the verifier then rehashes).
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

SUFFIX = ".sha256"
_READ_BYTES = 8 * 1024 * 1024


def cache_path(path: Path) -> Path:
    return path.with_name(path.name + SUFFIX)


def write_hash_cache(path: Path, sha256: str, cache: Path | None = None) -> None:
    """Remember `path`'s digest in `cache` (default: beside it, `<path>.sha256`)."""
    cache = cache or cache_path(path)
    st = os.stat(path)
    tmp = cache.with_name(cache.name + ".tmp")
    tmp.write_text(f"{st.st_size} {st.st_mtime_ns} {sha256}\n", encoding="ascii")
    os.replace(tmp, cache)


def read_hash_cache(path: Path, cache: Path | None = None) -> str | None:
    try:
        size, mtime_ns, digest = (cache or cache_path(path)).read_text(encoding="ascii").split()
        st = os.stat(path)
    except (OSError, ValueError):
        return None
    if int(size) != st.st_size or int(mtime_ns) != st.st_mtime_ns:
        return None
    return digest


def sha256_of(path: Path, *, use_cache: bool = True, cache: Path | None = None) -> str:
    """The file's sha256, from a still-valid cache (default `<path>.sha256`) or by reading it."""
    if use_cache:
        cached = read_hash_cache(path, cache)
        if cached is not None:
            return cached
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(_READ_BYTES):
            digest.update(block)
    return digest.hexdigest()


def drop_hash_cache(path: Path) -> None:
    cache_path(path).unlink(missing_ok=True)
