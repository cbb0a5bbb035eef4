"""In-memory fakes of the library pipelines' ports: link records, dependency profiles and
bindings, mapping configs, and a linker over a simulated filesystem."""

from __future__ import annotations

import itertools
import posixpath
from dataclasses import replace

from domain.library.dependency_model import DependencyBinding, DependencyProfile
from domain.library.mapping import (
    AppMapping,
    InvalidMappingConfig,
    LinkMethod,
    LinkRecord,
    TargetState,
    validate_app_name,
)


class InMemoryLinkRepository:
    def __init__(self) -> None:
        self._items: dict[str, LinkRecord] = {}
        self._ids = itertools.count(1)

    def add(self, record: LinkRecord) -> LinkRecord:
        existing = self._items.get(record.target_path)
        record = replace(record, id=existing.id if existing else (record.id or next(self._ids)))
        self._items[record.target_path] = record
        return record

    def list(self, app: str | None = None, model_id: str | None = None) -> list[LinkRecord]:
        return sorted(
            (r for r in self._items.values()
             if (app is None or r.app == app) and (model_id is None or r.model_id == model_id)),
            key=lambda r: r.target_path,
        )

    def remove(self, target_path: str) -> None:
        self._items.pop(target_path, None)


class InMemoryDependencyProfileRepository:
    def __init__(self) -> None:
        self._items: dict[tuple[str, int], DependencyProfile] = {}

    def add(self, profile: DependencyProfile) -> DependencyProfile:
        self._items[(profile.profile_id, profile.version)] = profile
        return profile

    def get(self, profile_id: str, version: int | None = None) -> DependencyProfile | None:
        if version is not None:
            return self._items.get((profile_id, version))
        versions = [p for (pid, _), p in self._items.items() if pid == profile_id]
        return max(versions, key=lambda p: p.version, default=None)

    def list(self) -> list[DependencyProfile]:
        return sorted(self._items.values(), key=lambda p: (p.profile_id, p.version))


class InMemoryDependencyBindingRepository:
    def __init__(self) -> None:
        self._items: dict[str, DependencyBinding] = {}

    def add(self, binding: DependencyBinding) -> DependencyBinding:
        self._items[binding.binding_id] = binding
        return binding

    def get(self, binding_id: str) -> DependencyBinding | None:
        return self._items.get(binding_id)

    def list(self, model_id: str | None = None) -> list[DependencyBinding]:
        return sorted(
            (b for b in self._items.values() if model_id is None or b.model_id == model_id),
            key=lambda b: b.binding_id,
        )

    def remove(self, binding_id: str) -> None:
        self._items.pop(binding_id, None)


class InMemoryMappingConfigStore:
    def __init__(self, mappings: list[AppMapping] | None = None, *, broken: dict[str, str] | None = None) -> None:
        self.mappings = {m.app: m for m in mappings or []}
        self.broken = dict(broken or {})  # app -> why its config cannot be used (a damaged file, in the file store)

    def list(self) -> list[AppMapping]:
        if self.broken:
            app = min(self.broken)
            raise InvalidMappingConfig(app, self.broken[app])
        return [self.mappings[k] for k in sorted(self.mappings)]

    def survey(self) -> tuple[list[AppMapping], list[InvalidMappingConfig]]:
        return ([self.mappings[k] for k in sorted(self.mappings) if k not in self.broken],
                [InvalidMappingConfig(app, self.broken[app]) for app in sorted(self.broken)])

    def get(self, app: str) -> AppMapping | None:
        validate_app_name(app)  # as the file store: a bad name is the caller's mistake (400), not "not found"
        if app in self.broken:
            raise InvalidMappingConfig(app, self.broken[app])
        return self.mappings.get(app)


class InMemoryLinker:
    """A linker over a dict-backed filesystem, for unit tests of the mapping use cases.

    Entries: `("file", inode, size)`, `("symlink", target)` or `("dir",)`. `symlinks=False`
    or `hardlinks=False` simulate filesystems without them (the fallback chain).
    """

    def __init__(self, *, symlinks: bool = True, hardlinks: bool = True) -> None:
        self.entries: dict[str, tuple] = {"/": ("dir",)}
        self.symlinks = symlinks
        self.hardlinks = hardlinks
        self._inodes = itertools.count(1)

    # -- test set-up ------------------------------------------------------------------
    def add_file(self, path: str, size: int = 1) -> None:
        self._mkdirs(posixpath.dirname(path))
        self.entries[path] = ("file", next(self._inodes), size)

    def add_symlink(self, path: str, to: str) -> None:
        self._mkdirs(posixpath.dirname(path))
        self.entries[path] = ("symlink", to)

    def add_dir(self, path: str) -> None:
        self._mkdirs(path)

    def delete(self, path: str) -> None:
        for key in [k for k in self.entries if k == path or k.startswith(path.rstrip("/") + "/")]:
            del self.entries[key]

    # -- helpers ----------------------------------------------------------------------
    def _mkdirs(self, path: str) -> None:
        path = posixpath.normpath(path)
        while path not in self.entries:
            self.entries[path] = ("dir",)
            path = posixpath.dirname(path)

    def _resolve(self, path: str, depth: int = 0) -> str | None:
        """Follow symlinks; None when the chain ends nowhere."""
        entry = self.entries.get(path)
        if entry is None or depth > 20:
            return None
        if entry[0] == "symlink":
            to = entry[1] if entry[1].startswith("/") else posixpath.join(posixpath.dirname(path), entry[1])
            return self._resolve(posixpath.normpath(to), depth + 1)
        return path

    def exists(self, path: str) -> bool:
        return self._resolve(path) is not None

    def lexists(self, path: str) -> bool:
        return path in self.entries

    # -- the port ---------------------------------------------------------------------
    def inspect(self, target: str, source: str, recorded: LinkMethod | None = None,
                fingerprint: str | None = None) -> TargetState:
        entry = self.entries.get(target)
        if entry is None:
            return TargetState.MISSING
        if entry[0] == "symlink":
            resolved = self._resolve(target)
            if resolved is None:
                return TargetState.DANGLING
            return TargetState.OURS if resolved == self._resolve(source) else TargetState.OTHER
        if entry[0] == "file":
            real_source = self._resolve(source)
            source_entry = self.entries.get(real_source) if real_source else None
            if source_entry and source_entry[0] == "file":
                if entry[1] == source_entry[1]:
                    return TargetState.OURS
                if recorded is LinkMethod.COPY and fingerprint is not None and fingerprint == self.fingerprint(target):
                    return TargetState.OURS
        return TargetState.OTHER

    def fingerprint(self, target: str) -> str | None:
        entry = self.entries.get(target)
        return f"{entry[1]}:{entry[2]}" if entry is not None and entry[0] == "file" else None

    def link(self, source: str, target: str) -> LinkMethod:
        if self.lexists(target):
            raise FileExistsError(target)
        real = self._resolve(source)
        if real is None or self.entries[real][0] != "file":
            raise FileNotFoundError(source)
        if self.folder_problem(posixpath.dirname(target)):
            raise NotADirectoryError(20, "Not a directory", target)
        self._mkdirs(posixpath.dirname(target))
        if self.symlinks:
            self.entries[target] = ("symlink", source)
            return LinkMethod.SYMLINK
        if self.hardlinks:
            self.entries[target] = self.entries[real]
            return LinkMethod.HARDLINK
        _, _, size = self.entries[real]
        self.entries[target] = ("file", next(self._inodes), size)
        return LinkMethod.COPY

    def folder_problem(self, path: str) -> str | None:
        current = posixpath.normpath(path)
        while True:
            if current in self.entries:
                resolved = self._resolve(current)
                if resolved is not None and self.entries[resolved][0] == "dir":
                    return None
                kind = "a dangling symlink" if resolved is None else "a file"
                return f"{current} is {kind}, not a folder"
            parent = posixpath.dirname(current)
            if parent == current:
                return None
            current = parent

    def readlink(self, target: str) -> str | None:
        entry = self.entries.get(target)
        return entry[1] if entry is not None and entry[0] == "symlink" else None

    def is_dir(self, target: str) -> bool:
        entry = self.entries.get(target)
        return entry is not None and entry[0] == "dir"

    def remove(self, target: str) -> None:
        entry = self.entries.get(target)
        if entry is None:
            return
        if entry[0] == "dir":
            raise IsADirectoryError(target)
        del self.entries[target]

    def move_aside(self, target: str) -> str:
        for n in itertools.count(1):
            aside = f"{target}.mlxm-replaced-{n}"
            if aside not in self.entries:
                break
        for key in [k for k in self.entries if k == target or k.startswith(target + "/")]:
            self.entries[aside + key[len(target):]] = self.entries.pop(key)
        return aside

    def restore(self, aside: str, target: str) -> None:
        self.entries.pop(target, None)
        for key in [k for k in self.entries if k == aside or k.startswith(aside + "/")]:
            self.entries[target + key[len(aside):]] = self.entries.pop(key)

    def prune_empty_dirs(self, path: str, stop_at: str) -> None:
        path, stop_at = posixpath.normpath(path), posixpath.normpath(stop_at)
        while path != stop_at and path.startswith(stop_at + "/") and self.is_dir(path):
            if any(k.startswith(path + "/") for k in self.entries):
                return
            del self.entries[path]
            path = posixpath.dirname(path)

    def list_files(self, root: str) -> list[str]:
        root = posixpath.normpath(root)
        found = []
        for key, entry in self.entries.items():
            if key.startswith(root + "/") and entry[0] != "dir":
                relative = key[len(root) + 1:]
                if not any(part.startswith(".") for part in relative.split("/")) and self.exists(key):
                    found.append(relative)
        return sorted(found)

    def dangling_links(self, folder: str) -> list[str]:
        folder = posixpath.normpath(folder)
        return sorted(
            key for key, entry in self.entries.items()
            if key.startswith(folder + "/") and entry[0] == "symlink" and self._resolve(key) is None
        )
