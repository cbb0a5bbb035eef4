"""`InMemoryModelStore`: the `ModelStore` port over an in-memory tree, for unit tests of the core.

Paths are the same as the filesystem adapter's (`LibraryPaths`), but nothing touches the disk: the
files, folders and links are an `InMemoryFileTree` (`adapters/memory/file_tree.py`, the plain file
primitives); this module adds the library's layout operations, hashes and locks. `tests/contract/test_model_store_contract.py`
runs the same checks against this fake and `FilesystemModelStore`.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import threading
from pathlib import Path
from typing import Callable, Iterator

from adapters.memory.file_tree import InMemoryFileTree, lock_every_method
from application.errors import IntegrityError
from application.library.import_scan import tensor_names_from_header
from domain.library.layout import MANIFEST_NAME, PART_SUFFIX, SCRATCH_SUFFIX, LibraryPaths, Manifest

_CACHE_SUFFIX = ".sha256"


class _Inode(bytes):
    """File bytes shared by hard-linked names (equal bytes written separately are distinct objects)."""


class InMemoryModelStore(InMemoryFileTree, LibraryPaths):
    def __init__(self, home: Path = Path("/memory/mlxm"), *, free_bytes: int = 10**12) -> None:
        LibraryPaths.__init__(self, home)
        InMemoryFileTree.__init__(self, self.home)
        self.fsynced: set[Path] = set()
        self.free_bytes = free_bytes  # what `free_staging_bytes` reports (tests set it low)
        self._held: set[str] = set()
        self._cond = threading.Condition()

    # -- test helpers (not part of the port) --------------------------------------------

    def write_hash_cache(self, path: Path, sha256: str, cache: Path | None = None) -> None:
        """What a downloader does after hashing the bytes it wrote (a small file, like the real cache)."""
        path = self._resolve(path)
        record = f"{len(self.files[path])} {self._versions[path]} {sha256}\n"
        self.write_file(cache or self.hash_cache_path(path), record.encode("ascii"))

    # -- state ------------------------------------------------------------------------------
    def installed_revision_dir(self, key: str) -> Path | None:
        target = self.links.get(self.model_path(key))
        if target is None or target not in self.dirs or self.revisions_dir not in target.parents:
            return None
        return target

    def is_foreign_folder(self, path: Path) -> bool:
        return path not in self.links and path in self.dirs and bool(self._children(path))

    # -- moves ------------------------------------------------------------------------------
    def install(self, key: str, revision: str, staged: Path, manifest: Manifest) -> Path:
        for entry in manifest.files:
            data = self.files.get(staged / entry["path"])
            if data is None:
                raise IntegrityError(entry["path"], f"{entry.get('size')} bytes", "no file in the staged folder")
            if entry.get("size") is not None and len(data) != entry["size"]:
                raise IntegrityError(entry["path"], f"{entry['size']} bytes", f"{len(data)} bytes")
        self.write_file(staged / MANIFEST_NAME, manifest.to_json().encode())
        target = self.revision_dir(key, revision)
        if target in self.dirs:
            previous = self.read_manifest(target)
            ours = previous is not None and previous.created_by == "mlxm"
            aside = target.with_name(f"{revision}.{'old' if ours else 'kept'}-{len(self.dirs)}")
            self._move_tree(target, aside)
            self._move_tree(staged, target)
            self._switch_link(key, target)
            if ours:
                self._remove_tree(aside)
        else:
            self._move_tree(staged, target)
            self._switch_link(key, target)
        return self.model_path(key)

    def uninstall(self, key: str, revision: str, staged: Path, previous: Path | None) -> None:
        link = self.model_path(key)
        target = self.revision_dir(key, revision)
        if previous is not None and previous in self.dirs and previous != target:
            self._switch_link(key, previous)
        elif previous is None and self.links.get(link) == target:
            del self.links[link]
        else:
            return
        if target in self.dirs and staged not in self.dirs and staged not in self.files:
            self._move_tree(target, staged)
            self.files.pop(staged / MANIFEST_NAME, None)
            self._rmdir_if_empty(target.parent)

    def adopt(self, key: str, revision: str, folder: Path, manifest: Manifest) -> Path:
        target = self.revision_dir(key, revision)
        self._move_tree(folder, target)
        self.write_file(target / MANIFEST_NAME, manifest.to_json().encode())
        self._switch_link(key, target)
        return self.model_path(key)

    def replace_installed_files(self, key: str, staged: Path, paths: list[str]) -> Path:
        target = self.installed_revision_dir(key)
        if target is None:
            raise FileNotFoundError(self.model_path(key))
        for rel in paths:
            self.fsync_file(staged / rel)
            self._mkdirs((target / rel).parent)
            self.replace(staged / rel, target / rel)  # one assignment per file, like one rename
        return self.model_path(key)

    def _switch_link(self, key: str, target: Path) -> None:
        link = self.model_path(key)
        self._mkdirs(link.parent)
        self.links[link] = target  # one assignment: readers see the old target or the new one

    def remove_revision(self, key: str, revision: str) -> bool:
        try:
            folder = self.revision_dir(key, revision)
        except ValueError:
            return False
        manifest = self.read_manifest(folder)
        if manifest is None or manifest.created_by != "mlxm":
            return False
        self._remove_tree(folder)
        return True

    def clear_staging(self, key: str, keep_revision: str | None = None) -> None:
        root = self.staging_root(key)
        if root not in self.dirs:
            return
        keep = {keep_revision, keep_revision + SCRATCH_SUFFIX} if keep_revision is not None else set()
        for child in self._children(root):
            if child.name not in keep:
                self._remove_tree(child)
        self._rmdir_if_empty(root)

    def staged_bytes(self, key: str, revision: str) -> int:
        try:
            root, scratch = self.staging_for(key, revision), self.scratch_for(key, revision)
        except ValueError:
            return 0
        total = sum(len(data) for path, data in self.files.items() if root in path.parents)
        total += sum(len(data) for path, data in self.files.items()
                     if path.parent == scratch and path.name.endswith(PART_SUFFIX))
        return total

    # -- manifests, hashes, space ----------------------------------------------------------
    def read_manifest(self, folder: Path) -> Manifest | None:
        data = self.files.get(self._resolve(folder) / MANIFEST_NAME)
        return Manifest.from_json(data.decode("utf-8", "replace")) if data is not None else None

    def sha256_of(self, path: Path, *, use_cache: bool = True, cache: Path | None = None) -> str:
        path = self._resolve(path)
        data = self._bytes(path)
        if use_cache:
            try:
                size, version, digest = self.files[cache or self.hash_cache_path(path)].decode("ascii").split()
                if (int(size), int(version)) == (len(data), self._versions[path]):
                    return digest
            except (KeyError, ValueError):
                pass  # no cache, or not one we can read: hash the bytes
        return hashlib.sha256(data).hexdigest()

    def sha256_and_git_sha1(self, path: Path, size: int) -> tuple[str, str]:
        data = self.files[self._resolve(path)]
        return hashlib.sha256(data).hexdigest(), hashlib.sha1(b"blob %d\0" % size + data).hexdigest()

    def hash_cache_path(self, path: Path) -> Path:
        return path.with_name(path.name + _CACHE_SUFFIX)

    def drop_hash_cache(self, path: Path) -> None:
        self.files.pop(self.hash_cache_path(path), None)

    def fsync_file(self, path: Path) -> None:
        if self._resolve(path) not in self.files:
            raise FileNotFoundError(path)
        self.fsynced.add(path)

    def free_staging_bytes(self) -> int:
        self._mkdirs(self.staging_dir)
        return self.free_bytes

    def first_symlink(self, folder: Path) -> Path | None:
        links = sorted(p for p in self.links if folder in p.parents)
        return links[0] if links else None

    def prune_unlisted(self, staging: Path, listed: set[str]) -> None:
        for path in [p for p in list(self.files) + list(self.links) if staging in p.parents]:
            if path.relative_to(staging).as_posix() not in listed:
                self.files.pop(path, None)
                self.links.pop(path, None)

    def write_journal(self, path: Path, record: dict) -> None:
        self.write_file(path, json.dumps(record).encode())

    def read_journal(self, path: Path) -> dict | None:
        try:
            record = json.loads(self.files[path])
        except (KeyError, ValueError):
            return None
        return record if isinstance(record, dict) else None

    def hash_file(self, path: Path) -> tuple[int, str]:
        data = self.files[self._resolve(path)]
        return len(data), hashlib.sha256(data).hexdigest()

    def link_or_copy(self, src: Path, dst: Path) -> str:
        src = self._resolve(src)
        shared = self.files[src]
        if not isinstance(shared, _Inode):
            shared = self.files[src] = _Inode(shared)  # one object for both names stands in for the inode
        self._mkdirs(dst.parent)
        self.files[dst] = shared
        self._versions[dst] = self._versions.get(dst, 0) + 1
        return "hardlink"

    def same_file(self, a: Path, b: Path) -> bool:
        first, second = self.files.get(self._resolve(a)), self.files.get(self._resolve(b))
        return isinstance(first, _Inode) and first is second

    def copy_and_hash(self, src: Path, dst: Path) -> tuple[int, str]:
        if self.lexists(dst):
            raise FileExistsError(dst)
        data = self.files[self._resolve(src)]
        self.write_file(dst, data)
        return len(data), hashlib.sha256(data).hexdigest()

    def safetensors_tensor_names(self, path: Path, label: str | None = None) -> list[str]:
        data = self.files[self._resolve(path)]
        return tensor_names_from_header(data[:8], lambda n: data[8:8 + n], len(data), label or path.name)

    # -- one writer per model ---------------------------------------------------------------
    @contextlib.contextmanager
    def model_lock(self, key: str, *, wait: bool = True, poll_seconds: float = 0.1,
                   should_stop: Callable[[], bool] = lambda: False) -> Iterator[bool]:
        self._mkdirs(self.lock_path(key).parent)
        acquired = False
        with self._cond:
            while True:
                if key not in self._held:
                    self._held.add(key)
                    acquired = True
                    break
                if not wait or should_stop():
                    break
                self._cond.wait(poll_seconds)
        try:
            yield acquired
        finally:
            if acquired:
                with self._cond:
                    self._held.discard(key)
                    self._cond.notify_all()


lock_every_method(InMemoryModelStore, skip={"model_lock"})  # the lock waits: it has its own condition
