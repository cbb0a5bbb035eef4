"""Pure app-mapping rules: config validation, selectors, classification."""

from __future__ import annotations

import pytest

from domain.enums import ModelType
from domain.library.mapping import (
    InvalidMappingConfig,
    LinkAction,
    MappingRule,
    TargetState,
    alternate_folders,
    app_mapping_from_dict,
    app_mapping_to_dict,
    classify,
    model_folder_name,
)
from domain.library.models import Model


def model(model_id="m", model_type=ModelType.TEXT_GEN, family="llama", tags=()):
    return Model(model_id=model_id, model_type=model_type, family=family, tags=list(tags), local_path="/lib/" + model_id)


def test_a_dangling_symlink_is_broken_never_nothing_there():
    assert classify(TargetState.DANGLING) is LinkAction.BROKEN
    assert classify(TargetState.MISSING) is LinkAction.CREATE
    assert classify(TargetState.OURS) is LinkAction.EXISTS
    assert classify(TargetState.OTHER) is LinkAction.CONFLICT


def test_selectors_are_anded_and_excluded_tags_win():
    rule = MappingRule("llms", model_types=(ModelType.TEXT_GEN,), families=("Llama", "qwen3"), tags=("chat",),
                       exclude_tags=("draft",))
    assert rule.matches(model(tags=["chat"]))
    assert not rule.matches(model(tags=["chat", "DRAFT"]))
    assert not rule.matches(model(tags=["code"]))
    assert not rule.matches(model(family="gemma3", tags=["chat"]))
    assert not rule.matches(model(model_type=ModelType.AUDIO, tags=["chat"]))


def test_empty_selectors_match_everything():
    assert MappingRule("all").matches(model(model_type=ModelType.AUDIO, family=None))


def test_config_round_trip_and_targets_in_rule_order():
    data = {
        "app": "lmstudio",
        "root": "~/lm",
        "rules": [
            {"target": "text", "model_types": ["text-gen", "lm"]},
            {"target": "everything"},
            {"target": "text", "tags": ["chat"]},
        ],
    }
    mapping = app_mapping_from_dict(data)
    assert mapping.rules[0].model_types == (ModelType.TEXT_GEN, ModelType.TEXT_GEN)
    assert mapping.targets_for(model(tags=["chat"])) == ["text", "everything"]
    assert mapping.targets_for(model(model_type=ModelType.AUDIO)) == ["everything"]
    assert app_mapping_from_dict(app_mapping_to_dict(mapping)) == mapping


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"app": "Bad Name", "root": "/x", "rules": [{"target": "a"}]}, "app name"),
        ({"app": "ok", "rules": [{"target": "a"}]}, "root"),
        ({"app": "ok", "root": "relative/path", "rules": [{"target": "a"}]}, "absolute"),
        ({"app": "ok", "root": "/x", "rules": []}, "non-empty"),
        ({"app": "ok", "root": "/x", "rules": [{"target": "../escape"}]}, "inside the root"),
        ({"app": "ok", "root": "/x", "rules": [{"target": "a", "model_types": ["robot"]}]}, "model_types"),
        ({"app": "ok", "root": "/x", "rules": [{"target": "a", "tags": [1]}]}, "list of strings"),
        ({"app": "ok", "root": "/x", "rules": [{"target": "a", "colour": "red"}]}, "unknown keys"),
    ],
)
def test_invalid_configs_are_refused_with_the_reason(data, message):
    with pytest.raises(InvalidMappingConfig) as info:
        app_mapping_from_dict(data)
    if message:
        assert message in str(info.value)


def test_absolute_target_is_made_relative_to_the_root():
    # A leading slash is stripped: targets are always inside the root.
    assert app_mapping_from_dict({"app": "ok", "root": "/x", "rules": [{"target": "/abs"}]}).rules[0].target == "abs"


def test_file_name_and_declared_app_must_agree():
    with pytest.raises(InvalidMappingConfig, match="declares app"):
        app_mapping_from_dict({"app": "other", "root": "/x", "rules": [{"target": "a"}]}, default_app="mine")
    assert app_mapping_from_dict({"root": "/x", "rules": [{"target": "a"}]}, default_app="mine").app == "mine"


def test_repo_ids_get_a_flat_folder_name_and_renames_count_up():
    assert model_folder_name("mlx-community/Qwen3") == "mlx-community--Qwen3"
    assert list(alternate_folders("m", limit=3)) == ["m", "m.2", "m.3"]
