"""MappingConfigStore: one suite over the in-memory fake and the file store (real files under tmp_path).
The port only reads: a config is put in place as the user does, by writing its file (or the fake's entry)."""

from __future__ import annotations

import json

import pytest

from adapters.filesystem.mapping_configs import FileMappingConfigStore
from adapters.memory.library import InMemoryMappingConfigStore
from domain.enums import ModelType
from domain.library.mapping import AppMapping, InvalidMappingConfig, MappingRule, app_mapping_to_dict


@pytest.fixture(params=["memory", "files"])
def store(request, tmp_path):
    return InMemoryMappingConfigStore() if request.param == "memory" else FileMappingConfigStore(tmp_path / "configs")


def studio() -> AppMapping:
    return AppMapping("studio", "/apps/studio", (MappingRule("llm", model_types=(ModelType.TEXT_GEN,)),))


def _put(store, mapping: AppMapping) -> None:
    """A usable config for `mapping.app`: the user's JSON file in the file store, an entry in the fake."""
    if isinstance(store, FileMappingConfigStore):
        store.folder.mkdir(parents=True, exist_ok=True)
        (store.folder / f"{mapping.app}.json").write_text(json.dumps(app_mapping_to_dict(mapping)))
    else:
        store.mappings[mapping.app] = mapping


def test_configs_in_place_are_got_and_listed(store):
    assert store.list() == [] and store.get("studio") is None
    _put(store, studio())
    got = store.get("studio")
    assert got is not None and (got.app, got.root) == ("studio", "/apps/studio")
    assert [r.target for r in got.rules] == ["llm"]
    assert [m.app for m in store.list()] == ["studio"]


@pytest.mark.parametrize("name", ["Bad Name", "../etc", "", "UPPER", ".hidden"])
def test_an_invalid_app_name_is_refused_not_missing(store, name):
    with pytest.raises(InvalidMappingConfig):
        store.get(name)


def _break(store, app: str) -> None:
    """A config for `app` that cannot be used: a damaged file in the file store, a marked entry in the fake."""
    if isinstance(store, FileMappingConfigStore):
        store.folder.mkdir(parents=True, exist_ok=True)
        (store.folder / f"{app}.json").write_text("{not json")
    else:
        store.broken[app] = "cannot read it"


def test_survey_lists_the_usable_configs_and_names_each_broken_one(store):
    _put(store, studio())
    _break(store, "damaged")
    with pytest.raises(InvalidMappingConfig):
        store.list()  # the strict listing still refuses
    mappings, problems = store.survey()
    assert [m.app for m in mappings] == ["studio"]
    assert [p.app for p in problems] == ["damaged"]
    assert store.get("studio") is not None
    with pytest.raises(InvalidMappingConfig):
        store.get("damaged")
