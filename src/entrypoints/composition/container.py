"""The composition root: the only place adapters are chosen.

Sections per area; each helper adds its providers in its own section. Tests swap any
provider with `container.<name>.override(providers.Object(fake))`.
"""

from __future__ import annotations

from entrypoints.composition.di import containers, providers

from entrypoints.composition.lazy import LazyModule, lazy

# Every adapter and use case is imported when its provider is first resolved, not here (issue 19):
# a read command loads SQLAlchemy and its own service, never MLX, the HF client or the audit writer.
SystemClock = lazy("adapters.system.clock:SystemClock")
FilesystemLinker = lazy("adapters.filesystem.linker:FilesystemLinker")
database_upgrader = lazy("adapters.sqlalchemy.database:database_upgrader")
open_database = lazy("adapters.sqlalchemy.database:open_database")
make_session_factory = lazy("adapters.sqlalchemy.engine:make_session_factory")
SqlAlchemyUnitOfWork = lazy("adapters.sqlalchemy.unit_of_work:SqlAlchemyUnitOfWork")
CatalogService = lazy("application.catalog.service:CatalogService")
LibraryService = lazy("application.library.service:LibraryService")
ProfileService = lazy("application.profiles.service:ProfileService")
LlguidanceGrammarCompiler = lazy("adapters.llguidance.grammar:LlguidanceGrammarCompiler")
SelectionService = lazy("application.catalog.selection:SelectionService")
_catalog_wiring = LazyModule("entrypoints.composition.catalog_wiring")
_downloads_wiring = LazyModule("entrypoints.composition.downloads_wiring")
Settings = lazy("entrypoints.composition.settings:Settings")
AuditService = lazy("application.audit.service:AuditService")
ApiKeyService = lazy("application.identity.service:ApiKeyService")
ScryptPasswordHasher = lazy("application.identity.service:ScryptPasswordHasher")
UserService = lazy("application.identity.service:UserService")
BackendMappingService = lazy("application.routing.backend_mappings:BackendMappingService")
CredentialService = lazy("application.routing.credentials:CredentialService")
InferenceRouter = lazy("application.routing.service:InferenceRouter")
_auth_wiring = LazyModule("entrypoints.composition.auth_wiring")
_library_wiring = LazyModule("entrypoints.composition.library_wiring")
FileModelInspector = lazy("adapters.mlx.inspector:FileModelInspector")
InferenceService = lazy("application.inference.service:InferenceService")
ProbeService = lazy("application.inference.probe:ProbeService")
_runtime_wiring = LazyModule("entrypoints.composition.runtime_wiring")
_metrics_wiring = LazyModule("entrypoints.composition.metrics_wiring")
_hub_wiring = LazyModule("entrypoints.composition.hub_wiring")


class Container(containers.DeclarativeContainer):
    __self__ = providers.Self()  # for builders that find another area's provider at call time

    # -- configuration -----------------------------------------------------------------
    settings = providers.Singleton(Settings)

    clock = providers.Singleton(SystemClock)
    # The embedded catalog, or the signed remote catalog when MLX_CATALOG_URL is set (issue 17).
    catalog_provider = providers.Singleton(_catalog_wiring.catalog_provider, settings=settings, clock=clock)
    catalog_publisher = providers.Factory(_catalog_wiring.catalog_publisher, clock=clock)
    # Prometheus metrics (GET /metrics): fed by decorators around the audit sink, local generation and
    # the downloader below (so tests that override those providers keep the metering), read at scrape.
    metrics = providers.Singleton(_metrics_wiring.metrics, container=__self__)

    # -- persistence (issue 3) -----------------------------------------------------------
    # `uow_factory()` returns a NEW SqlAlchemyUnitOfWork; services receive `uow_factory.provider`
    # (a callable). The engine is a Singleton, made on first use: the database file (and the home
    # folder) are created then, never at import; the schema is upgraded to head at that moment.
    # Thread-safe: the server's first requests may arrive on several worker threads at once.
    database_engine = providers.ThreadSafeSingleton(open_database, url=settings.provided.manager.resolved_database_url)
    session_factory = providers.ThreadSafeSingleton(make_session_factory, database_engine)
    uow_factory = providers.Factory(SqlAlchemyUnitOfWork, session_factory=session_factory)
    # `database_upgrade()` is a no-argument callable: the HTTP start-up runs it in a thread.
    database_upgrade = providers.Factory(database_upgrader, url=settings.provided.manager.resolved_database_url)

    # -- use cases: catalog, library, profiles, selection (issue 6) ---------------------
    catalog_service = providers.Factory(CatalogService, provider=catalog_provider)
    # The library's files (layout, staging, atomic install, locks, hash caches): the ModelStore port.
    model_store = providers.Singleton(_downloads_wiring.model_store, settings=settings,
                                      engine=database_engine.provider)
    # Library pipelines: the app-link linker (symlink > hardlink > copy); delete removes a model's links.
    linker = providers.Singleton(FilesystemLinker)
    library_service = providers.Factory(
        LibraryService,
        uow_factory=uow_factory.provider,
        catalog=catalog_provider,
        clock=clock,
        models_dir=settings.provided.manager.models_dir,
        linker=linker,
        unload=providers.Factory(_library_wiring.pool_unloader, container=__self__),
        store=model_store,
    )
    # `mlxm edit` / PATCH /api/models/{id}: the user's overlays over inferred metadata (issue 15).
    metadata_edit_service = providers.Factory(
        _library_wiring.metadata_edit_service, uow_factory=uow_factory.provider, library=library_service,
        clock=clock, store=model_store, unload=providers.Factory(_library_wiring.pool_unloader, container=__self__),
    )
    # The grammar compiler inference uses (llguidance, imported on first use): profiles check their
    # output constraint with it when saved.
    grammar_compiler = providers.Singleton(LlguidanceGrammarCompiler)
    profile_service = providers.Factory(
        ProfileService, uow_factory=uow_factory.provider, clock=clock, catalog=catalog_provider,
        grammar=grammar_compiler,
    )
    selection_service = providers.Factory(SelectionService, uow_factory=uow_factory.provider, catalog=catalog_provider)

    # --- hub search (issue 16): HfApi.list_models, cached in <home>/cache/search.sqlite --------
    hub_search_client = providers.Singleton(_hub_wiring.hub_search_client)
    hub_search_cache = providers.Singleton(_hub_wiring.hub_search_cache, settings=settings)
    hub_search_service = providers.Factory(
        _hub_wiring.hub_search_service, client=hub_search_client, cache=hub_search_cache,
        catalog_provider=catalog_provider, uow_factory=uow_factory.provider, clock=clock, settings=settings,
    )

    # --- downloads (issue 4) -------------------------------------------------------------
    # HF_ENDPOINT / HF_TOKEN / MLX_MIRROR_BASE_URL are read from the environment at call time.
    downloader = providers.Singleton(_downloads_wiring.source_downloader, settings=settings)
    download_service = providers.Singleton(
        _downloads_wiring.download_service,
        uow_factory=uow_factory.provider,
        catalog_provider=catalog_provider,
        downloader=providers.Factory(_metrics_wiring.metered_downloader, inner=downloader, metrics=metrics),
        clock=clock,
        layout=model_store,
        settings=settings,
    )
    update_service = providers.Factory(
        _downloads_wiring.update_service, downloads=download_service, downloader=downloader
    )

    # --- auth / routing / audit ----------------------------------------------------------
    # Users and API keys (stored hashed); cloud credentials encrypted with MLX_MANAGER_SECRET_KEY or
    # <home>/secret.key; backend mappings; the audit log, written in batches off the request path.
    # `routed_inference_service` is the inference service with cloud routing, fallback and the audit
    # log in front of text generation; it finds the runtime area's `inference_service` at call time.
    password_hasher = providers.Singleton(ScryptPasswordHasher)
    user_service = providers.Factory(UserService, uow=uow_factory.provider, clock=clock, hasher=password_hasher)
    api_key_service = providers.Factory(ApiKeyService, uow=uow_factory.provider, clock=clock, users=user_service)
    secret_cipher = providers.Singleton(_auth_wiring.secret_cipher, settings=settings)
    web_session_store = providers.Singleton(_auth_wiring.web_session_store, settings=settings)  # web UI logins
    credential_service = providers.Factory(
        CredentialService, uow=uow_factory.provider, cipher=secret_cipher, clock=clock
    )
    backend_mapping_service = providers.Factory(BackendMappingService, uow=uow_factory.provider)
    audit_service = providers.Factory(
        AuditService, uow=uow_factory.provider, clock=clock,
        retention_days=settings.provided.server.audit_retention_days,
        host=settings.provided.manager.host_name,
    )
    audit_sink = providers.Singleton(_auth_wiring.audit_sink, audit=audit_service)
    cloud_runtimes = providers.Singleton(
        _auth_wiring.cloud_runtimes, timeout=settings.provided.server.request_timeout_seconds
    )
    inference_router = providers.Factory(
        InferenceRouter,
        mappings=backend_mapping_service,
        credentials=credential_service,
        cloud_runtimes=cloud_runtimes,
        local=providers.Factory(
            _metrics_wiring.timed_local_generation,
            inner=providers.Factory(_auth_wiring.local_generation, container=__self__), metrics=metrics,
        ),
        audit=providers.Factory(_metrics_wiring.metered_audit_sink, inner=audit_sink, metrics=metrics),
        clock=clock,
    )
    routed_inference_service = providers.Factory(
        _auth_wiring.routed_inference_service, container=__self__, router=inference_router
    )

    # --- runtime (issue 5) ---------------------------------------------------------------
    # One MLX runtime (text via mlx-lm with continuous batching, audio via mlx-audio) and one
    # pool per process; MLX is imported only when a model is first loaded.
    model_runtime = providers.Singleton(_runtime_wiring.model_runtime, settings=settings)
    model_pool = providers.Singleton(_runtime_wiring.model_pool, runtime=model_runtime, clock=clock, settings=settings)
    # This host's pool as the other servers on a shared database see it (`/api/pool/hosts`).
    pool_state_publisher = providers.Singleton(
        _runtime_wiring.pool_state_publisher, uow_factory=uow_factory.provider, pool=model_pool, clock=clock,
        host=settings.provided.manager.host_name,
    )
    system_inference_params = providers.Singleton(_runtime_wiring.system_params, settings=settings)
    model_inspector = providers.Singleton(FileModelInspector)
    # A Singleton: it keeps per-model state (when `last_used_at` was last written).
    inference_service = providers.Singleton(
        InferenceService,
        uow_factory=uow_factory.provider,
        catalog=catalog_provider,
        pool=model_pool,
        runtime=model_runtime,
        clock=clock,
        system_params=system_inference_params,
        images=providers.Singleton(_runtime_wiring.image_resolver, settings=settings),
    )
    probe_service = providers.Factory(
        ProbeService,
        uow_factory=uow_factory.provider,
        inspector=model_inspector,
        pool=model_pool,
        runtime=model_runtime,
        clock=clock,
    )

    # --- library pipelines ----------------------------------------------------------------
    # Import (staging, hashing, inference, atomic install), app mapping configs under
    # <home>/mapping-configs, and the dependency-requirements contract.
    mapping_configs = providers.Singleton(_library_wiring.mapping_config_store, settings=settings)
    import_service = providers.Factory(
        _library_wiring.import_service,
        uow_factory=uow_factory.provider,
        layout=model_store,
        catalog_provider=catalog_provider,
        clock=clock,
    )
    # Start-up sweep of crashed imports/deletes (called beside download crash reconciliation).
    library_recovery = providers.Factory(
        _library_wiring.library_recovery,
        uow_factory=uow_factory.provider,
        layout=model_store,
        catalog_provider=catalog_provider,
        clock=clock,
    )
    mapping_service = providers.Factory(
        _library_wiring.mapping_service,
        uow_factory=uow_factory.provider,
        configs=mapping_configs,
        linker=linker,
        clock=clock,
    )
    dependency_service = providers.Factory(
        _library_wiring.dependency_service, uow_factory=uow_factory.provider, catalog_provider=catalog_provider
    )


def command_line_container() -> Container:
    """A CLI command's container. It serves no GET /metrics, so its counters would go nowhere: without the
    registry a command spares prometheus_client's import (~80 ms of start-up, issue 19). `mlxm serve` turns
    the metrics back on (it drops this override) before anything uses them."""
    container = Container()
    container.metrics.override(providers.Object(None))
    return container
