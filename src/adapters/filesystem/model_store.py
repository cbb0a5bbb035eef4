"""`FilesystemModelStore`: the `ModelStore` port on a real filesystem — where a model's bytes live,
the few moves that must be atomic (rename + symlink switch), fsync, `flock` and the hash caches. The
layout-free file primitives it inherits are `FilesystemFileTree` (file_tree.py).

Layout under `MLX_MANAGER_HOME` (each model stored exactly once; the HF cache is not used)::

    models/<key>                       symlink -> .revisions/<key>/<sha>  (what users and runtimes open)
    models/.revisions/<key>/<sha>/     the installed revision's files + .mlxm.json (provenance manifest)
    staging/<key-with-/-as-->/<sha>/   a pull in progress: verified files only, in the model's tree
    staging/<key-with-/-as-->/<sha>.meta/  its scratch: `<quoted path>.part` partials and hash caches
    staging/<key-with-/-as-->.lock     flock held by the one process pulling that model

`<key>` is the canonical ID for catalog models, or `org/name` for any other HF repo.
A new revision is staged beside the installed one and installed by renaming its folder into
`.revisions/` and then replacing the `models/<key>` symlink with `os.replace`, which is atomic:
a reader sees the old revision or the new one, never a half model.
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Iterator

if TYPE_CHECKING:
    from application.library.ports import SharedLock

from adapters.filesystem import hash_cache
from adapters.filesystem.file_tree import FilesystemFileTree
from adapters.filesystem.durability import _move, check_manifest_files, fsync_dir, fsync_file, fsync_tree
from domain.library.layout import (
    MANIFEST_NAME,
    PART_SUFFIX,
    SCRATCH_SUFFIX,
    LibraryPaths,
    Manifest,
)


class FilesystemModelStore(FilesystemFileTree, LibraryPaths):
    """The library on disk under `home` (see the module docstring for the layout)."""

    def __init__(self, home: Path, shared_lock: "SharedLock | None" = None) -> None:
        super().__init__(home)
        # Set when the database is shared by several hosts (PostgreSQL): model_lock takes it too.
        self.shared_lock = shared_lock

    # -- state ------------------------------------------------------------------------
    def installed_revision_dir(self, key: str) -> Path | None:
        """The revision folder `models/<key>` points at, when it is mlxm's symlink and intact."""
        link = self.model_path(key)
        if not link.is_symlink():
            return None
        target = link.resolve()
        if not target.is_dir() or self.revisions_dir.resolve() not in target.parents:
            return None
        return target

    def is_foreign_folder(self, path: Path) -> bool:
        """A real folder (not our symlink) that holds files: mlxm never deletes it."""
        return path.is_dir() and not path.is_symlink() and any(path.iterdir())

    # -- moves ------------------------------------------------------------------------
    def install(self, key: str, revision: str, staged: Path, manifest: Manifest) -> Path:
        """Move a verified staged folder into `.revisions/` and point `models/<key>` at it atomically."""
        check_manifest_files(staged, manifest)
        (staged / MANIFEST_NAME).write_text(manifest.to_json(), encoding="utf-8")
        # Durable before visible: after a power cut the link never points at files still in the page cache.
        fsync_tree(staged)
        target = self.revision_dir(key, revision)
        target.parent.mkdir(parents=True, exist_ok=True)
        if target.exists():
            # Same revision installed before (e.g. a repair): keep it aside until the switch is done.
            previous = self.read_manifest(target)
            ours = previous is not None and previous.created_by == "mlxm"
            # Never delete: a folder mlxm did not download (adopted, or no manifest) stays, renamed aside.
            aside = target.with_name(f"{revision}.{'old' if ours else 'kept'}-{os.getpid()}-{time.monotonic_ns()}")
            os.rename(target, aside)
            _move(staged, target)
            self._switch_link(key, target)
            if ours:
                shutil.rmtree(aside, ignore_errors=True)
        else:
            _move(staged, target)
            self._switch_link(key, target)
        return self.model_path(key)

    def uninstall(self, key: str, revision: str, staged: Path, previous: Path | None) -> None:
        """Undo `install` when the library row could not be recorded (library index consistency).

        `models/<key>` points back at `previous` (or goes, for a first install) and the revision
        folder moves back to `staged`, so a retry resumes from the verified files. A reinstall of
        the same revision stays: the row already describes it.
        """
        link = self.model_path(key)
        target = self.revision_dir(key, revision)
        if previous is not None and previous.is_dir() and previous.resolve() != target.resolve():
            self._switch_link(key, previous)
        elif previous is None and link.is_symlink() and link.resolve() == target.resolve():
            link.unlink()
        else:
            return
        if target.is_dir() and not os.path.lexists(staged):
            staged.parent.mkdir(parents=True, exist_ok=True)
            os.rename(target, staged)
            with contextlib.suppress(FileNotFoundError):
                (staged / MANIFEST_NAME).unlink()
            with contextlib.suppress(OSError):
                target.parent.rmdir()

    def adopt(self, key: str, revision: str, folder: Path, manifest: Manifest) -> Path:
        """Move a verified foreign folder into the layout (a rename: never a copy, never a delete)."""
        target = self.revision_dir(key, revision)
        target.parent.mkdir(parents=True, exist_ok=True)
        _move(folder, target)
        (target / MANIFEST_NAME).write_text(manifest.to_json(), encoding="utf-8")
        self._switch_link(key, target)
        return self.model_path(key)

    def replace_installed_files(self, key: str, staged: Path, paths: list[str]) -> Path:
        """Repair: each verified staged file replaces its damaged name in the installed revision.

        One `os.replace` per file, after an fsync (durable before visible), then the folder's fsync.
        The revision's other files are never touched; the folder keeps its name, so the
        `models/<key>` link needs no switch.
        """
        target = self.installed_revision_dir(key)
        if target is None:
            raise FileNotFoundError(f"{self.model_path(key)} is not an installed revision of mlxm")
        for rel in paths:
            src, dst = staged / rel, target / rel
            fsync_file(src)
            dst.parent.mkdir(parents=True, exist_ok=True)
            try:
                os.replace(src, dst)
            except OSError as exc:
                if exc.errno != errno.EXDEV:
                    raise
                # Staging on another filesystem: copy beside the damaged file, flush, then rename.
                tmp = dst.with_name(f".{dst.name}.repair-{os.getpid()}")
                shutil.copyfile(src, tmp)
                fsync_file(tmp)
                os.replace(tmp, dst)
            fsync_dir(dst.parent)
        return self.model_path(key)

    def _switch_link(self, key: str, target: Path) -> None:
        link = self.model_path(key)
        link.parent.mkdir(parents=True, exist_ok=True)
        fsync_dir(target.parent)  # the rename of the revision folder into `.revisions/<key>/`
        tmp = link.with_name(f".{link.name}.link-{os.getpid()}-{threading.get_ident()}")
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        os.symlink(os.path.relpath(target, link.parent), tmp)
        os.replace(tmp, link)
        fsync_dir(link.parent)

    def remove_revision(self, key: str, revision: str) -> bool:
        """Delete an old revision folder, but only one mlxm downloaded itself."""
        try:
            folder = self.revision_dir(key, revision)
        except ValueError:
            return False  # a legacy row's revision ("main"): no folder of ours by that name
        manifest = self.read_manifest(folder)
        if manifest is None or manifest.created_by != "mlxm":
            return False
        shutil.rmtree(folder, ignore_errors=True)
        return True

    def clear_staging(self, key: str, keep_revision: str | None = None) -> None:
        root = self.staging_root(key)
        if not root.is_dir():
            return
        keep = {keep_revision, keep_revision + SCRATCH_SUFFIX} if keep_revision is not None else set()
        for child in root.iterdir():
            if child.name not in keep:
                shutil.rmtree(child, ignore_errors=True)
        with contextlib.suppress(OSError):
            root.rmdir()

    def staged_bytes(self, key: str, revision: str) -> int:
        """Bytes a resume will not fetch again: verified staged files plus partials."""
        try:
            root, scratch = self.staging_for(key, revision), self.scratch_for(key, revision)
        except ValueError:
            return 0
        total = 0
        if root.is_dir():
            total += sum(p.stat().st_size for p in root.rglob("*") if p.is_file() and not p.is_symlink())
        if scratch.is_dir():
            total += sum(p.stat().st_size for p in scratch.iterdir() if p.name.endswith(PART_SUFFIX) and p.is_file())
        return total

    # -- manifests, hashes, space ------------------------------------------------------
    def read_manifest(self, folder: Path) -> Manifest | None:
        try:
            text = (folder / MANIFEST_NAME).read_text(encoding="utf-8")
        except OSError:
            return None
        return Manifest.from_json(text)

    def sha256_of(self, path: Path, *, use_cache: bool = True, cache: Path | None = None) -> str:
        return hash_cache.sha256_of(path, use_cache=use_cache, cache=cache)

    def hash_cache_path(self, path: Path) -> Path:
        return hash_cache.cache_path(path)

    def drop_hash_cache(self, path: Path) -> None:
        hash_cache.drop_hash_cache(path)

    def fsync_file(self, path: Path) -> None:
        fsync_file(path)

    def free_staging_bytes(self) -> int:
        """Free bytes on the filesystem that holds the staging area (created if missing)."""
        self.staging_dir.mkdir(parents=True, exist_ok=True)
        return shutil.disk_usage(self.staging_dir).free

    def first_symlink(self, folder: Path) -> Path | None:
        """The first symbolic link inside `folder` (files or folders, never followed), if any."""
        for root, dirs, files in os.walk(folder, followlinks=False):
            for name in sorted(dirs + files):
                path = Path(root) / name
                if path.is_symlink():
                    return path
        return None

    def prune_unlisted(self, staging: Path, listed: set[str]) -> None:
        """Drop leftovers (an older layout's partials, caches) from the staged tree: only listed files install."""
        if not staging.is_dir():
            return
        for path in sorted(staging.rglob("*"), reverse=True):
            if path.is_symlink() or path.is_file():
                if path.relative_to(staging).as_posix() not in listed:
                    path.unlink()

    # -- one writer per model, across processes ----------------------------------------
    @contextlib.contextmanager
    def model_lock(self, key: str, *, wait: bool = True, poll_seconds: float = 0.1,
                   should_stop=lambda: False) -> Iterator[bool]:
        """Hold an exclusive `flock` on the model's lock file; yields False when not acquired.

        The kernel releases it when the process dies, so a `kill -9` never leaves it stuck. With a
        shared lock (several hosts on one database), it is taken as well, after the flock: a
        flock does not reach across machines, the database does.
        """
        if self.shared_lock is None:
            with self._file_lock(key, wait=wait, poll_seconds=poll_seconds, should_stop=should_stop) as got:
                yield got
            return
        with contextlib.ExitStack() as stack:
            got = stack.enter_context(self._file_lock(key, wait=wait, poll_seconds=poll_seconds,
                                                      should_stop=should_stop))
            if got:
                got = stack.enter_context(self.shared_lock.hold(key, wait=wait, poll_seconds=poll_seconds,
                                                                should_stop=should_stop))
            yield got

    @contextlib.contextmanager
    def _file_lock(self, key: str, *, wait: bool, poll_seconds: float, should_stop) -> Iterator[bool]:
        import fcntl

        path = self.lock_path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        acquired = False
        try:
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    acquired = True
                    break
                except OSError as exc:
                    if exc.errno not in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK):
                        raise
                if not wait or should_stop():
                    break
                time.sleep(poll_seconds)
            yield acquired
        finally:
            if acquired:
                fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)
