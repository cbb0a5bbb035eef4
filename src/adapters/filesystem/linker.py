"""`FilesystemLinker`: links library files into other apps' folders.

Symlink first, then hardlink (same filesystem, no symlink support), then copy. A dangling
symlink is reported as such: every check uses `os.path.lexists`/`os.path.islink`, because
`exists()` follows the link and would call a dangling one "nothing there" (and a copy would
then write through it).
"""

from __future__ import annotations

import itertools
import os
import shutil
import uuid

from domain.library.mapping import LinkMethod, TargetState

DEFAULT_METHODS = (LinkMethod.SYMLINK, LinkMethod.HARDLINK, LinkMethod.COPY)


class FilesystemLinker:
    def __init__(self, methods: tuple[LinkMethod, ...] = DEFAULT_METHODS) -> None:
        self._methods = tuple(methods)

    def inspect(self, target: str, source: str, recorded: LinkMethod | None = None,
                fingerprint: str | None = None) -> TargetState:
        if not os.path.lexists(target):
            return TargetState.MISSING
        if os.path.islink(target):
            if not os.path.exists(target):  # follows the link: false only when it dangles
                return TargetState.DANGLING
            same = os.path.exists(source) and os.path.realpath(target) == os.path.realpath(source)
            return TargetState.OURS if same else TargetState.OTHER
        if os.path.isdir(target):
            return TargetState.OTHER
        try:
            here = os.stat(target)
            there = os.stat(source)
        except OSError:
            return TargetState.OTHER
        if (here.st_dev, here.st_ino) == (there.st_dev, there.st_ino):
            return TargetState.OURS
        if recorded is LinkMethod.COPY and fingerprint is not None and fingerprint == self.fingerprint(target):
            return TargetState.OURS
        return TargetState.OTHER

    def fingerprint(self, target: str) -> str | None:
        try:
            info = os.lstat(target)
        except OSError:
            return None
        return f"{info.st_dev}:{info.st_ino}:{info.st_size}:{info.st_mtime_ns}"

    def link(self, source: str, target: str) -> LinkMethod:
        if os.path.lexists(target):
            raise FileExistsError(target)
        if not os.path.isfile(source):
            raise FileNotFoundError(source)
        os.makedirs(os.path.dirname(target), exist_ok=True)
        last_error: OSError | None = None
        for method in self._methods:
            try:
                if method is LinkMethod.SYMLINK:
                    os.symlink(os.path.abspath(source), target)
                elif method is LinkMethod.HARDLINK:
                    os.link(os.path.realpath(source), target)
                else:
                    self._copy(source, target)
                return method
            except FileExistsError:
                # Someone created the target meanwhile: never clobber it.
                raise
            except OSError as exc:  # unsupported here (EPERM, EXDEV, ENOTSUP...): try the next method
                last_error = exc
        raise last_error or OSError(f"no link method available for {target}")

    def folder_problem(self, path: str) -> str | None:
        current = os.path.abspath(path)
        while True:
            if os.path.lexists(current):
                if os.path.isdir(current):  # follows links: a link to a folder is usable
                    return None
                if os.path.islink(current):
                    return f"{current} is a dangling symlink, not a folder"
                return f"{current} is a file, not a folder"
            parent = os.path.dirname(current)
            if parent == current:
                return None
            current = parent

    @staticmethod
    def _copy(source: str, target: str) -> None:
        # Write beside the target and rename: the target path is never opened for writing,
        # so nothing can be written through a link that appeared there.
        tmp = os.path.join(os.path.dirname(target), f".{os.path.basename(target)}.mlxm-{uuid.uuid4().hex}")
        try:
            shutil.copyfile(source, tmp)
            shutil.copystat(source, tmp)
            if os.path.lexists(target):
                raise FileExistsError(target)
            os.rename(tmp, target)
        finally:
            if os.path.lexists(tmp):
                os.unlink(tmp)

    def readlink(self, target: str) -> str | None:
        return os.readlink(target) if os.path.islink(target) else None

    def is_dir(self, target: str) -> bool:
        return os.path.isdir(target) and not os.path.islink(target)

    def remove(self, target: str) -> None:
        if not os.path.lexists(target):
            return
        if self.is_dir(target):
            raise IsADirectoryError(target)
        os.unlink(target)

    def move_aside(self, target: str) -> str:
        for n in itertools.count(1):
            aside = f"{target}.mlxm-replaced-{n}"
            if not os.path.lexists(aside):
                os.rename(target, aside)
                return aside
        raise AssertionError("unreachable")

    def restore(self, aside: str, target: str) -> None:
        if os.path.lexists(target) and not self.is_dir(target):
            os.unlink(target)
        os.rename(aside, target)

    def prune_empty_dirs(self, path: str, stop_at: str) -> None:
        path = os.path.normpath(path)
        stop_at = os.path.normpath(stop_at)
        while path != stop_at and path.startswith(stop_at + os.sep) and self.is_dir(path):
            try:
                os.rmdir(path)
            except OSError:  # not empty (or not ours to remove): stop here
                return
            path = os.path.dirname(path)

    def list_files(self, root: str) -> list[str]:
        found = []
        for folder, dirs, files in os.walk(root):
            dirs[:] = sorted(d for d in dirs if not d.startswith("."))
            for name in files:
                path = os.path.join(folder, name)
                if not name.startswith(".") and os.path.isfile(path):
                    found.append(os.path.relpath(path, root).replace(os.sep, "/"))
        return sorted(found)

    def dangling_links(self, folder: str) -> list[str]:
        found = []
        for current, dirs, files in os.walk(folder):
            for name in files + dirs:
                path = os.path.join(current, name)
                if os.path.islink(path) and not os.path.exists(path):
                    found.append(path)
        return sorted(found)
