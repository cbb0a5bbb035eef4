"""MappingConfigStore: one suite over the in-memory fake and the file store (real files under tmp_path)."""

from __future__ import annotations

import pytest

from adapters.filesystem.mapping_configs import FileMappingConfigStore
from adapters.memory.library import InMemoryMappingConfigStore
from domain.enums import ModelType
from domain.library.mapping import AppMapping, InvalidMappingConfig, MappingRule


@pytest.fixture(params=["memory", "files"])
def store(request, tmp_path):
    return InMemoryMappingConfigStore() if request.param == "memory" else FileMappingConfigStore(tmp_path / "configs")


def studio() -> AppMapping:
    return AppMapping("studio", "/apps/studio", (MappingRule("llm", model_types=(ModelType.TEXT_GEN,)),))


def test_saved_mappings_are_got_and_listed(store):
    assert store.list() == [] and store.get("studio") is None
    store.save(studio())
    got = store.get("studio")
    assert got is not None and (got.app, got.root) == ("studio", "/apps/studio")
    assert [r.target for r in got.rules] == ["llm"]
    assert [m.app for m in store.list()] == ["studio"]


@pytest.mark.parametrize("name", ["Bad Name", "../etc", "", "UPPER", ".hidden"])
def test_an_invalid_app_name_is_refused_not_missing(store, name):
    with pytest.raises(InvalidMappingConfig):
        store.get(name)
    with pytest.raises(InvalidMappingConfig):
        store.save(AppMapping(name, "/apps/x", (MappingRule("llm"),)))
