"""Which source's file list is the truth, and mirror checksums for files a hub lists without a sha256.

A mirror is a delivery channel: its `manifest.json` is used only when no hub can list the model
(and the signed catalog pins no file list), and its `checksums.sha256` only adds a sha256 that the
hub's listing lacks, never replaces one.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from pathlib import Path
from typing import Iterable

from application.downloads.ports import ModelDownloader, RemoteListing
from domain.catalog.model import ModelSource, failover_plan
from domain.enums import SourceKind

log = logging.getLogger("mlxm.downloads")

_AFTER_HUBS = 10**9


def listing_sources(sources: Iterable[ModelSource]) -> list[ModelSource]:
    """The failover plan for the listing: hub sources first, mirrors after (each in priority order)."""
    return [s if s.kind is SourceKind.HUGGINGFACE_REPO else replace(s, priority=s.priority + _AFTER_HUBS)
            for s in sources]


def fill_missing_sha256(listing: RemoteListing, sources: Iterable[ModelSource], downloader: ModelDownloader,
                        staging: Path) -> RemoteListing:
    """Add the sha256 a mirror publishes for each file the hub listed without one (same size, if known)."""
    missing = {f.path for f in listing.files if not f.sha256}
    if not missing:
        return listing
    for mirror in (s for s in failover_plan(sources) if s.kind is SourceKind.HTTP_MIRROR):
        try:
            published = downloader.list_files(mirror, listing.revision, staging)
        except Exception as exc:  # noqa: BLE001 - no checksums from this mirror: the hub's checks still apply
            log.debug("no checksums from %s: %s", mirror.label, exc)
            continue
        if published.revision.lower() != listing.revision.lower():
            continue
        by_path = {f.path: f for f in published.files if f.sha256}
        files = []
        for file in listing.files:
            extra = by_path.get(file.path)
            if file.path in missing and extra is not None and (
                    extra.size is None or file.size is None or extra.size == file.size):
                file = replace(file, sha256=extra.sha256)
            files.append(file)
        return replace(listing, files=tuple(files))
    return listing
