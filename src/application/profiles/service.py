"""Execution profiles: named defaults for one library model.

The profile's type follows its model's type (`domain.profiles.model.make_profile`), so audio
defaults on a text model or any defaults on an embeddings model are rejected (422).
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Mapping

from application.errors import Conflict, InvalidRequest, NotFound
from application.catalog.ports import CatalogProvider
from application.ports import Clock
from application.ports import UnitOfWork
from domain.errors import InvalidParameter
from domain.library.models import Model
from domain.profiles.params import AudioDefaults, InferenceContext, InferenceParams, params_from_mapping
from domain.profiles.model import ExecutionProfile, make_profile

if TYPE_CHECKING:
    from application.inference.ports import GrammarCompiler

def _value_object(cls: type, field_group: str, data: Mapping[str, Any] | None):
    """Build a value object, naming unknown keys instead of silently dropping them."""
    if data is None:
        return cls()
    if not isinstance(data, Mapping):
        raise InvalidParameter(field_group, "must be an object")
    known = set(cls.__dataclass_fields__)
    unknown = sorted(set(data) - known)
    if unknown:
        raise InvalidParameter(f"{field_group}.{unknown[0]}", f"unknown field; expected one of {', '.join(sorted(known))}")
    try:
        return params_from_mapping(cls, data)
    except InvalidParameter as exc:
        raise InvalidParameter(f"{field_group}.{exc.field}", str(exc).split(": ", 1)[-1]) from None


@dataclass(frozen=True)
class ProfileChanges:
    """A partial update; fields left as `None` keep their value. Group dicts replace the group."""

    name: str | None = None
    model: str | None = None
    description: str | None = None
    auto_start: bool | None = None
    inference: Mapping[str, Any] | None = None
    context: Mapping[str, Any] | None = None
    audio: Mapping[str, Any] | None = None


class ProfileService:
    """Create, read, update and delete execution profiles."""

    def __init__(
        self, uow_factory: Callable[[], UnitOfWork], clock: Clock, catalog: CatalogProvider | None = None,
        grammar: "GrammarCompiler | None" = None,
    ) -> None:
        self._uow_factory = uow_factory
        self._clock = clock
        self._catalog = catalog
        # The compiler inference requests use: a constraint it cannot compile is refused when saved,
        # not turned into a 400 on every later request of the profile.
        self._grammar = grammar

    def _check_constraint(self, context: InferenceContext) -> None:
        if self._grammar is None or context.response_format is None:
            return
        try:
            self._grammar.check(context.response_format)
        except InvalidRequest as exc:
            problem = " ".join(str(exc).removeprefix("response_format: ").split())  # llguidance's are multi-line
            raise InvalidParameter("context.response_format", problem) from None

    def list_profiles(self) -> list[ExecutionProfile]:
        with self._uow_factory() as uow:
            return uow.profiles.list()

    def get(self, name_or_id: str | int) -> ExecutionProfile:
        """A profile by name, or by numeric id."""
        with self._uow_factory() as uow:
            return self._get(uow, name_or_id)

    def find(self, name: str) -> ExecutionProfile | None:
        with self._uow_factory() as uow:
            return uow.profiles.get(name)

    def _get(self, uow: UnitOfWork, name_or_id: str | int) -> ExecutionProfile:
        if isinstance(name_or_id, str):
            profile = uow.profiles.get(name_or_id)
            if profile is not None:
                return profile
        wanted = str(name_or_id)
        for profile in uow.profiles.list():
            if profile.id is not None and str(profile.id) == wanted:
                return profile
        names = [p.name for p in uow.profiles.list()]
        raise NotFound(f"profile {name_or_id!r} not found", difflib.get_close_matches(wanted, names, n=3, cutoff=0.5))

    def _require_name_free(self, uow: UnitOfWork, name: str) -> None:
        """A profile name must not also name a model: requests resolve profiles first, so it would shadow one."""
        if uow.profiles.get(name) is not None:
            raise Conflict(f"a profile named {name!r} already exists")
        model = uow.models.find(name)
        if model is not None:
            raise Conflict(f"{name!r} already names the library model {model.model_id!r}; pick another profile name")
        known = self._catalog.load_catalog().find(name) if self._catalog is not None else None
        if known is not None:
            raise Conflict(f"{name!r} already names the catalog model {known.id!r}; pick another profile name")

    def _model(self, uow: UnitOfWork, name: str) -> Model:
        model = uow.models.find(name)
        if model is None:
            raise NotFound(f"model {name!r} is not in the library; a profile needs an installed model")
        return model

    def create(
        self,
        name: str,
        model: str,
        *,
        description: str | None = None,
        auto_start: bool = False,
        inference: Mapping[str, Any] | None = None,
        context: Mapping[str, Any] | None = None,
        audio: Mapping[str, Any] | None = None,
    ) -> ExecutionProfile:
        """A new profile for `model` (any library name); names are unique and name no model (409)."""
        inference_params = _value_object(InferenceParams, "inference", inference)
        context_params = _value_object(InferenceContext, "context", context)
        audio_params = _value_object(AudioDefaults, "audio", audio)
        self._check_constraint(context_params)
        with self._uow_factory() as uow:
            target = self._model(uow, model)
            profile = make_profile(
                name,
                target.model_type,
                model_id=target.model_id,
                description=description,
                auto_start=auto_start,
                inference=inference_params,
                context=context_params,
                audio=audio_params,
            )
            self._require_name_free(uow, name)
            now = self._clock.now()
            profile.created_at = now
            profile.updated_at = now
            uow.profiles.add(profile)
            uow.commit()
            return profile

    def update(self, name_or_id: str | int, changes: ProfileChanges) -> ExecutionProfile:
        """Apply a partial update, re-validating the whole profile against its model's type."""
        with self._uow_factory() as uow:
            current = self._get(uow, name_or_id)
            model_name = changes.model if changes.model is not None else current.model_id
            target = self._model(uow, model_name) if model_name else None
            new_name = changes.name if changes.name is not None else current.name
            profile = make_profile(
                new_name,
                target.model_type if target else None,
                model_id=target.model_id if target else None,
                description=changes.description if changes.description is not None else current.description,
                auto_start=changes.auto_start if changes.auto_start is not None else current.auto_start,
                inference=(
                    _value_object(InferenceParams, "inference", changes.inference)
                    if changes.inference is not None
                    else current.inference
                ),
                context=(
                    _value_object(InferenceContext, "context", changes.context)
                    if changes.context is not None
                    else current.context
                ),
                audio=_value_object(AudioDefaults, "audio", changes.audio) if changes.audio is not None else current.audio,
            )
            if changes.context is not None:  # a stored constraint was checked when it was saved
                self._check_constraint(profile.context)
            if new_name != current.name:
                self._require_name_free(uow, new_name)
            profile.id = current.id
            profile.created_at = current.created_at
            profile.updated_at = self._clock.now()
            # Same id: the repository treats this as an update (a rename keeps the id).
            uow.profiles.add(profile)
            uow.commit()
            return profile

    def delete(self, name_or_id: str | int) -> ExecutionProfile:
        with self._uow_factory() as uow:
            profile = self._get(uow, name_or_id)
            uow.profiles.remove(profile.name)
            uow.commit()
            return profile

    def auto_start_profiles(self) -> list[ExecutionProfile]:
        """Profiles whose model the server preloads (and keeps loaded)."""
        return [p for p in self.list_profiles() if p.auto_start]
