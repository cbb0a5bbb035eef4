"""`MemPath`: a pathlib-like view of a path inside an `InMemoryModelStore`.

Unit tests of the use cases run on the in-memory store; with this view they set up and check the
store's files the way the integration tests do it with real paths (`(folder / "w").read_bytes()`),
so the checks read the same in both. It never touches the disk: there is no `__fspath__`.
"""

from __future__ import annotations

import fnmatch
import os
from pathlib import Path
from types import SimpleNamespace

from adapters.memory.model_store import InMemoryModelStore


class MemPath:
    def __init__(self, store: InMemoryModelStore, path: str | Path | MemPath) -> None:
        self.store = store
        self.path = Path(path.path if isinstance(path, MemPath) else path)

    @classmethod
    def new_home(cls, root: str = "/mem") -> MemPath:
        """A fresh store whose home is `<root>/home` (so `home.parent` holds everything outside it)."""
        return cls(InMemoryModelStore(Path(root) / "home"), Path(root) / "home")

    # -- pure path arithmetic ---------------------------------------------------------------
    def __truediv__(self, other: str | Path) -> MemPath:
        return MemPath(self.store, self.path / other)

    def __str__(self) -> str:
        return str(self.path)

    def __repr__(self) -> str:
        return f"MemPath({str(self.path)!r})"

    def __eq__(self, other: object) -> bool:
        if isinstance(other, MemPath):
            return self.path == other.path
        return isinstance(other, Path) and self.path == other

    def __hash__(self) -> int:
        return hash(self.path)

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def parent(self) -> MemPath:
        return MemPath(self.store, self.path.parent)

    @property
    def parents(self) -> list[MemPath]:
        return [MemPath(self.store, p) for p in self.path.parents]

    def relative_to(self, other: MemPath | Path) -> Path:
        return self.path.relative_to(other.path if isinstance(other, MemPath) else other)

    # -- the store's files ---------------------------------------------------------------------
    def exists(self) -> bool:
        return self.store.exists(self.path)

    def lexists(self) -> bool:
        """`os.path.lexists`: a dangling link counts."""
        return self.store.lexists(self.path)

    def is_symlink(self) -> bool:
        return self.store.is_symlink(self.path)

    def is_file(self) -> bool:
        return self.store.is_file(self.path)

    def is_dir(self) -> bool:
        return self.store.is_dir(self.path)

    def read_bytes(self) -> bytes:
        return self.store.read_file(self.path)

    def write_bytes(self, data: bytes) -> None:
        target = self.store.realpath(self.path)
        if target.parent not in self.store.dirs:
            raise FileNotFoundError(self.path)
        self.store.write_file(target, data)

    def write_text(self, text: str, encoding: str = "utf-8") -> None:
        self.write_bytes(text.encode(encoding))

    def read_text(self, encoding: str = "utf-8") -> str:
        return self.read_bytes().decode(encoding)

    def unlink(self, missing_ok: bool = False) -> None:
        self.store.unlink(self.path, missing_ok=missing_ok)

    def mkdir(self, parents: bool = False, exist_ok: bool = False) -> None:
        self.store.mkdir(self.path, parents=parents, exist_ok=exist_ok)

    def symlink_to(self, target: str | Path | MemPath) -> None:
        """Like `os.symlink`: a relative target is relative to the link's folder."""
        target = target.path if isinstance(target, MemPath) else Path(target)
        self.store.symlink_relative(self.path, Path(os.path.normpath(self.path.parent / target)))

    def stat(self) -> SimpleNamespace:
        return SimpleNamespace(st_size=self.store.file_size(self.path))

    def resolve(self) -> MemPath:
        return MemPath(self.store, self.store.realpath(self.path))

    def iterdir(self) -> list[MemPath]:
        return [MemPath(self.store, p) for p in self.store.list_dir(self.path)]

    def _entries(self) -> list[Path]:
        """Everything below this folder, links not followed (like `rglob`)."""
        store = self.store
        with store._lock:  # a pull may still be writing on worker threads
            entries = {*store.files, *store.dirs, *store.links}
        return sorted(p for p in entries if self.path in p.parents)

    def rglob(self, pattern: str) -> list[MemPath]:
        return [MemPath(self.store, p) for p in self._entries() if fnmatch.fnmatchcase(p.name, pattern)]

    def glob(self, pattern: str) -> list[MemPath]:
        depth = pattern.count("/")
        return [MemPath(self.store, p) for p in self._entries()
                if p.relative_to(self.path).as_posix().count("/") == depth
                and fnmatch.fnmatchcase(p.relative_to(self.path).as_posix(), pattern)]
