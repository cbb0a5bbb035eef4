"""Naming rules of the on-disk library, and the provenance manifest (values only; the
`ModelStore` port and its filesystem adapter do the I/O).

Layout under `MLX_MANAGER_HOME` (each model stored exactly once; the HF cache is not used)::

    models/<key>                       symlink -> .revisions/<key>/<sha>  (what users and runtimes open)
    models/.revisions/<key>/<sha>/     the installed revision's files + .mlxm.json (provenance manifest)
    staging/<key-with-/-as-->/<sha>/   a pull in progress: verified files only, in the model's tree
    staging/<key-with-/-as-->/<sha>.meta/  its scratch: `<quoted path>.part` partials and hash caches
    staging/<key-with-/-as-->.lock     flock held by the one process pulling that model
    staging/<key-with-/-as-->.stop     "<download id> pause|cancel": asked of that process by another one
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path

MANIFEST_NAME = ".mlxm.json"
PART_SUFFIX = ".part"
SCRATCH_SUFFIX = ".meta"


@dataclass
class Manifest:
    """Provenance of one installed revision, written by mlxm."""

    key: str
    repo_id: str | None
    revision: str
    source: str | None
    files: list[dict] = field(default_factory=list)  # {"path", "size", "sha256"}
    created_by: str = "mlxm"  # "mlxm" (downloaded) or "adopted" (a verified folder mlxm did not create)
    adopted_from: str | None = None
    # The user's metadata overlays (`domain.library.overlays.overlay_to_dict`): a library rebuilt
    # from disk after losing its database gets them back.
    overlays: list[dict] = field(default_factory=list)

    def to_json(self) -> str:
        return json.dumps(self.__dict__, indent=2, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> "Manifest | None":
        """The manifest in `text`; None when it is not one (corrupt, or not an object)."""
        try:
            data = json.loads(text)
            return cls(**{k: data.get(k) for k in cls.__dataclass_fields__ if k in data})
        except (ValueError, TypeError):
            return None


_COMMIT_SHA = re.compile(r"[0-9a-f]{40}")
# A revision folder name: a commit sha, or mlxm's own `import-<hex>`; never a path.
_REVISION_FOLDER = re.compile(r"[0-9A-Za-z][0-9A-Za-z_-]{0,99}")


def is_commit_sha(value: object) -> bool:
    """40 lowercase hex characters: the only revision a remote source may name a folder with."""
    return isinstance(value, str) and _COMMIT_SHA.fullmatch(value) is not None


def check_revision_folder(revision: str) -> str:
    """Refuse a revision that is not one plain folder name (a hostile source could send `../..`)."""
    if not isinstance(revision, str) or _REVISION_FOLDER.fullmatch(revision) is None:
        raise ValueError(f"refusing revision {str(revision)[:60]!r} as a folder name")
    return revision


def safe_name(key: str) -> str:
    return key.replace("/", "--")


def scratch_name(path: str) -> str:
    """One flat, distinct file name per repo path (`a/b.json` -> `a%2Fb.json`) for the scratch folder."""
    from urllib.parse import quote

    name = quote(path, safe="")
    if len(name) > 180:  # keep clear of the 255-byte name limit; still one name per path
        import hashlib

        name = name[:100] + "." + hashlib.sha256(path.encode()).hexdigest()
    return name


class LibraryPaths:
    """Where things go under `home` (path arithmetic only; every `ModelStore` adapter shares it)."""

    def __init__(self, home: Path) -> None:
        self.home = Path(home)

    @property
    def models_dir(self) -> Path:
        return self.home / "models"

    @property
    def revisions_dir(self) -> Path:
        return self.models_dir / ".revisions"

    @property
    def staging_dir(self) -> Path:
        return self.home / "staging"

    def model_path(self, key: str) -> Path:
        return self.models_dir / key

    def revision_dir(self, key: str, revision: str) -> Path:
        return self.revisions_dir / key / check_revision_folder(revision)

    def staging_root(self, key: str) -> Path:
        return self.staging_dir / safe_name(key)

    def staging_for(self, key: str, revision: str) -> Path:
        return self.staging_root(key) / check_revision_folder(revision)

    def scratch_for(self, key: str, revision: str) -> Path:
        """Partial files and hash caches of a pull: beside the staged tree, never inside it.

        A repo may hold files named like mlxm's scratch files (`X.part`, `X.sha256`), so the
        staged tree holds only the model's own files.
        """
        return self.staging_root(key) / (check_revision_folder(revision) + SCRATCH_SUFFIX)

    def lock_path(self, key: str) -> Path:
        return self.staging_dir / (safe_name(key) + ".lock")

    def stop_request_path(self, key: str) -> Path:
        """`staging/<key>.stop`: a pause or cancel another process asks of the lock's holder."""
        return self.staging_dir / (safe_name(key) + ".stop")
