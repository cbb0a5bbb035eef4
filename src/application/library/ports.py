"""Ports of the library context: the model store (files on disk), the model repository and search
query, link records, dependency profiles/bindings, the linker, mapping configs."""

from __future__ import annotations

from dataclasses import dataclass
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Callable, ContextManager, Iterator, Protocol

from application.ports import Page
from application.ports import UnitOfWork
from domain.library.layout import Manifest
from domain.library.dependency_model import DependencyBinding, DependencyProfile
from domain.enums import DownloadStatus, ModelType
from domain.library.mapping import AppMapping, InvalidMappingConfig, LinkMethod, LinkRecord, TargetState
from domain.library.models import Model
from domain.library.overlays import ModelOverlays


class ModelOverlayRepository(Protocol):
    """The user's overlays over each model's inferred metadata (`uow.overlays`). Never commits.

    Overlays belong to their model: removing the model removes them.
    """

    def get(self, model_id: str) -> ModelOverlays:
        """The model's overlays (none: an empty `ModelOverlays`, also for an unknown model)."""
        ...
    def add(self, overlays: ModelOverlays) -> None:
        """Replace the model's overlays with these (no items: all go). LookupError for an unknown model."""
        ...
    def list(self) -> list[ModelOverlays]:
        """Every model that has overlays, by model id."""
        ...


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
    """One config per app under `MLX_MANAGER_HOME/mapping-configs/` (JSON or TOML). Read-only: the user
    writes and edits these files; no use case writes one."""

    def list(self) -> list[AppMapping]:
        """Every config; InvalidMappingConfig when any one of them cannot be used."""
        ...
    def survey(self) -> tuple[list[AppMapping], list[InvalidMappingConfig]]:
        """The usable configs, and one InvalidMappingConfig per config that is not (never hides the others)."""
        ...
    def get(self, app: str) -> AppMapping | None: ...


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


class ModelStore(Protocol):
    """The library's files: layout, staging, the atomic install switch, fsync, locks, hash caches.

    Paths are the store's handles: the use cases compute nothing on disk themselves. One adapter
    per storage technology (`adapters/filesystem/model_store.py`; `adapters/memory/model_store.py`
    for unit tests); `tests/contract/test_model_store_contract.py` runs against both.
    """

    home: Path

    @property
    def models_dir(self) -> Path: ...
    @property
    def revisions_dir(self) -> Path: ...
    @property
    def staging_dir(self) -> Path: ...
    def model_path(self, key: str) -> Path:
        """`models/<key>`: what users and runtimes open (mlxm's symlink to the installed revision)."""
        ...
    def revision_dir(self, key: str, revision: str) -> Path:
        """Raises ValueError for a revision that is not one plain folder name."""
        ...
    def staging_root(self, key: str) -> Path: ...
    def staging_for(self, key: str, revision: str) -> Path: ...
    def scratch_for(self, key: str, revision: str) -> Path:
        """Partials and hash caches of a pull, beside the staged tree (never inside it)."""
        ...
    def lock_path(self, key: str) -> Path: ...
    def installed_revision_dir(self, key: str) -> Path | None:
        """The revision folder `models/<key>` points at, when it is mlxm's link and intact."""
        ...
    def is_foreign_folder(self, path: Path) -> bool:
        """A real folder (not mlxm's link) that holds files: mlxm never deletes it."""
        ...
    def install(self, key: str, revision: str, staged: Path, manifest: Manifest) -> Path:
        """Durable, then visible in one atomic switch: `models/<key>` points at the new revision.
        Raises IntegrityError when a listed file is missing or has the wrong size."""
        ...
    def uninstall(self, key: str, revision: str, staged: Path, previous: Path | None) -> None:
        """Undo `install` (the library row could not be written): the link points back at
        `previous` (or goes) and the revision folder moves back to `staged`."""
        ...
    def adopt(self, key: str, revision: str, folder: Path, manifest: Manifest) -> Path:
        """Move a verified foreign folder into the layout (a rename: never a copy, never a delete)."""
        ...
    def replace_installed_files(self, key: str, staged: Path, paths: list[str]) -> Path:
        """Repair: put verified staged files (relative `paths` under `staged`) into the installed
        revision, each flushed and then switched in one atomic rename (a reader sees the damaged file
        or the repaired one, never a half file); the revision's other files are not touched.
        Raises FileNotFoundError when `models/<key>` is not mlxm's link to an installed revision."""
        ...
    def stop_request_path(self, key: str) -> Path:
        """Beside the model's lock file: a pause or cancel asked by another process (see downloads)."""
        ...
    def remove_revision(self, key: str, revision: str) -> bool:
        """Delete a revision folder, only one mlxm downloaded itself; True when it went."""
        ...
    def clear_staging(self, key: str, keep_revision: str | None = None) -> None: ...
    def staged_bytes(self, key: str, revision: str) -> int:
        """Bytes a resume will not fetch again: verified staged files plus partials."""
        ...
    def model_lock(self, key: str, *, wait: bool = True, poll_seconds: float = 0.1,
                   should_stop: Callable[[], bool] = lambda: False) -> AbstractContextManager[bool]:
        """One writer per model across processes; yields False when not acquired (`wait=False`
        or `should_stop()`). Released when the holder dies."""
        ...
    def read_manifest(self, folder: Path) -> Manifest | None:
        """The provenance manifest in `folder`; None when absent or unreadable."""
        ...
    def sha256_of(self, path: Path, *, use_cache: bool = True, cache: Path | None = None) -> str:
        """From a still-valid hash cache (same size and mtime) or by reading the file."""
        ...
    def sha256_and_git_sha1(self, path: Path, size: int) -> tuple[str, str]: ...
    def hash_cache_path(self, path: Path) -> Path: ...
    def drop_hash_cache(self, path: Path) -> None: ...
    def fsync_file(self, path: Path) -> None: ...
    def free_staging_bytes(self) -> int: ...
    def first_symlink(self, folder: Path) -> Path | None: ...
    def prune_unlisted(self, staging: Path, listed: set[str]) -> None:
        """Delete files under `staging` whose relative path is not in `listed`."""
        ...
    # File primitives of import, delete and recovery: the use cases decide, the store touches the disk.
    def lexists(self, path: Path) -> bool:
        """True for anything at `path`, a dangling link included."""
        ...
    def realpath(self, path: Path) -> Path: ...
    def walk(self, root: Path, *, top_down: bool = True) -> Iterator[tuple[str, list[str], list[str]]]:
        """(folder, dirs, files) like `os.walk`; top-down callers may prune `dirs` in place."""
        ...
    def rename(self, src: Path, dst: Path) -> None:
        """Atomic on one filesystem; OSError with errno EXDEV across filesystems."""
        ...
    def remove_tree(self, path: Path) -> None:
        """Delete a folder and everything in it; errors are ignored (what is left stays)."""
        ...
    def symlink_relative(self, link: Path, target: Path) -> None: ...
    def hash_file(self, path: Path) -> tuple[int, str]:
        """(size, sha256) of the bytes read."""
        ...
    def copy_and_hash(self, src: Path, dst: Path) -> tuple[int, str]:
        """Copy into a NEW file `dst` (FileExistsError when there is one); (size, sha256) of the bytes written."""
        ...
    def link_or_copy(self, src: Path, dst: Path) -> str:
        """`src`'s bytes at `dst` (replacing what is there): a hard link, else a reflink, else a copy;
        returns "hardlink", "reflink" or "copy". Delta updates: mlxm never writes a model file in place."""
        ...
    def same_file(self, a: Path, b: Path) -> bool:
        """Both names are one file (a hard link of each other); False when either is missing."""
        ...
    def safetensors_tensor_names(self, path: Path, label: str | None = None) -> list[str]:
        """Tensor names from a safetensors header (InvalidRequest when the file is not well formed)."""
        ...
    # Plain file primitives (the pathlib calls the use cases used to make themselves). Like pathlib,
    # `exists`/`is_file`/`is_dir`/`file_size`/`read_text` follow links; `is_symlink`/`unlink` do not.
    def exists(self, path: Path) -> bool: ...
    def is_file(self, path: Path) -> bool: ...
    def is_dir(self, path: Path) -> bool: ...
    def is_symlink(self, path: Path) -> bool: ...
    def file_size(self, path: Path) -> int:
        """Bytes in the file at `path` (FileNotFoundError when there is none)."""
        ...
    def read_text(self, path: Path) -> str:
        """UTF-8 text of the file (OSError when absent or unreadable)."""
        ...
    def write_text(self, path: Path, text: str) -> None:
        """Create or overwrite a file with UTF-8 text; the folder must exist."""
        ...
    def unlink(self, path: Path, *, missing_ok: bool = False) -> None:
        """Remove a file or a link (never a folder)."""
        ...
    def mkdir(self, path: Path, *, parents: bool = False, exist_ok: bool = False) -> None: ...
    def rmdir(self, path: Path) -> None:
        """Remove an empty folder (OSError when it is not empty)."""
        ...
    def list_dir(self, path: Path) -> list[Path]:
        """The entries of a folder, sorted (links are entries, never followed)."""
        ...
    def replace(self, src: Path, dst: Path) -> None:
        """Rename `src` to `dst`, replacing a file at `dst` (atomic on one filesystem)."""
        ...
    # Journals: what a crash must find (an import's record is written before the user's folder moves).
    def write_journal(self, path: Path, record: dict) -> None:
        """Replace the JSON object at `path` atomically, and durably (file and folder synced) before returning."""
        ...
    def read_journal(self, path: Path) -> dict | None:
        """The JSON object at `path`; None when absent or unreadable."""
        ...


class SharedLock(Protocol):
    """A lock shared by every process that uses the same database (several hosts on one PostgreSQL)."""

    def hold(self, key: str, *, wait: bool = True, poll_seconds: float = 0.1,
             should_stop: Callable[[], bool] = lambda: False) -> ContextManager[bool]:
        """Hold the lock named `key` for the `with` block; yields False when not acquired
        (`wait=False` and taken, or `should_stop()` turned true while waiting). Released when the
        block ends and, should the holder die, by the database itself."""
        ...
