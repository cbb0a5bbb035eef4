"""The last accepted catalog under the home: `<home>/catalog/remote.json` + `.sig` + `state.json`."""

from __future__ import annotations

import json
from pathlib import Path

from adapters.filesystem.durability import write_atomic as _atomic_write
from application.catalog.ports import CachedCatalog


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
