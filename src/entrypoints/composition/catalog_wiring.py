"""Wiring of the catalog source: embedded, or the signed remote catalog when configured (issue 17)."""

from __future__ import annotations

from adapters.catalog.embedded import EmbeddedCatalogProvider


def catalog_provider(settings, clock):
    """With neither MLX_CATALOG_URL nor MLX_CATALOG_PUBKEY set: exactly the embedded catalog."""
    embedded = EmbeddedCatalogProvider()
    dist = settings.distribution
    if not dist.catalog_url:
        return embedded
    from adapters.catalog.filesystem_cache import FilesystemCatalogCache
    from adapters.catalog.httpx_fetcher import HttpxCatalogFetcher
    from application.catalog.remote import RemoteCatalogService
    from application.catalog.ports import KeyFileRefused

    verifier, problem = None, None
    if not dist.catalog_pubkey:
        problem = "MLX_CATALOG_URL is set but MLX_CATALOG_PUBKEY is not: an unsigned catalog is never used"
    else:
        from adapters.catalog.ed25519_signatures import Ed25519SignatureVerifier

        try:
            verifier = Ed25519SignatureVerifier(dist.catalog_pubkey)
        except (KeyFileRefused, ValueError) as exc:
            problem = f"MLX_CATALOG_PUBKEY unusable: {exc}"
    return RemoteCatalogService(
        embedded=embedded,
        fetcher=HttpxCatalogFetcher(dist.catalog_timeout_seconds, dist.catalog_max_bytes),
        verifier=verifier,
        cache=FilesystemCatalogCache(settings.manager.home / "catalog"),
        clock=clock,
        url=dist.catalog_url,
        refresh_seconds=dist.catalog_refresh_seconds or 3600.0,
        config_error=problem,
    )


def catalog_publisher(clock):
    from adapters.catalog.ed25519_signatures import Ed25519CatalogSigner, Ed25519SignatureVerifier
    from application.catalog.publishing import CatalogPublisher

    return CatalogPublisher(Ed25519CatalogSigner(), Ed25519SignatureVerifier, clock, EmbeddedCatalogProvider())
