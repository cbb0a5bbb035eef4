"""`mlxm edit NAME` / `PATCH /api/models/{id}`: the user corrects what import, probe or a pull inferred.

Each correction is an overlay (domain.library.overlays) stored beside the model and in the
installed revision's manifest (`.mlxm.json`), so it survives re-probes, updates and a library
rebuilt from disk. A type change re-validates the model's profiles: a profile of another type is
refused, or with `force` converted (the defaults that do not apply are dropped and reported).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from application.errors import Conflict, InvalidRequest
from application.library.ports import ModelStore
from application.ports import Clock, UnitOfWork
from domain.enums import ModelType
from domain.library.layout import MANIFEST_NAME
from domain.library.models import Model
from domain.library.overlays import (
    REVIEWED_FIELDS,
    USER_NAMES,
    ModelOverlays,
    OverlayError,
    TagEdit,
    confirm,
    field_of,
    overlay_to_dict,
    override,
    reset,
)
from domain.profiles.conversion import ProfileConversion, conversions_for


@dataclass(frozen=True)
class MetadataEdit:
    model_type: str | None = None
    family: str | None = None
    description: str | None = None
    display_name: str | None = None
    add_tags: tuple[str, ...] = ()
    remove_tags: tuple[str, ...] = ()
    reset: tuple[str, ...] = ()  # field names as users type them (type, display-name...)
    confirm: tuple[str, ...] = ()
    force: bool = False

    def values(self) -> dict[str, object]:
        found: dict[str, object] = {name: getattr(self, name) for name in
                                    ("model_type", "family", "description", "display_name")
                                    if getattr(self, name) is not None}
        if self.add_tags or self.remove_tags:
            found["tags"] = TagEdit(tuple(self.add_tags), tuple(self.remove_tags))
        return found


@dataclass
class EditResult:
    model: Model
    overlays: ModelOverlays
    conversions: list[ProfileConversion] = field(default_factory=list)
    manifest: str | None = None  # the manifest that now carries the overlays
    notes: list[str] = field(default_factory=list)


class ProfilesDoNotFit(Conflict):
    """A type change that the model's profiles do not fit (409 / exit 4); `force` converts them."""

    def __init__(self, model_id: str, model_type: ModelType, conversions: list[ProfileConversion]) -> None:
        self.conversions = conversions
        listed = "; ".join(
            f"{c.name} ({c.from_type.value} -> {c.to_type.value}"
            + (f", would drop {', '.join(c.dropped)})" if c.dropped else ")")
            for c in conversions
        )
        super().__init__(
            f"type {model_type.value} does not fit the profiles of {model_id}: {listed}. "
            "Convert them with --force (HTTP: \"force\": true), or remove them first"
        )


class MetadataEditService:
    def __init__(self, uow_factory: Callable[[], UnitOfWork], resolve: Callable[[str], Model], clock: Clock,
                 store: ModelStore | None = None, unload: Callable[[str], object] | None = None) -> None:
        self._uow_factory = uow_factory
        self._resolve = resolve  # any name users type -> the library model (NotFound with suggestions)
        self._clock = clock
        self._store = store
        self._unload = unload  # a type change takes the model out of the pool (loaded as the old type)

    def overlays_of(self, model_id: str) -> ModelOverlays:
        """The overlays of the model with this id (none for an unknown id)."""
        with self._uow_factory() as uow:
            return uow.overlays.get(model_id)

    def edit(self, name: str, edit: MetadataEdit) -> EditResult:
        values = self._checked(edit)
        model_id = self._resolve(name).model_id
        now = self._clock.now()
        with self._uow_factory() as uow:
            model = self._model(uow, model_id)
            overlays = uow.overlays.get(model_id)
            before = model.model_type
            try:
                for name_ in edit.reset:
                    reset(model, overlays, field_of(name_))
                for field_name, value in values.items():
                    override(model, overlays, field_name, value, now)
                for name_ in edit.confirm:
                    confirm(model, overlays, field_of(name_), now)
            except OverlayError as exc:
                raise InvalidRequest(str(exc)) from None
            result = EditResult(model, overlays)
            if model.model_type != before:
                self._retype(uow, model, edit.force, result)
            uow.models.add(model)
            uow.overlays.add(overlays)
            previous = self._write_manifest(model, overlays, result)
            try:
                uow.commit()
            except BaseException:
                self._restore_manifest(result.manifest, previous)
                raise
        if model.model_type != before and self._unload is not None:
            try:
                self._unload(model.model_id)  # loaded as the old type: the next request loads it as the new one
            except Exception:  # noqa: BLE001 - not loaded (or no pool here): nothing to take out
                pass
        return result

    # -- steps ---------------------------------------------------------------------------------
    @staticmethod
    def _checked(edit: MetadataEdit) -> dict[str, object]:
        values = edit.values()
        try:
            resets = {field_of(n) for n in edit.reset}
            confirms = {field_of(n) for n in edit.confirm}
        except OverlayError as exc:
            raise InvalidRequest(str(exc)) from None
        if not values and not resets and not confirms:
            raise InvalidRequest("nothing to change: give a field to set, --reset FIELD or --confirm FIELD")
        twice = sorted((resets | confirms) & set(values)) or sorted(resets & confirms)
        if twice:
            raise InvalidRequest(f"{USER_NAMES[twice[0]]}: give one change per field (set, reset or confirm), not both")
        unreviewed = sorted(confirms - REVIEWED_FIELDS)
        if unreviewed:
            raise InvalidRequest(f"{USER_NAMES[unreviewed[0]]}: only type and family can be confirmed "
                                 "(a review is about them); set or reset the others")
        return values

    @staticmethod
    def _model(uow: UnitOfWork, model_id: str) -> Model:
        model = uow.models.get(model_id)
        if model is None:
            from application.errors import NotFound

            raise NotFound(f"model {model_id!r} is not in the library")
        return model

    @staticmethod
    def _retype(uow: UnitOfWork, model: Model, force: bool, result: EditResult) -> None:
        conversions = conversions_for(uow.profiles.list(), model.model_id, model.model_type)
        if conversions and not force:
            raise ProfilesDoNotFit(model.model_id, model.model_type, conversions)
        for conversion in conversions:
            uow.profiles.add(conversion.profile)
        result.conversions = conversions
        if model.capabilities is not None and model.capabilities.model_type != model.model_type:
            # A probe of the old type says nothing about the new one.
            model.capabilities = None
            result.notes.append(f"capabilities cleared (they were probed as another type); "
                                f"run `mlxm probe {model.model_id}`")

    def _write_manifest(self, model: Model, overlays: ModelOverlays, result: EditResult) -> str | None:
        """Put the overlays in the installed revision's manifest; returns its previous text (to undo)."""
        store = self._store
        folder = store.installed_revision_dir(model.model_id) if store is not None and model.managed else None
        manifest = store.read_manifest(folder) if folder is not None else None
        if manifest is None:
            result.notes.append("no library manifest for this model (registered in place, or not installed): "
                                "the overlays are kept in the database only")
            return None
        path = folder / MANIFEST_NAME
        previous = store.read_text(path)
        manifest.overlays = [overlay_to_dict(o) for _, o in sorted(overlays.items.items())]
        self._replace_text(path, manifest.to_json())
        result.manifest = str(path)
        return previous

    def _replace_text(self, path: Path, text: str) -> None:
        # Atomic and durable: a crash leaves the old manifest or the new one, never half of one.
        temporary = path.with_name(path.name + ".tmp")
        self._store.write_text(temporary, text)
        self._store.fsync_file(temporary)
        self._store.replace(temporary, path)

    def _restore_manifest(self, path: str | None, previous: str | None) -> None:
        if path is not None and previous is not None:
            self._replace_text(Path(path), previous)
