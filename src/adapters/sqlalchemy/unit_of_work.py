"""`SqlAlchemyUnitOfWork`: one session per unit of work, explicit commit, rollback on exit."""

from __future__ import annotations

import importlib
from typing import Callable

from sqlalchemy import Engine
from sqlalchemy.exc import DatabaseError as SqlDatabaseError, IntegrityError as SqlIntegrityError, PendingRollbackError
from sqlalchemy.orm import Session, sessionmaker

from adapters.sqlalchemy.engine import make_session_factory
from adapters.sqlalchemy.file_guard import translate_damage
from application.errors import Conflict


_PACKAGE = "adapters.sqlalchemy."
# attribute -> (module, class); write-through repositories (all but REPOSITORY_NAMES) save nothing at commit.
_REPOSITORIES: dict[str, tuple[str, str]] = {
    "models": (_PACKAGE + "model_repository", "SqlAlchemyModelRepository"),
    "profiles": (_PACKAGE + "profile_repository", "SqlAlchemyProfileRepository"),
    "downloads": (_PACKAGE + "download_repository", "SqlAlchemyDownloadRepository"),
    "settings": (_PACKAGE + "settings_repository", "SqlAlchemySettingsRepository"),
    "backend_mappings": (_PACKAGE + "routing_repository", "SqlAlchemyBackendMappingRepository"),
    # --- auth / routing / audit ---
    "users": (_PACKAGE + "auth_repositories", "SqlAlchemyUserRepository"),
    "api_keys": (_PACKAGE + "auth_repositories", "SqlAlchemyApiKeyRepository"),
    "audit": (_PACKAGE + "auth_repositories", "SqlAlchemyAuditRepository"),
    "credentials": (_PACKAGE + "auth_repositories", "SqlAlchemyCredentialRepository"),
    # --- library pipelines ---
    "links": (_PACKAGE + "library_repositories", "SqlAlchemyLinkRepository"),
    "dependency_profiles": (_PACKAGE + "library_repositories", "SqlAlchemyDependencyProfileRepository"),
    "dependency_bindings": (_PACKAGE + "library_repositories", "SqlAlchemyDependencyBindingRepository"),
    # --- several hosts on one database ---
    "pool_state": (_PACKAGE + "host_repositories", "SqlAlchemyPoolStateRepository"),
    # --- user metadata overrides --- (write-through)
    "overlays": (_PACKAGE + "overlay_repository", "SqlAlchemyModelOverlayRepository"),
}


class SqlAlchemyUnitOfWork:
    """Use as `with uow: ...; uow.commit()`. Anything not committed is rolled back on exit.

    Each instance opens its own session when entered, so units of work can run on
    different threads at once (one unit of work per thread at a time).
    """

    REPOSITORY_NAMES = ("models", "profiles", "downloads", "settings", "backend_mappings")

    def __init__(self, session_factory: sessionmaker[Session]) -> None:
        self._session_factory = session_factory
        self.session: Session | None = None

    def __enter__(self) -> "SqlAlchemyUnitOfWork":
        self.session = self._session_factory()
        for name in _REPOSITORIES:  # repositories of an earlier `with` belong to its closed session
            self.__dict__.pop(name, None)
        return self

    def __getattr__(self, name: str):
        """A repository is made (and its module imported) on first use in a unit of work: `mlxm list`
        loads the model repository's records and mappers only, not those of users, audit or routing."""
        spec = _REPOSITORIES.get(name)
        session = self.__dict__.get("session")
        if spec is None or session is None:
            raise AttributeError(name)
        module, cls = spec
        repository = getattr(importlib.import_module(module), cls)(session)
        setattr(self, name, repository)
        return repository

    def __exit__(self, exc_type, exc, tb) -> None:
        try:
            self.rollback()
        except SqlDatabaseError:
            if exc is None:
                raise
        finally:
            if self.session is not None:
                self.session.close()
            self.session = None
        if exc is not None:
            # a damaged, unopenable or locked database: 503 with the database's reason, not a 500
            translate_damage(exc, getattr(self._session_factory.kw.get("bind"), "url", None))

    def commit(self) -> None:
        """Write back tracked objects that changed, then commit the transaction."""
        if self.session is None:
            raise RuntimeError("commit() outside `with unit_of_work:`")
        try:
            for name in self.REPOSITORY_NAMES:
                repository = self.__dict__.get(name)  # one never used in this unit of work has no changes
                if repository is not None:
                    repository.save_changes()
            self.session.commit()
        except SqlIntegrityError as exc:
            self.session.rollback()
            raise Conflict(f"conflicts with stored data: {exc.orig}") from exc
        except PendingRollbackError:
            # A statement of this unit of work failed earlier: all of it is void, never a part.
            self.session.rollback()
            raise Conflict("an earlier step of this change failed; nothing was saved") from None

    def rollback(self) -> None:
        if self.session is not None:
            self.session.rollback()


def sqlalchemy_uow_factory(engine: Engine) -> Callable[[], SqlAlchemyUnitOfWork]:
    """A callable that makes a new unit of work; all share the engine's one session factory."""
    session_factory = make_session_factory(engine)
    return lambda: SqlAlchemyUnitOfWork(session_factory)
