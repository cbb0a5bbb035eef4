"""The library's `Model`: one model known to this machine, installed or on its way."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from domain.library.capabilities import ModelCapabilities
from domain.enums import DownloadStatus, ModelType


@dataclass
class ModelFile:
    path: str
    size: int
    sha256: str | None = None
    revision: str | None = None
    source: str | None = None


@dataclass
class Model:
    """`model_id` is the name users type: a canonical ID, or a repo id / import name outside the catalog."""

    model_id: str
    repo_id: str | None = None
    canonical_id: str | None = None
    model_type: ModelType | None = None
    family: str | None = None
    local_path: str | None = None
    size_bytes: int | None = None
    status: DownloadStatus = DownloadStatus.COMPLETED
    revision: str | None = None
    source: str | None = None
    aliases: list[str] = field(default_factory=list)
    tags: list[str] = field(default_factory=list)
    description: str = ""
    downloaded_at: datetime | None = None
    last_used_at: datetime | None = None
    managed: bool = True  # False when registered in place: mlxm never deletes such a folder.
    capabilities: ModelCapabilities | None = None
    files: list[ModelFile] = field(default_factory=list)
    review_reasons: list[str] = field(default_factory=list)
    display_name: str | None = None  # the user's name for it (an overlay); None shows the model id
    id: int | None = None

    @property
    def is_installed(self) -> bool:
        return self.status is DownloadStatus.COMPLETED and self.local_path is not None
