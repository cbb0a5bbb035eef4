"""The composition root: the only place adapters are chosen.

Sections per area; each helper adds its providers in its own section. Tests swap any
provider with `container.<name>.override(providers.Object(fake))`.
"""

from __future__ import annotations

from dependency_injector import containers, providers

from adapters.catalog.embedded import EmbeddedCatalogProvider
from adapters.clock import SystemClock
from adapters.sqlalchemy.database import database_upgrader, open_database
from adapters.sqlalchemy.engine import make_session_factory
from adapters.sqlalchemy.unit_of_work import SqlAlchemyUnitOfWork
from application.catalog import CatalogService
from application.library import LibraryService
from application.profiles import ProfileService
from application.selection import SelectionService
from entrypoints import downloads_wiring as _downloads_wiring
from entrypoints.settings import Settings


class Container(containers.DeclarativeContainer):
    # -- configuration -----------------------------------------------------------------
    settings = providers.Singleton(Settings)

    clock = providers.Singleton(SystemClock)
    catalog_provider = providers.Singleton(EmbeddedCatalogProvider)

    # -- persistence (issue 3) -----------------------------------------------------------
    # `uow_factory()` returns a NEW SqlAlchemyUnitOfWork; services receive `uow_factory.provider`
    # (a callable). The engine is a Singleton, made on first use: the database file (and the home
    # folder) are created then, never at import; the schema is upgraded to head at that moment.
    database_engine = providers.Singleton(open_database, url=settings.provided.manager.resolved_database_url)
    session_factory = providers.Singleton(make_session_factory, database_engine)
    uow_factory = providers.Factory(SqlAlchemyUnitOfWork, session_factory=session_factory)
    # `database_upgrade()` is a no-argument callable: the HTTP start-up runs it in a thread.
    database_upgrade = providers.Factory(database_upgrader, url=settings.provided.manager.resolved_database_url)

    # -- use cases: catalog, library, profiles, selection (issue 6) ---------------------
    catalog_service = providers.Factory(CatalogService, provider=catalog_provider)
    library_service = providers.Factory(
        LibraryService,
        uow_factory=uow_factory.provider,
        catalog=catalog_provider,
        clock=clock,
        models_dir=settings.provided.manager.models_dir,
    )
    profile_service = providers.Factory(ProfileService, uow_factory=uow_factory.provider, clock=clock)
    selection_service = providers.Factory(SelectionService, uow_factory=uow_factory.provider, catalog=catalog_provider)

    # --- downloads (issue 4) -------------------------------------------------------------
    # HF_ENDPOINT / HF_TOKEN / MLX_MIRROR_BASE_URL are read from the environment at call time.
    library_layout = providers.Singleton(_downloads_wiring.library_layout, settings=settings)
    downloader = providers.Singleton(_downloads_wiring.source_downloader, settings=settings)
    download_service = providers.Singleton(
        _downloads_wiring.download_service,
        uow_factory=uow_factory.provider,
        catalog_provider=catalog_provider,
        downloader=downloader,
        clock=clock,
        layout=library_layout,
    )
    update_service = providers.Factory(
        _downloads_wiring.update_service, downloads=download_service, downloader=downloader
    )
