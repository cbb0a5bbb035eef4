"""Ports of the library context: the model repository and search query, link records, dependency
profiles/bindings, the linker, mapping configs."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from application.ports import Page
from application.ports import UnitOfWork
from domain.library.dependency_model import DependencyBinding, DependencyProfile
from domain.enums import DownloadStatus, ModelType
from domain.library.mapping import AppMapping, LinkMethod, LinkRecord, TargetState
from domain.library.models import Model


class LinkRepository(Protocol):
    """Every link mlxm made into an app's folder. Like a collection: never commits."""

    def add(self, record: LinkRecord) -> LinkRecord: ...
    def list(self, app: str | None = None, model_id: str | None = None) -> list[LinkRecord]: ...
    def remove(self, target_path: str) -> None: ...


class DependencyProfileRepository(Protocol):
    def add(self, profile: DependencyProfile) -> DependencyProfile: ...
    def get(self, profile_id: str, version: int | None = None) -> DependencyProfile | None:
        """A profile version; `version=None` gives the newest one."""
        ...
    def list(self) -> list[DependencyProfile]: ...


class DependencyBindingRepository(Protocol):
    def add(self, binding: DependencyBinding) -> DependencyBinding:
        """Insert, or replace the binding with the same `binding_id`."""
        ...
    def get(self, binding_id: str) -> DependencyBinding | None: ...
    def list(self, model_id: str | None = None) -> list[DependencyBinding]: ...
    def remove(self, binding_id: str) -> None: ...


class LibraryUnitOfWork(UnitOfWork, Protocol):
    """The unit of work with the library pipelines' repositories on the same transaction."""

    links: LinkRepository
    dependency_profiles: DependencyProfileRepository
    dependency_bindings: DependencyBindingRepository


class Linker(Protocol):
    """Makes and inspects links in other apps' folders. Paths are absolute strings.

    A dangling symlink is `TargetState.DANGLING`, never `MISSING`: implementations must test
    with `lexists`/`is_symlink`, never with `exists()`, which follows the link.
    """

    def inspect(self, target: str, source: str, recorded: LinkMethod | None = None,
                fingerprint: str | None = None) -> TargetState:
        """What is at `target` compared with `source`; `recorded` is how mlxm made it, if it did.

        A recorded copy is ours only while `fingerprint(target)` still equals `fingerprint`.
        """
        ...

    def fingerprint(self, target: str) -> str | None:
        """The identity of the file at `target` (changes when it is replaced or rewritten); None if absent."""
        ...

    def link(self, source: str, target: str) -> LinkMethod:
        """Create `target` (which must not exist): symlink, else hardlink, else copy. Parents are created."""
        ...

    def folder_problem(self, path: str) -> str | None:
        """Why links cannot go under `path` (it or a parent is a file or a dangling link), else None."""
        ...

    def readlink(self, target: str) -> str | None:
        """The text of the symlink at `target`, or None when it is not a symlink."""
        ...

    def is_dir(self, target: str) -> bool:
        """A real directory at `target` (a symlink to a directory is not one)."""
        ...

    def remove(self, target: str) -> None:
        """Remove a file or symlink at `target` (never a directory); no error when absent."""
        ...

    def move_aside(self, target: str) -> str:
        """Rename the entry at `target` to a free sibling name and return it (undoable overwrite)."""
        ...

    def restore(self, aside: str, target: str) -> None: ...

    def prune_empty_dirs(self, path: str, stop_at: str) -> None:
        """Remove `path` and its parents while they are empty, never `stop_at` or above."""
        ...

    def list_files(self, root: str) -> list[str]:
        """Relative POSIX paths of the regular files under `root` (skipping dot-folders)."""
        ...

    def dangling_links(self, folder: str) -> list[str]:
        """Absolute paths of dangling symlinks under `folder`."""
        ...


class MappingConfigStore(Protocol):
    """One config per app under `MLX_MANAGER_HOME/mapping-configs/` (JSON or TOML)."""

    def list(self) -> list[AppMapping]: ...
    def get(self, app: str) -> AppMapping | None: ...
    def save(self, mapping: AppMapping) -> None: ...


@dataclass(frozen=True)
class ModelQuery:
    """Library search: free text plus filters applied before the page is cut."""

    text: str | None = None
    model_type: ModelType | None = None
    capability: str | None = None
    status: DownloadStatus | None = None
    limit: int = 50
    offset: int = 0


class ModelRepository(Protocol):
    def add(self, model: Model) -> Model: ...
    def get(self, model_id: str) -> Model | None: ...
    def find(self, name: str) -> Model | None:
        """By model id, canonical id, repo id or alias (case-insensitive)."""
        ...
    def list(self) -> list[Model]: ...
    def search(self, query: ModelQuery) -> Page:
        """Terms match word prefixes (`qwe` finds qwen); all terms must match. Filters apply
        before the page is cut, so `total` counts every match. Ordered by model id."""
        ...
    def with_capability(self, capability: str, model_type: ModelType | None = None) -> list[Model]:
        """Models whose probed capabilities include `capability` (tools, thinking, multi_image,
        video, tts, stt, normalized), optionally of one type. Ordered by model id."""
        ...
    def remove(self, model_id: str) -> None: ...
