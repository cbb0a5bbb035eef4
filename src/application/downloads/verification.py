"""Verification of fetched files: size, sha256 (cached) or git blob id; folder checks for adoption."""

from __future__ import annotations

from pathlib import Path

from application.errors import IntegrityError
from application.library.hash_cache import sha256_of
from application.downloads.ports import RemoteFile


def _verify(file: RemoteFile, path: Path, *, use_cache: bool = True, cache: Path | None = None) -> str:
    """Check size and sha256 (or, for a small non-LFS file, its git blob id); returns the sha256.

    Raises `IntegrityError` naming the file, the expected and the received value.
    """
    size = path.stat().st_size
    if file.size is not None and size != file.size:
        raise IntegrityError(file.path, f"{file.size} bytes", f"{size} bytes")
    if not file.sha256 and file.git_blob_sha1 and size <= _GIT_CHECK_MAX_BYTES:
        sha256, git_sha1 = _sha256_and_git_sha1(path, size)
        if git_sha1 != file.git_blob_sha1.lower():
            raise IntegrityError(file.path, f"git blob sha1 {file.git_blob_sha1}", f"git blob sha1 {git_sha1}")
        return sha256
    digest = sha256_of(path, use_cache=use_cache, cache=cache)
    if file.sha256 and digest != file.sha256.lower():
        raise IntegrityError(file.path, f"sha256 {file.sha256}", f"sha256 {digest}")
    return digest


_GIT_CHECK_MAX_BYTES = 64 * 1024 * 1024  # non-LFS files are small; never reread a big one for this


def _sha256_and_git_sha1(path: Path, size: int) -> tuple[str, str]:
    import hashlib

    sha256 = hashlib.sha256()
    git_sha1 = hashlib.sha1(b"blob %d\0" % size)
    with open(path, "rb") as fh:
        while block := fh.read(1024 * 1024):
            sha256.update(block)
            git_sha1.update(block)
    return sha256.hexdigest(), git_sha1.hexdigest()


def _first_symlink(folder: Path) -> Path | None:
    """The first symbolic link inside `folder` (files or folders, never followed), if any."""
    import os

    for root, dirs, files in os.walk(folder, followlinks=False):
        for name in sorted(dirs + files):
            path = Path(root) / name
            if path.is_symlink():
                return path
    return None


def _same_path(a: Path, b: Path) -> bool:
    try:
        return a.resolve() == b.resolve()
    except OSError:
        return False
