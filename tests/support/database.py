"""Real SQLite databases for tests: migrated once per session, copied per test (fast)."""

from __future__ import annotations

import shutil
from pathlib import Path

from adapters.sqlalchemy.engine import make_engine
from adapters.sqlalchemy.migrate import upgrade_database
from adapters.sqlalchemy.unit_of_work import sqlalchemy_uow_factory

_TEMPLATES: dict[str, Path] = {}


def migrated_database(directory: Path, template_dir: Path) -> str:
    """URL of a fresh database at head in `directory` (a copy of a once-migrated template)."""
    key = str(template_dir)
    if key not in _TEMPLATES:
        template = template_dir / "template.db"
        upgrade_database(f"sqlite:///{template}")
        _TEMPLATES[key] = template
    target = directory / "mlxm.db"
    shutil.copyfile(_TEMPLATES[key], target)
    return f"sqlite:///{target}"


class SqliteUnitOfWorks:
    """A factory of `SqlAlchemyUnitOfWork` over one engine; dispose() when done."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.engine = make_engine(url)
        self._factory = sqlalchemy_uow_factory(self.engine)

    def __call__(self):
        return self._factory()

    def dispose(self) -> None:
        self.engine.dispose()
