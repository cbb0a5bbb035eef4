"""The last accepted catalog under the home: `<home>/catalog/remote.json` + `.sig` + `state.json`."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

from application.catalog.ports import CachedCatalog


def _atomic_write(path: Path, data: bytes) -> None:
    # A temp file in the same folder, fsynced, then renamed: readers see the old file or the new one.
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temp, path)
    except BaseException:
        with_suppressed_unlink(temp)
        raise


def with_suppressed_unlink(path: str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


class FilesystemCatalogCache:
    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self._catalog = self.root / "remote.json"
        self._signature = self.root / "remote.json.sig"
        self._state = self.root / "state.json"

    def read(self) -> CachedCatalog | None:
        try:
            return CachedCatalog(self._catalog.read_bytes(), self._signature.read_bytes())
        except FileNotFoundError:
            return None

    def write(self, entry: CachedCatalog) -> None:
        # Signature first: a crash in between leaves a pair that fails verification (and is not used),
        # never a new catalog passing under an old signature.
        _atomic_write(self._signature, entry.signature)
        _atomic_write(self._catalog, entry.data)

    def read_state(self) -> dict:
        try:
            state = json.loads(self._state.read_text(encoding="utf-8"))
        except (FileNotFoundError, ValueError):
            return {}
        return state if isinstance(state, dict) else {}

    def write_state(self, state: dict) -> None:
        _atomic_write(self._state, (json.dumps(state, indent=1, sort_keys=True) + "\n").encode("utf-8"))
