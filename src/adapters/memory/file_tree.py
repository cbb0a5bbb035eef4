"""`InMemoryFileTree`: files (bytes in a dict), folders (a set) and links (a dict) with pathlib's
semantics, the plain file primitives of the `ModelStore` port. `InMemoryModelStore` builds the
library's layout operations on it (split from `model_store.py` by size).
"""

from __future__ import annotations

import functools
import threading
from pathlib import Path
from typing import Iterator


class InMemoryFileTree:
    def __init__(self, root: Path) -> None:
        # Pulls fetch files on worker threads: every method holds this lock (`lock_every_method`).
        self._lock = threading.RLock()
        self.files: dict[Path, bytes] = {}
        self.dirs: set[Path] = set()
        self.links: dict[Path, Path] = {}  # link -> absolute target
        self._versions: dict[Path, int] = {}  # stands in for mtime: bumps on every write
        self._mkdirs(Path(root))  # and its parents, as on a disk where that folder exists

    def write_file(self, path: Path, data: bytes) -> None:
        self._mkdirs(path.parent)
        self.files[path] = data
        self._versions[path] = self._versions.get(path, 0) + 1

    def append_file(self, path: Path, data: bytes) -> None:
        """What a downloader does with a partial file: add bytes at its end (created if absent)."""
        path = self._resolve(path)
        if path not in self.files and path.parent not in self.dirs:
            raise FileNotFoundError(path)
        self.files[path] = self.files.get(path, b"") + data
        self._versions[path] = self._versions.get(path, 0) + 1

    def read_file(self, path: Path) -> bytes:
        return self.files[self._resolve(path)]

    def _mkdirs(self, path: Path) -> None:
        while path not in self.dirs:
            self.dirs.add(path)
            path = path.parent

    def _resolve(self, path: Path) -> Path:
        parts = Path(path).parts
        current = Path(parts[0])
        for part in parts[1:]:
            current = current / part
            seen = 0
            while current in self.links and seen < 40:
                current, seen = self.links[current], seen + 1
        return current

    def _children(self, folder: Path) -> list[Path]:
        names = [p for p in (*self.files, *self.dirs, *self.links) if p.parent == folder and p != folder]
        return sorted(set(names))

    def _under(self, folder: Path) -> list[Path]:
        return [p for p in (*self.files, *self.dirs, *self.links) if folder in p.parents]

    def _move_tree(self, src: Path, dst: Path) -> None:
        if src not in self.dirs or dst in self.dirs or dst in self.files:
            raise FileExistsError(f"cannot move {src} to {dst}")
        self._mkdirs(dst.parent)
        for table in (self.files, self._versions):
            for path in [p for p in table if p == src or src in p.parents]:
                table[dst / path.relative_to(src)] = table.pop(path)
        for path in [p for p in self.links if src in p.parents]:
            self.links[dst / path.relative_to(src)] = self.links.pop(path)
        for path in [p for p in self.dirs if p == src or src in p.parents]:
            self.dirs.discard(path)
            self.dirs.add(dst / path.relative_to(src))

    def _remove_tree(self, folder: Path) -> None:
        for path in self._under(folder) + [folder]:
            self.files.pop(path, None)
            self._versions.pop(path, None)
            self.links.pop(path, None)
            self.dirs.discard(path)

    def _rmdir_if_empty(self, folder: Path) -> None:
        if folder in self.dirs and not self._children(folder):
            self.dirs.discard(folder)

    def lexists(self, path: Path) -> bool:
        return path in self.files or path in self.dirs or path in self.links

    def realpath(self, path: Path) -> Path:
        return self._resolve(path)

    def walk(self, root: Path, *, top_down: bool = True) -> Iterator[tuple[str, list[str], list[str]]]:
        """Like `os.walk`: links count as files, or as folders when they point at one (never followed)."""
        def entries(folder: Path) -> tuple[list[str], list[str]]:
            dirs, files = [], []
            with self._lock:
                for child in self._children(folder):
                    is_dir = child in self.dirs or (child in self.links and self._resolve(child) in self.dirs)
                    (dirs if is_dir else files).append(child.name)
            return dirs, files

        def visit(folder: Path):
            dirs, files = entries(folder)
            if top_down:
                yield str(folder), dirs, files  # the caller may prune `dirs` in place
            for name in list(dirs):
                if folder / name not in self.links:
                    yield from visit(folder / name)
            if not top_down:
                yield str(folder), dirs, files

        if root in self.dirs:
            yield from visit(root)

    def rename(self, src: Path, dst: Path) -> None:
        if dst in self.files or dst in self.links or (dst in self.dirs and self._children(dst)):
            raise FileExistsError(f"{dst} exists")
        if src in self.links:
            self._mkdirs(dst.parent)
            self.links[dst] = self.links.pop(src)
        elif src in self.files:
            self._mkdirs(dst.parent)
            self.files[dst] = self.files.pop(src)
            self._versions[dst] = self._versions.pop(src, 0)
        elif src in self.dirs:
            self.dirs.discard(dst)
            self._move_tree(src, dst)
        else:
            raise FileNotFoundError(src)

    def remove_tree(self, path: Path) -> None:
        self._remove_tree(path)

    def symlink_relative(self, link: Path, target: Path) -> None:
        if self.lexists(link):
            raise FileExistsError(link)
        self.links[link] = target

    def _bytes(self, path: Path) -> bytes:
        """The bytes of the (resolved) file at `path`, with the errors reading a real file raises."""
        if path in self.files:
            return self.files[path]
        if path in self.dirs:
            raise IsADirectoryError(path)
        raise FileNotFoundError(path)

    def _entry(self, path: Path) -> Path:
        """`path` with its parent folders' links followed, the last part not (like `lstat`)."""
        return self._resolve(path.parent) / path.name

    def exists(self, path: Path) -> bool:
        path = self._resolve(path)
        return path in self.files or path in self.dirs

    def is_file(self, path: Path) -> bool:
        return self._resolve(path) in self.files

    def is_dir(self, path: Path) -> bool:
        return self._resolve(path) in self.dirs

    def is_symlink(self, path: Path) -> bool:
        return self._entry(path) in self.links

    def file_size(self, path: Path) -> int:
        return len(self._bytes(self._resolve(path)))

    def read_text(self, path: Path) -> str:
        return self._bytes(self._resolve(path)).decode("utf-8")

    def write_text(self, path: Path, text: str) -> None:
        path = self._resolve(path)
        if path.parent not in self.dirs:
            raise FileNotFoundError(path)
        if path in self.dirs:
            raise IsADirectoryError(path)
        self.write_file(path, text.encode("utf-8"))

    def unlink(self, path: Path, *, missing_ok: bool = False) -> None:
        path = self._entry(path)
        if path in self.links:
            del self.links[path]
        elif path in self.files:
            del self.files[path]
            self._versions.pop(path, None)
        elif path in self.dirs:
            raise IsADirectoryError(path)
        elif not missing_ok:
            raise FileNotFoundError(path)

    def mkdir(self, path: Path, *, parents: bool = False, exist_ok: bool = False) -> None:
        path = self._entry(path)
        if path in self.dirs or path in self.files or path in self.links:
            if exist_ok and self._resolve(path) in self.dirs:
                return
            raise FileExistsError(path)
        parent = self._resolve(path.parent)
        if parent not in self.dirs:
            if not parents:
                raise FileNotFoundError(path)
            if parent in self.files:
                raise FileExistsError(parent)
            self._mkdirs(parent)
        self.dirs.add(path)

    def rmdir(self, path: Path) -> None:
        path = self._entry(path)
        if path not in self.dirs:
            raise (NotADirectoryError if path in self.files or path in self.links else FileNotFoundError)(path)
        if self._children(path):
            raise OSError(39, "Directory not empty", str(path))
        self.dirs.discard(path)

    def list_dir(self, path: Path) -> list[Path]:
        folder = self._resolve(path)
        if folder not in self.dirs:
            raise (NotADirectoryError if folder in self.files else FileNotFoundError)(path)
        return [path / child.name for child in self._children(folder)]

    def replace(self, src: Path, dst: Path) -> None:
        src, dst = self._entry(src), self._entry(dst)
        if dst in self.dirs:
            raise IsADirectoryError(dst)
        if src not in self.files and src not in self.links:
            raise FileNotFoundError(src)
        self.files.pop(dst, None)
        self.links.pop(dst, None)
        self.rename(src, dst)


def _locked(method):
    @functools.wraps(method)
    def wrapper(self, *args, **kwargs):
        with self._lock:
            return method(self, *args, **kwargs)
    return wrapper


def lock_every_method(cls: type, skip: set[str] = frozenset()) -> None:
    """Wrap `cls`'s own methods in `self._lock`, but `__init__`, `walk` (a generator: it locks each
    folder it lists) and `skip`."""
    for name, value in list(vars(cls).items()):
        if callable(value) and name not in {"__init__", "walk", *skip}:
            setattr(cls, name, _locked(value))


lock_every_method(InMemoryFileTree)
