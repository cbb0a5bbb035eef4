"""Builders the container uses for the library pipelines (import, app links, dependency contract)."""

from __future__ import annotations


def mapping_config_store(settings):
    from adapters.filesystem.mapping_configs import FileMappingConfigStore

    return FileMappingConfigStore(settings.manager.home / "mapping-configs")


def library_recovery(uow_factory, layout, catalog_provider, clock):
    from application.library.importing import ImportService
    from application.library.rebuild import DownloadedRevisions
    from application.library.recovery import LibraryRecovery

    return LibraryRecovery(uow_factory, layout, ImportService(uow_factory, layout, catalog_provider, clock), clock,
                           downloaded=DownloadedRevisions(uow_factory, layout, catalog_provider, clock))


def import_service(uow_factory, layout, catalog_provider, clock):
    from application.library.importing import ImportService

    return ImportService(uow_factory, layout, catalog_provider, clock)


def mapping_service(uow_factory, configs, linker, clock):
    from application.library.mapping import MappingService

    return MappingService(uow_factory, configs, linker, clock)


def dependency_service(uow_factory, catalog_provider):
    from application.library.dependencies import DependencyService

    return DependencyService(uow_factory, catalog_provider)


def metadata_edit_service(uow_factory, library, clock, store, unload):
    from application.library.metadata_edit import MetadataEditService

    return MetadataEditService(uow_factory, library.show, clock, store=store, unload=unload)


def pool_unloader(container):
    """LibraryService's `unload`: finds the pool when a model is deleted (commands that never delete never build it)."""

    def unload(model_id: str) -> object:
        provider = getattr(container, "model_pool", None)
        return provider().unload(model_id) if provider is not None else None

    return unload
