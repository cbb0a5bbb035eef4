"""`FileMappingConfigStore`: one app mapping per file under `MLX_MANAGER_HOME/mapping-configs/`.

`<app>.json` or `<app>.toml` (read with the standard library's `tomllib`)::

    {"app": "lmstudio", "root": "~/.lmstudio/models",
     "rules": [{"target": "mlxm", "model_types": ["text-gen"], "exclude_tags": ["draft"]}]}
"""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

from domain.library.mapping import (
    AppMapping,
    InvalidMappingConfig,
    app_mapping_from_dict,
    validate_app_name,
)

SUFFIXES = (".json", ".toml")


class FileMappingConfigStore:
    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder)

    def _scan(self) -> tuple[dict[str, Path], list[InvalidMappingConfig]]:
        """The config file of each app, and a problem for each app with two of them."""
        found: dict[str, Path] = {}
        problems: dict[str, InvalidMappingConfig] = {}
        if not self.folder.is_dir():
            return found, []
        for path in sorted(self.folder.iterdir()):
            if path.suffix in SUFFIXES and path.is_file() and not path.name.startswith("."):
                if path.stem in found:
                    problems[path.stem] = InvalidMappingConfig(
                        path.stem, f"both {found[path.stem].name} and {path.name} exist; keep one")
                    continue
                found[path.stem] = path
        return {app: path for app, path in found.items() if app not in problems}, list(problems.values())

    def _files(self) -> dict[str, Path]:
        found, problems = self._scan()
        if problems:
            raise problems[0]
        return found

    @staticmethod
    def _read(app: str, path: Path) -> AppMapping:
        try:
            raw = path.read_bytes()
            data = tomllib.loads(raw.decode("utf-8")) if path.suffix == ".toml" else json.loads(raw)
        # JSONDecodeError and TOMLDecodeError are ValueErrors; RecursionError: nested deeper than the decoder goes
        except (OSError, UnicodeDecodeError, ValueError, RecursionError) as exc:
            raise InvalidMappingConfig(app, f"cannot read {path}: {exc}") from None
        if not isinstance(data, dict):
            raise InvalidMappingConfig(app, f"{path} must hold an object")
        return app_mapping_from_dict(data, default_app=app)

    def list(self) -> list[AppMapping]:
        return [self._read(app, path) for app, path in self._files().items()]

    def survey(self) -> tuple[list[AppMapping], list[InvalidMappingConfig]]:
        found, problems = self._scan()
        mappings = []
        for app, path in found.items():
            try:
                mappings.append(self._read(app, path))
            except InvalidMappingConfig as exc:
                problems.append(exc)
        return mappings, sorted(problems, key=lambda p: p.app)

    def get(self, app: str) -> AppMapping | None:
        validate_app_name(app)
        found, problems = self._scan()
        for problem in problems:
            if problem.app == app:
                raise problem  # another app's two files do not hide this one
        path = found.get(app)
        return self._read(app, path) if path is not None else None
