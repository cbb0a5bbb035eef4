"""Names to pull targets: catalog IDs, aliases and `org/name[@revision]`; a listing's sanity checks."""

from __future__ import annotations

from dataclasses import dataclass

from application.errors import DownloadCancelled, Forbidden, SourceError, Unauthorized
from domain.library.layout import is_commit_sha
from application.downloads.ports import RemoteListing
from domain.catalog.model import (
    Catalog,
    CatalogModel,
    ChainExhausted,
    ModelSource,
    is_repo_id,
    split_repo_revision,
)
from domain.downloads.rank_files import RankShard
from domain.enums import ModelType, SourceKind
from domain.errors import UnknownModel


@dataclass(frozen=True)
class PullTarget:
    """What to pull: the library key (canonical ID or `org/name`), its sources and revision."""

    key: str
    sources: tuple[ModelSource, ...]
    revision: str | None = None
    catalog_model: CatalogModel | None = None
    # Only one pipeline rank's files (`mlxm pull --rank R --ranks N`); None: every file.
    shard: RankShard | None = None

    @property
    def repo_id(self) -> str | None:
        if self.catalog_model is not None:
            return self.catalog_model.primary_repo_id
        return self.sources[0].value if self.sources else None


def resolve_pull_target(catalog: Catalog, name: str, default_organization: str | None = None) -> PullTarget:
    """A catalog ID or alias, or any HF repo `org/name[@revision]`; a bare `name` not in the catalog is
    `<default_organization>/name` when one is set (MLX_MANAGER_HF_ORGANIZATION)."""
    name = (name or "").strip()
    repo, revision = split_repo_revision(name)
    found = catalog.find(name)
    if found is not None and (revision is None or revision == found.revision):
        return PullTarget(found.id, tuple(found.sources), revision or found.revision, found)
    if is_repo_id(repo):
        # A repo outside the catalog, or a catalog repo at another revision (a new revision is a new model).
        return PullTarget(repo, (ModelSource(SourceKind.HUGGINGFACE_REPO, repo),), revision, None)
    organization = (default_organization or "").strip().strip("/")
    if organization and "/" not in repo and is_repo_id(f"{organization}/{repo}"):
        qualified = f"{organization}/{repo}"
        return PullTarget(qualified, (ModelSource(SourceKind.HUGGINGFACE_REPO, qualified),), revision, None)
    raise UnknownModel(name, catalog.suggestions(name))


def infer_type_and_family(config: dict) -> tuple[ModelType | None, str | None]:
    """Best guess of a model's type and family from its `config.json`."""
    family = config.get("model_type") if isinstance(config.get("model_type"), str) else None
    archs = " ".join(a for a in config.get("architectures", []) or [] if isinstance(a, str))
    lowered = (family or "").lower()
    if any(k in config for k in ("vision_config", "image_token_index", "image_token_id")):
        return ModelType.VISION, family
    if lowered in ("whisper", "parakeet", "voxtral", "kokoro", "sesame", "csm", "soprano", "pocket_tts") or \
            any(k in archs for k in ("ForConditionalGenerationAudio", "Whisper", "TTS", "SpeechSeq2Seq")) or \
            "sample_rate" in config or "sampling_rate" in config:
        return ModelType.AUDIO, family
    if lowered in ("bert", "xlm-roberta", "nomic_bert", "modernbert", "roberta") or \
            (archs and "ForCausalLM" not in archs and archs.endswith("Model")):
        return ModelType.EMBEDDINGS, family
    return ModelType.TEXT_GEN, family


def covers(installed_tags, shard: RankShard | None) -> bool:
    """Whether an install (a full one, or one rank's files) holds what a pull for `shard` needs."""
    partial = RankShard.from_tags(installed_tags)
    return partial is None or partial == shard


def same_revision(a: str | None, b: str | None) -> bool:
    return bool(a) and bool(b) and (a == b or (len(a) >= 7 and b.startswith(a)) or (len(b) >= 7 and a.startswith(b)))


def is_fatal_source_error(exc: Exception) -> bool:
    """Source errors move on to the next source; a stop request or a local failure ends the pull."""
    return not isinstance(exc, (SourceError, Unauthorized, Forbidden))


def _failure_reason(exc: Exception) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__


def _reraise_fatal(exc: ChainExhausted) -> None:
    for _, failure in exc.failures:
        if isinstance(failure, DownloadCancelled):
            raise failure
    if exc.failures and is_fatal_source_error(exc.failures[-1][1]):
        raise exc.failures[-1][1]


def _check_listing_revision(label: str, listing: RemoteListing) -> None:
    """The revision names folders on disk: only a commit sha is accepted from a source."""
    bad = next((r for r in [listing.revision, *(f.revision for f in listing.files)] if not is_commit_sha(r)), None)
    if bad is not None:
        raise SourceError(f"{label}: the source named revision {str(bad)[:60]!r}, not a 40-hex commit id")


def _is_safe_relative_path(path: str) -> bool:
    """A listed file must stay inside the model folder: relative, no `..`, not our manifest."""
    from pathlib import PurePosixPath

    parts = PurePosixPath(path).parts
    return bool(parts) and not path.startswith("/") and ".." not in parts and "\\" not in path \
        and path != ".mlxm.json"
