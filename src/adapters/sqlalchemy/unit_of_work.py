"""`SqlAlchemyUnitOfWork`: one session per unit of work, explicit commit, rollback on exit."""

from __future__ import annotations

from typing import Callable

from sqlalchemy import Engine
from sqlalchemy.exc import DatabaseError as SqlDatabaseError, IntegrityError as SqlIntegrityError, PendingRollbackError
from sqlalchemy.orm import Session, sessionmaker

from adapters.sqlalchemy.auth_repositories import (
    SqlAlchemyApiKeyRepository,
    SqlAlchemyAuditRepository,
    SqlAlchemyCredentialRepository,
    SqlAlchemyUserRepository,
)
from adapters.sqlalchemy.engine import make_session_factory
from adapters.sqlalchemy.file_guard import translate_damage
from adapters.sqlalchemy.library_repositories import (
    SqlAlchemyDependencyBindingRepository,
    SqlAlchemyDependencyProfileRepository,
    SqlAlchemyLinkRepository,
)
from adapters.sqlalchemy.routing_repository import SqlAlchemyBackendMappingRepository
from adapters.sqlalchemy.download_repository import SqlAlchemyDownloadRepository
from adapters.sqlalchemy.model_repository import SqlAlchemyModelRepository
from adapters.sqlalchemy.profile_repository import SqlAlchemyProfileRepository
from adapters.sqlalchemy.settings_repository import SqlAlchemySettingsRepository
from application.errors import Conflict


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
        self.models = SqlAlchemyModelRepository(self.session)
        self.profiles = SqlAlchemyProfileRepository(self.session)
        self.downloads = SqlAlchemyDownloadRepository(self.session)
        self.settings = SqlAlchemySettingsRepository(self.session)
        self.backend_mappings = SqlAlchemyBackendMappingRepository(self.session)
        # --- auth / routing / audit --- (write-through repositories: nothing to save at commit)
        self.users = SqlAlchemyUserRepository(self.session)
        self.api_keys = SqlAlchemyApiKeyRepository(self.session)
        self.audit = SqlAlchemyAuditRepository(self.session)
        self.credentials = SqlAlchemyCredentialRepository(self.session)
        # --- library pipelines --- (write-through repositories: nothing to save at commit)
        self.links = SqlAlchemyLinkRepository(self.session)
        self.dependency_profiles = SqlAlchemyDependencyProfileRepository(self.session)
        self.dependency_bindings = SqlAlchemyDependencyBindingRepository(self.session)
        # --- several hosts on one database --- (write-through)
        from adapters.sqlalchemy.host_repositories import SqlAlchemyPoolStateRepository

        self.pool_state = SqlAlchemyPoolStateRepository(self.session)
        from adapters.sqlalchemy.overlay_repository import SqlAlchemyModelOverlayRepository

        self.overlays = SqlAlchemyModelOverlayRepository(self.session)  # write-through
        return self

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
            translate_damage(exc)  # a damaged database file: 503 with SQLite's reason, not a 500

    def commit(self) -> None:
        """Write back tracked objects that changed, then commit the transaction."""
        if self.session is None:
            raise RuntimeError("commit() outside `with unit_of_work:`")
        try:
            for name in self.REPOSITORY_NAMES:
                getattr(self, name).save_changes()
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
