"""FileMappingConfigStore: one JSON or TOML file per app under mapping-configs/ (real files)."""

from __future__ import annotations

import json

import pytest

from adapters.filesystem.mapping_configs import FileMappingConfigStore
from domain.enums import ModelType
from domain.library.mapping import AppMapping, InvalidMappingConfig, MappingRule, app_mapping_to_dict


def test_json_and_toml_configs_are_read_by_app_name(tmp_path):
    (tmp_path / "studio.json").write_text(json.dumps(
        {"app": "studio", "root": "/srv/studio", "rules": [{"target": "llm", "model_types": ["text-gen"]}]}))
    (tmp_path / "voice.toml").write_text(
        'root = "~/voice"\n[[rules]]\ntarget = "tts"\nmodel_types = ["audio"]\nexclude_tags = ["draft"]\n')
    (tmp_path / "notes.txt").write_text("ignored")
    store = FileMappingConfigStore(tmp_path)
    assert [m.app for m in store.list()] == ["studio", "voice"]
    voice = store.get("voice")
    assert voice.root == "~/voice" and voice.rules[0].model_types == (ModelType.AUDIO,)
    assert voice.rules[0].exclude_tags == ("draft",)
    assert store.get("nothing") is None
    assert FileMappingConfigStore(tmp_path / "absent").list() == []


@pytest.mark.parametrize(("name", "content", "message"), [
    ("broken.json", "{not json", "cannot read"),
    ("broken.toml", "root = [", "cannot read"),
    ("broken.json", "[1, 2]", "must hold an object"),
    ("broken.json", json.dumps({"app": "other", "root": "/x", "rules": [{"target": "a"}]}), "declares app"),
])
def test_unreadable_or_inconsistent_configs_are_reported(tmp_path, name, content, message):
    (tmp_path / name).write_text(content)
    with pytest.raises(InvalidMappingConfig, match=message):
        FileMappingConfigStore(tmp_path).get("broken")


def test_two_files_for_one_app_are_ambiguous(tmp_path):
    (tmp_path / "twice.json").write_text(json.dumps({"root": "/x", "rules": [{"target": "a"}]}))
    (tmp_path / "twice.toml").write_text('root = "/y"\n[[rules]]\ntarget = "b"\n')
    with pytest.raises(InvalidMappingConfig, match="keep one"):
        FileMappingConfigStore(tmp_path).get("twice")


def test_a_config_written_in_the_documented_form_round_trips_and_bad_names_are_refused(tmp_path):
    store = FileMappingConfigStore(tmp_path / "configs")
    mapping = AppMapping("studio", "/srv/studio", (MappingRule("llm", families=("qwen3",), tags=("chat",)),))
    store.folder.mkdir()
    (store.folder / "studio.json").write_text(json.dumps(app_mapping_to_dict(mapping)))
    assert store.get("studio") == mapping
    with pytest.raises(InvalidMappingConfig):
        store.get("../etc/passwd")
