"""Metadata overlays (domain, pure): the user's value over the inferred one, review, profiles after a type change."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from domain.enums import ModelType, ProfileType
from domain.library.importing import infer_model_type
from domain.library.models import Model
from domain.library.overlays import (
    NEEDS_REVIEW_TAG,
    Metadata,
    ModelOverlays,
    Overlay,
    OverlayError,
    TagEdit,
    adopt_overlays,
    apply_overlays,
    confirm,
    field_of,
    overlay_from_dict,
    overlay_to_dict,
    overlays_from_list,
    override,
    record_inferred,
    reset,
    review_fields,
)
from domain.profiles.conversion import convert_profile, conversions_for
from domain.profiles.model import make_profile
from domain.profiles.params import AudioDefaults, InferenceContext, InferenceParams

NOW = datetime(2026, 12, 2, 3, 0, tzinfo=timezone.utc)
TYPE_REASON = "low confidence 0.67 for type text-gen"
FAMILY_REASON = "family unknown: config.json has no model_type or architectures"
BOTH_REASON = "no config.json: type and family come from weights only"


def imported(*reasons: str) -> Model:
    return Model("weird", model_type=ModelType.TEXT_GEN, family=None, tags=["imported", NEEDS_REVIEW_TAG],
                 description="Imported from /src/weird", review_reasons=list(reasons), id=1)


def test_apply_overlays_puts_the_users_values_over_the_inferred_ones():
    inferred = Metadata(ModelType.TEXT_GEN, "llama", ("imported", "small"), "from disk", None)
    overlays = {
        "model_type": Overlay("model_type", ModelType.VISION, ModelType.TEXT_GEN),
        "tags": Overlay("tags", TagEdit(add=("coding",), remove=("small",)), ["imported", "small"]),
        "display_name": Overlay("display_name", "My VL", None),
        "family": Overlay("family", None, None, confirmed=True),  # a confirmation pins nothing
    }
    effective = apply_overlays(inferred, overlays)
    assert effective == Metadata(ModelType.VISION, "llama", ("imported", "coding"), "from disk", "My VL")
    assert apply_overlays(inferred, {}) == inferred


def test_a_new_inference_goes_beneath_the_override_and_comes_back_on_reset():
    model = imported()
    overlays = ModelOverlays("weird")
    override(model, overlays, "model_type", "vision", NOW)
    override(model, overlays, "family", "qwen2_vl", NOW)
    assert (model.model_type, model.family) == (ModelType.VISION, "qwen2_vl")
    # A re-probe / update infers again: the effective values stay the user's.
    record_inferred(model, overlays, model_type=ModelType.EMBEDDINGS, family="bert")
    assert (model.model_type, model.family) == (ModelType.VISION, "qwen2_vl")
    assert overlays.items["model_type"].inferred is ModelType.EMBEDDINGS
    assert reset(model, overlays, "model_type") is True
    assert model.model_type is ModelType.EMBEDDINGS  # the latest inferred value, not the import's
    assert reset(model, overlays, "model_type") is False
    # An inference of a field nobody overrode simply applies.
    record_inferred(model, overlays, description="new words")
    assert model.description == "new words"


def test_tags_are_edited_not_replaced():
    model = imported(TYPE_REASON)
    overlays = ModelOverlays("weird")
    override(model, overlays, "tags", TagEdit(add=("coding",)), NOW)
    override(model, overlays, "tags", TagEdit(add=("chat",), remove=("imported",)), NOW)
    assert model.tags == [NEEDS_REVIEW_TAG, "coding", "chat"]
    record_inferred(model, overlays, tags=["imported", NEEDS_REVIEW_TAG, "linked:lmstudio"])
    assert model.tags == [NEEDS_REVIEW_TAG, "linked:lmstudio", "coding", "chat"]
    override(model, overlays, "tags", TagEdit(remove=("coding", "chat"), add=("imported",)), NOW)
    assert "tags" not in overlays.items  # nothing left to add or hide: the overlay went
    assert model.tags == ["imported", "linked:lmstudio", NEEDS_REVIEW_TAG]


def test_overriding_or_confirming_the_flagged_field_clears_needs_review():
    model = imported(TYPE_REASON, FAMILY_REASON)
    overlays = ModelOverlays("weird")
    override(model, overlays, "model_type", "text-gen", NOW)
    assert model.review_reasons == [FAMILY_REASON] and NEEDS_REVIEW_TAG in model.tags
    confirm(model, overlays, "family", NOW)
    assert model.review_reasons == [] and NEEDS_REVIEW_TAG not in model.tags
    assert overlays.items["family"].settled_reasons == (FAMILY_REASON,)
    # Resetting re-opens what that overlay settled, and the tag comes back.
    reset(model, overlays, "family")
    assert model.review_reasons == [FAMILY_REASON] and NEEDS_REVIEW_TAG in model.tags


def test_a_reason_about_type_and_family_needs_both_settled_and_reopens_with_either():
    model = imported(BOTH_REASON)
    overlays = ModelOverlays("weird")
    confirm(model, overlays, "model_type", NOW)
    assert model.review_reasons == [BOTH_REASON]
    override(model, overlays, "family", "llama", NOW)
    assert model.review_reasons == [] and NEEDS_REVIEW_TAG not in model.tags
    reset(model, overlays, "model_type")  # the reason was settled by the family's overlay, but is about the type too
    assert model.review_reasons == [BOTH_REASON] and NEEDS_REVIEW_TAG in model.tags


def test_confirming_an_overridden_field_is_refused():
    model = imported()
    overlays = ModelOverlays("weird")
    override(model, overlays, "family", "llama", NOW)
    with pytest.raises(OverlayError, match="reset it first"):
        confirm(model, overlays, "family", NOW)


@pytest.mark.parametrize("name,value,message", [
    ("model_type", "robot", "not a model type"),
    ("family", "  ", "must not be empty"),
    ("display_name", "a\x00b", "control characters"),
    ("display_name", "x" * 256, "at most 255"),
    ("family", 7, "expected text"),
    ("tags", TagEdit(add=("two words",)), "not a tag"),
    ("tags", TagEdit(add=(NEEDS_REVIEW_TAG,)), "follows the review"),
    ("tags", TagEdit(add=("a",), remove=("a",)), "both added and removed"),
    ("tags", TagEdit(add=tuple(f"t{i}" for i in range(65))), "at most 64 tags"),
])
def test_bad_values_are_refused_and_change_nothing(name, value, message):
    model = imported(TYPE_REASON)
    overlays = ModelOverlays("weird")
    before = (model.model_type, model.family, list(model.tags), list(model.review_reasons))
    with pytest.raises(OverlayError, match=message):
        override(model, overlays, name, value, NOW)
    assert (model.model_type, model.family, list(model.tags), list(model.review_reasons)) == before
    assert overlays.items == {}


def test_tags_added_over_several_edits_are_capped_too():
    model, overlays = imported(), ModelOverlays("weird")
    override(model, overlays, "tags", TagEdit(add=tuple(f"a{i}" for i in range(40))), NOW)
    with pytest.raises(OverlayError, match="in all"):
        override(model, overlays, "tags", TagEdit(add=tuple(f"b{i}" for i in range(40))), NOW)
    assert len(overlays.items["tags"].value.add) == 40


def test_field_names_users_type():
    assert field_of("type") == "model_type" and field_of("Display-Name") == "display_name"
    with pytest.raises(OverlayError, match="unknown field"):
        field_of("size")


def _every_reason() -> set[str]:
    configs = [None, {}, {"model_type": "llama"}, {"architectures": "LlamaForCausalLM"},
               {"model_type": "whisper", "architectures": ["LlamaForCausalLM"]}, {"hidden_size": 8}]
    tensors = [(), ("vision_tower.x", "lm_head.weight"), ("model.embed_tokens.weight", "lm_head.weight")]
    reasons = set()
    for config in configs:
        for names in tensors:
            for weights in (True, False):
                reasons.update(infer_model_type(config, names, has_weights=weights).review_reasons)
    return reasons


def test_every_review_reason_the_import_writes_names_its_field():
    reasons = _every_reason()
    assert len(reasons) >= 5, reasons  # the sample reaches the kinds of reasons the import writes
    for reason in reasons:
        fields = review_fields(reason)
        assert fields and fields <= {"model_type", "family"}, reason
    assert review_fields(FAMILY_REASON) == {"family"}
    assert review_fields(BOTH_REASON) == {"model_type", "family"}
    assert review_fields("config.json says audio but tensor names say text-gen") == {"model_type"}


def test_the_serialised_form_round_trips_and_skips_what_is_not_an_overlay():
    overlays = [
        Overlay("model_type", ModelType.VISION, ModelType.TEXT_GEN, False, (TYPE_REASON,), NOW),
        Overlay("tags", TagEdit(("a",), ("b",)), ["b", "c"], False, (), NOW),
        Overlay("family", None, None, True, (FAMILY_REASON,), None),
        Overlay("display_name", "Nice", None),
    ]
    for overlay in overlays:
        assert overlay_from_dict(overlay_to_dict(overlay)) == overlay
    junk = [{"field": "size", "value": 1}, {"value": 1}, {"field": "model_type", "value": "robot"}, "text"]
    loaded = overlays_from_list("m", [*junk, overlay_to_dict(overlays[0])])
    assert list(loaded.items) == ["model_type"]


def test_a_model_rebuilt_from_disk_gets_its_overlays_back_over_a_fresh_inference():
    saved = ModelOverlays("weird")
    original = imported(TYPE_REASON, FAMILY_REASON)
    override(original, saved, "model_type", "vision", NOW)
    confirm(original, saved, "family", NOW)
    override(original, saved, "tags", TagEdit(add=("coding",)), NOW)
    rows = [overlay_to_dict(o) for o in saved.items.values()]
    rebuilt = imported(TYPE_REASON, FAMILY_REASON)  # what the import infers again from the files
    overlays = overlays_from_list("weird", rows)
    adopt_overlays(rebuilt, overlays)
    assert rebuilt.model_type is ModelType.VISION
    assert rebuilt.review_reasons == [] and rebuilt.tags == ["imported", "coding"]
    assert overlays.items["model_type"].inferred is ModelType.TEXT_GEN


def test_profiles_that_no_longer_fit_a_new_type_convert_and_report_what_they_drop():
    chatty = make_profile("chatty", ModelType.TEXT_GEN, model_id="m",
                          inference=InferenceParams(temperature=0.7), context=InferenceContext(system_prompt="hi"))
    voice = make_profile("voice", ModelType.AUDIO, model_id="m", audio=AudioDefaults(voice="af_heart"))
    other = make_profile("other", ModelType.TEXT_GEN, model_id="another")
    assert convert_profile(chatty, ModelType.VISION) is None  # text-gen and vision share the inference type
    conversion = convert_profile(chatty, ModelType.AUDIO)
    assert (conversion.from_type, conversion.to_type) == (ProfileType.INFERENCE, ProfileType.AUDIO)
    assert conversion.dropped == ("inference.temperature=0.7", "context.system_prompt='hi'")
    assert conversion.profile.profile_type is ProfileType.AUDIO and conversion.profile.name == "chatty"
    assert conversion.profile.inference == InferenceParams()
    found = conversions_for([chatty, voice, other], "m", ModelType.EMBEDDINGS)
    assert [(c.name, c.dropped) for c in found] == [
        ("chatty", ("inference.temperature=0.7", "context.system_prompt='hi'")),
        ("voice", ("audio.voice='af_heart'",)),
    ]
