"""Verification of fetched files: size, sha256 (cached) or git blob id, read through the model store."""

from __future__ import annotations

from pathlib import Path

from application.errors import IntegrityError
from application.downloads.ports import RemoteFile
from application.library.ports import ModelStore


def _verify(store: ModelStore, file: RemoteFile, path: Path, *, use_cache: bool = True,
            cache: Path | None = None) -> str:
    """Check size and sha256 (or, for a small non-LFS file, its git blob id); returns the sha256.

    Raises `IntegrityError` naming the file, the expected and the received value.
    """
    size = store.file_size(path)
    if file.size is not None and size != file.size:
        raise IntegrityError(file.path, f"{file.size} bytes", f"{size} bytes")
    if file.git_blob_sha1 and size <= _GIT_CHECK_MAX_BYTES:
        # Both when both are known: a sha256 may come from a mirror's checksums, the blob id from the hub.
        sha256, git_sha1 = store.sha256_and_git_sha1(path, size)
        if git_sha1 != file.git_blob_sha1.lower():
            raise IntegrityError(file.path, f"git blob sha1 {file.git_blob_sha1}", f"git blob sha1 {git_sha1}")
        if file.sha256 and sha256 != file.sha256.lower():
            raise IntegrityError(file.path, f"sha256 {file.sha256}", f"sha256 {sha256}")
        return sha256
    digest = store.sha256_of(path, use_cache=use_cache, cache=cache)
    if file.sha256 and digest != file.sha256.lower():
        raise IntegrityError(file.path, f"sha256 {file.sha256}", f"sha256 {digest}")
    return digest


_GIT_CHECK_MAX_BYTES = 64 * 1024 * 1024  # non-LFS files are small; never reread a big one for this


def _same_path(store: ModelStore, a: Path, b: Path) -> bool:
    try:
        return store.realpath(a) == store.realpath(b)
    except OSError:
        return False
