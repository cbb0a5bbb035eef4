"""The model library: what is on this machine, found by any name users type.

Listing, search, show, delete and the registration of a local MLX model folder. The full
import pipeline (staging, hashing, confidence, review reasons) extends `register_local`.
"""

from __future__ import annotations

import difflib
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from application.errors import Conflict, InvalidRequest, NotFound, NotInstalled
from application.catalog.ports import CatalogProvider
from application.ports import Clock
from application.library.ports import ModelQuery, ModelStore
from application.library.store_files import files_under
from application.ports import Page, UnitOfWork
from domain.enums import DownloadStatus, ModelType
from domain.library.importing import config_architectures
from domain.library.models import Model, ModelFile

MODEL_NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
CAPABILITY_FILTERS = ("tools", "thinking", "multi_image", "video", "tts", "stt", "normalized")

# config.json `model_type` values that are not text generation.
_AUDIO_MODEL_TYPES = {
    "whisper", "soprano", "kokoro", "pocket_tts", "sesame", "csm", "outetts", "spark", "bark",
    "dia", "parakeet", "voxtral", "qwen3_tts", "vibevoice", "marvis", "chatterbox", "moonshine",
}
_EMBEDDING_MODEL_TYPES = {"bert", "xlm-roberta", "roberta", "nomic_bert", "modernbert", "distilbert", "e5"}
_EMBEDDING_ARCHITECTURE_HINTS = ("Embedding", "SentenceTransformer", "BertModel", "RobertaModel")


@dataclass(frozen=True)
class InferredType:
    model_type: ModelType
    family: str | None


def infer_model_type(config: dict) -> InferredType:
    """Type and family of a model folder from its `config.json`.

    Audio keys or a known audio `model_type` mean audio; a `vision_config` means vision;
    encoder-only architectures mean embeddings; anything else generates text.
    """
    raw_type = str(config.get("model_type") or "").lower()
    architectures = list(config_architectures(config))
    family = raw_type or None
    if raw_type in _AUDIO_MODEL_TYPES or "sample_rate" in config or "n_mels" in config:
        return InferredType(ModelType.AUDIO, family)
    if "vision_config" in config or any("Vision" in a or "VL" in a for a in architectures):
        return InferredType(ModelType.VISION, family)
    if raw_type in _EMBEDDING_MODEL_TYPES or any(h in a for a in architectures for h in _EMBEDDING_ARCHITECTURE_HINTS):
        return InferredType(ModelType.EMBEDDINGS, family)
    return InferredType(ModelType.TEXT_GEN, family)


def _folder_files(store: ModelStore, root: Path) -> list[ModelFile]:
    files = []
    for path in (p for p in files_under(store, root) if not p.name.startswith(".")):
        files.append(ModelFile(path=path.relative_to(root).as_posix(), size=store.file_size(path), source="local"))
    return files


@dataclass(frozen=True)
class ModelRemoval:
    model: Model
    kept: tuple[str, ...] = ()  # "<path>: why it stays" for each file left on disk


class LibraryService:
    """Use cases over installed models (and models on their way)."""

    def __init__(
        self,
        uow_factory: Callable[[], UnitOfWork],
        catalog: CatalogProvider,
        clock: Clock,
        models_dir: Path | None = None,
        linker=None,  # application.library.ports.Linker: removes the model's app links on delete
        unload: Callable[[str], object] | None = None,  # takes a deleted model out of the pool (NotFound: not loaded)
        store: ModelStore | None = None,  # the library's files: the delete's lock and provenance checks
    ) -> None:
        self._store = store
        if models_dir is None and store is not None:
            models_dir = store.models_dir
        self._unload = unload
        self._uow_factory = uow_factory
        self._catalog = catalog
        self._clock = clock
        self._models_dir = Path(models_dir) if models_dir is not None else None
        self._linker = linker

    # -- queries ---------------------------------------------------------------
    def list_models(self) -> list[Model]:
        """Every model in the library, installed or in progress."""
        with self._uow_factory() as uow:
            return uow.models.list()

    def search(
        self,
        text: str | None = None,
        model_type: str | ModelType | None = None,
        capability: str | None = None,
        status: str | DownloadStatus | None = None,
        limit: int = 50,
        offset: int = 0,
    ) -> Page:
        """Free-text search with filters applied before the page is cut."""
        if not 1 <= limit <= 1000:
            raise InvalidRequest("limit must be between 1 and 1000")
        if offset < 0:
            raise InvalidRequest("offset must not be negative")
        if capability is not None and capability not in CAPABILITY_FILTERS:
            raise InvalidRequest(f"unknown capability {capability!r}; expected one of {', '.join(CAPABILITY_FILTERS)}")
        try:
            parsed_type = ModelType(model_type) if model_type else None
        except ValueError:
            raise InvalidRequest(
                f"unknown model type {model_type!r}; expected one of {', '.join(t.value for t in ModelType)}"
            ) from None
        try:
            parsed_status = DownloadStatus(status) if status else None
        except ValueError:
            raise InvalidRequest(f"unknown status {status!r}") from None
        query = ModelQuery(
            text=(text or None),
            model_type=parsed_type,
            capability=capability,
            status=parsed_status,
            limit=limit,
            offset=offset,
        )
        with self._uow_factory() as uow:
            return uow.models.search(query)

    def show(self, name: str) -> Model:
        """The library model behind any name: model id, canonical id, alias or repo id."""
        with self._uow_factory() as uow:
            return self._find(uow, name)

    def _find(self, uow: UnitOfWork, name: str) -> Model:
        model = uow.models.find(name)
        if model is not None:
            return model
        catalog = self._catalog.load_catalog()
        entry = catalog.find(name)
        if entry is not None:
            # The user named a catalog entry by alias or repo id; the library keys it by canonical id.
            model = uow.models.find(entry.id)
            if model is not None:
                return model
            raise NotInstalled(f"model {entry.id!r} is in the catalog but not installed; run `mlxm pull {entry.id}`")
        raise NotFound(f"model {name!r} is not in the library", self._suggestions(uow, name))

    def _suggestions(self, uow: UnitOfWork, name: str) -> list[str]:
        names: list[str] = []
        for model in uow.models.list():
            names.extend(n for n in (model.model_id, model.canonical_id, model.repo_id, *model.aliases) if n)
        close = difflib.get_close_matches(name, names, n=3, cutoff=0.5)
        for candidate in self._catalog.load_catalog().suggestions(name):
            if candidate not in close and len(close) < 5:
                close.append(candidate)
        return close

    # -- commands --------------------------------------------------------------
    def delete(self, name: str) -> Model:
        """Remove a model from the library; its folder goes too when mlxm created it."""
        return self.remove(name).model

    def remove(self, name: str) -> "ModelRemoval":
        """`delete`, with what was left on disk and why (the user's own folder at `models/<key>`...)."""
        with self._uow_factory() as uow:
            model = self._find(uow, name)
            for profile in uow.profiles.list():
                if profile.model_id == model.model_id:
                    raise Conflict(
                        f"model {model.model_id!r} is used by profile {profile.name!r}; remove the profile first"
                    )
            # Library pipelines: folder (to trash), link records and the row change together;
            # a failed commit puts the folder back (application/library/deletion.py).
            from application.library.deletion import begin_model_removal

            removal = begin_model_removal(uow, model, models_dir=self._models_dir, linker=self._linker,
                                          layout=self._store)
            # Everything after the file step undoes it on failure: remove() flushes and can fail
            # (database locked, Conflict) just like the commit.
            try:
                uow.models.remove(model.model_id)
                uow.commit()
            except BaseException:
                removal.undo()
                raise
        removal.finish()
        if self._unload is not None:
            try:
                self._unload(model.model_id)  # a deleted model must not keep answering requests
            except NotFound:
                pass  # it was not loaded
        return ModelRemoval(model, tuple(removal.kept))

    def _require_store(self) -> ModelStore:
        if self._store is None:
            raise RuntimeError("LibraryService was built without a ModelStore; it cannot read model folders")
        return self._store

    def register_local(self, path: str | Path, name: str) -> Model:
        """Register a local MLX model folder in place under the id `name`."""
        store = self._require_store()
        folder = Path(path).expanduser()
        if not store.is_dir(folder):
            raise InvalidRequest(f"{folder} is not a folder")
        config_path = folder / "config.json"
        if not store.is_file(config_path):
            raise InvalidRequest(f"{folder} has no config.json; not an MLX model folder")
        try:
            config = json.loads(store.read_text(config_path))
        except (OSError, ValueError) as exc:
            raise InvalidRequest(f"{config_path}: unreadable config.json ({exc})") from None
        if not isinstance(config, dict):
            raise InvalidRequest(f"{config_path}: config.json is not an object")
        if not any(p.name.endswith(".safetensors") for p in store.list_dir(folder)):
            raise InvalidRequest(f"{folder} has no .safetensors weights")
        if not isinstance(name, str) or not MODEL_NAME_PATTERN.fullmatch(name):
            raise InvalidRequest(f"invalid model name {name!r}: use letters, digits, '.', '_' or '-'")
        if self._catalog.load_catalog().find(name) is not None:
            raise Conflict(f"{name!r} is a catalog name; choose another name for a local model")
        inferred = infer_model_type(config)
        files = _folder_files(store, folder)
        model = Model(
            model_id=name,
            model_type=inferred.model_type,
            family=inferred.family,
            local_path=str(store.realpath(folder)),
            size_bytes=sum(f.size for f in files),
            status=DownloadStatus.COMPLETED,
            source="local",
            downloaded_at=self._clock.now(),
            managed=False,
            files=files,
            tags=["local"],
        )
        with self._uow_factory() as uow:
            if uow.models.find(name) is not None:
                raise Conflict(f"a model named {name!r} is already in the library")
            uow.models.add(model)
            uow.commit()
        return model
