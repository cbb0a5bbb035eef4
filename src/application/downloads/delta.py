"""Delta updates: a new revision reuses the installed revision's unchanged files instead of fetching them.

A listed file is reused when the installed revision recorded the same sha256 for some file (any
path: content, not name, decides), or, for a small file listed without a sha256, when the file at
the same path has the listed size (its git blob id is then checked by the normal verification).
The reused file is hard-linked into staging by the `ModelStore` (a reflink, then a copy, where
hard links are not possible) and verified like a downloaded one before it counts; the installed revision is never
modified, and stays in use until the new revision is verified and switched.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from application.downloads.ports import RemoteFile
from application.downloads.verification import _verify
from application.errors import IntegrityError
from application.library.ports import ModelStore
from domain.library.models import ModelFile

REUSED_PREFIX = "installed:"  # the source label of a file linked from the installed revision


@dataclass
class ReuseSource:
    """Files of the installed revision, by content and by path."""

    folder: Path
    revision: str | None
    by_sha256: dict[str, str] = field(default_factory=dict)  # sha256 -> relative path
    sizes: dict[str, int] = field(default_factory=dict)  # relative path -> size

    @classmethod
    def from_records(cls, folder: Path, revision: str | None, records) -> "ReuseSource":
        source = cls(Path(folder), revision)
        for record in records:
            if record.sha256:
                source.by_sha256.setdefault(record.sha256.lower(), record.path)
            if record.size is not None:
                source.sizes[record.path] = record.size
        return source

    def candidate(self, store: ModelStore, file: RemoteFile) -> Path | None:
        """The installed file that should hold `file`'s bytes, if any (not yet verified)."""
        if file.sha256:
            path = self.by_sha256.get(file.sha256.lower())
        elif file.size is not None and self.sizes.get(file.path) == file.size:
            path = file.path
        else:
            path = None
        if path is None:
            return None
        candidate = self.folder / path
        return candidate if store.is_file(candidate) and not store.is_symlink(candidate) else None

    @property
    def label(self) -> str:
        return f"{REUSED_PREFIX}{(self.revision or '?')[:12]}"


def reuse_installed(store: ModelStore, reuse: ReuseSource | None, file: RemoteFile, final: Path,
                    final_cache: Path) -> ModelFile | None:
    """Link an unchanged file from the installed revision into staging and verify it (None: fetch it)."""
    candidate = reuse.candidate(store, file) if reuse is not None else None
    if candidate is None:
        return None
    store.link_or_copy(candidate, final)
    try:
        digest = _verify(store, file, final, use_cache=False)
    except IntegrityError:
        store.unlink(final, missing_ok=True)  # the installed copy is not what the new revision lists: fetch it
        store.unlink(final_cache, missing_ok=True)
        return None
    return ModelFile(file.path, store.file_size(final), digest, file.revision, reuse.label)  # type: ignore[union-attr]


def linked_label(store: ModelStore, reuse: ReuseSource | None, file: RemoteFile, staged: Path) -> str | None:
    """A file staged by an earlier run that is a hard link of the installed one still counts as reused."""
    candidate = reuse.candidate(store, file) if reuse is not None else None
    return reuse.label if candidate is not None and store.same_file(candidate, staged) else None  # type: ignore[union-attr]


def byte_counts(records) -> tuple[int, int]:
    """(fetched from a source in this run, reused from the installed revision)."""
    reused = sum(r.size for r in records if (r.source or "").startswith(REUSED_PREFIX))
    fetched = sum(r.size for r in records if r.source and not r.source.startswith(REUSED_PREFIX))
    return fetched, reused
