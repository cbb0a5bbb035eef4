"""`FilesystemFileTree`: the file primitives of the `ModelStore` port on a real filesystem (pathlib and
`os` on the paths they are given: stat, walk, rename, journal, hash, copy). They know nothing of the
library's layout; `FilesystemModelStore` (model_store.py) builds the layout's moves, staging and locks on
them, as `InMemoryModelStore` does on `InMemoryFileTree`.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path
from typing import Iterator

from adapters.filesystem.durability import fsync_dir
from application.library.import_scan import tensor_names_from_header

_CHUNK = 4 * 1024 * 1024


def read_safetensors_tensor_names(path: Path, label: str | None = None) -> list[str]:
    """Tensor names from a safetensors file's header, read without loading the weights
    (the header rules are `application.library.import_scan.tensor_names_from_header`)."""
    label = label or path.name
    size = path.stat().st_size
    with open(path, "rb") as handle:
        return tensor_names_from_header(handle.read(8), handle.read, size, label)


class FilesystemFileTree:
    """The `ModelStore` port's file primitives on a real filesystem: one path (or two) at a time, no
    knowledge of the library's layout (`FilesystemModelStore` builds the layout operations on them)."""

    # -- hashes -------------------------------------------------------------------------
    def sha256_and_git_sha1(self, path: Path, size: int) -> tuple[str, str]:
        """Both digests in one read: the sha256 and the git blob id (sha1 of `blob <size>\\0` + bytes)."""
        sha256 = hashlib.sha256()
        git_sha1 = hashlib.sha1(b"blob %d\0" % size)
        with open(path, "rb") as fh:
            while block := fh.read(1024 * 1024):
                sha256.update(block)
                git_sha1.update(block)
        return sha256.hexdigest(), git_sha1.hexdigest()

    # -- file primitives of import, delete and recovery -----------------------------------
    def lexists(self, path: Path) -> bool:
        return os.path.lexists(path)

    def realpath(self, path: Path) -> Path:
        return Path(os.path.realpath(path))

    def walk(self, root: Path, *, top_down: bool = True) -> Iterator[tuple[str, list[str], list[str]]]:
        """`os.walk`: top-down callers may prune `dirs` in place; links to folders are not followed."""
        return os.walk(root, topdown=top_down)

    def rename(self, src: Path, dst: Path) -> None:
        """Atomic on one filesystem; raises OSError (errno EXDEV) across filesystems."""
        os.rename(src, dst)

    def remove_tree(self, path: Path) -> None:
        shutil.rmtree(path, ignore_errors=True)

    def write_journal(self, path: Path, record: dict) -> None:
        temp = path.with_name(path.name + ".tmp")
        with open(temp, "w", encoding="utf-8") as handle:
            json.dump(record, handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temp, path)  # never a half-written journal under the name
        fsync_dir(path.parent)

    def read_journal(self, path: Path) -> dict | None:
        try:
            record = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        return record if isinstance(record, dict) else None

    def symlink_relative(self, link: Path, target: Path) -> None:
        os.symlink(os.path.relpath(target, link.parent), link)

    def hash_file(self, path: Path) -> tuple[int, str]:
        """(size, sha256) of the bytes read."""
        digest = hashlib.sha256()
        size = 0
        with open(path, "rb") as handle:
            while chunk := handle.read(_CHUNK):
                digest.update(chunk)
                size += len(chunk)
        return size, digest.hexdigest()

    def link_or_copy(self, src: Path, dst: Path) -> str:
        from adapters.filesystem.links import link_or_copy

        return link_or_copy(src, dst)

    def same_file(self, a: Path, b: Path) -> bool:
        try:
            return os.path.samefile(a, b)
        except OSError:
            return False

    def copy_and_hash(self, src: Path, dst: Path) -> tuple[int, str]:
        """Copy `src` to a new file `dst` (never overwrites) and hash the bytes written."""
        dst.parent.mkdir(parents=True, exist_ok=True)
        digest = hashlib.sha256()
        size = 0
        with open(src, "rb") as source, open(dst, "xb") as target:
            while chunk := source.read(_CHUNK):
                digest.update(chunk)
                target.write(chunk)
                size += len(chunk)
        return size, digest.hexdigest()

    def safetensors_tensor_names(self, path: Path, label: str | None = None) -> list[str]:
        return read_safetensors_tensor_names(path, label)

    # -- plain file primitives ------------------------------------------------------------
    def exists(self, path: Path) -> bool:
        return path.exists()

    def is_file(self, path: Path) -> bool:
        return path.is_file()

    def is_dir(self, path: Path) -> bool:
        return path.is_dir()

    def is_symlink(self, path: Path) -> bool:
        return path.is_symlink()

    def file_size(self, path: Path) -> int:
        return path.stat().st_size

    def read_text(self, path: Path) -> str:
        return path.read_text(encoding="utf-8")

    def write_text(self, path: Path, text: str) -> None:
        path.write_text(text, encoding="utf-8")

    def unlink(self, path: Path, *, missing_ok: bool = False) -> None:
        path.unlink(missing_ok=missing_ok)

    def mkdir(self, path: Path, *, parents: bool = False, exist_ok: bool = False) -> None:
        path.mkdir(parents=parents, exist_ok=exist_ok)

    def rmdir(self, path: Path) -> None:
        path.rmdir()

    def list_dir(self, path: Path) -> list[Path]:
        return sorted(path.iterdir())

    def replace(self, src: Path, dst: Path) -> None:
        src.replace(dst)
