import pytest

from domain.errors import InvalidParameter
from domain.profiles.params import (
    AudioDefaults,
    InferenceContext,
    InferenceParams,
    SYSTEM_INFERENCE_DEFAULTS,
    cascade,
    params_from_mapping,
)


@pytest.mark.parametrize(
    "field,value",
    [
        ("temperature", -0.1), ("temperature", 2.01), ("max_tokens", 0), ("max_tokens", 128_001),
        ("top_p", 1.5), ("top_p", -0.01), ("max_tokens", 1.5), ("temperature", "hot"), ("temperature", True),
        ("min_p", 2.0), ("top_k", -1), ("seed", -1),
    ],
)
def test_inference_params_reject_out_of_range_values_naming_the_field(field, value):
    with pytest.raises(InvalidParameter) as err:
        InferenceParams(**{field: value})
    assert err.value.field == field


def test_inference_params_accept_bounds():
    p = InferenceParams(temperature=0, max_tokens=1, top_p=0, top_k=0, min_p=0, seed=0)
    assert p.temperature == 0 and p.max_tokens == 1
    assert InferenceParams(temperature=2.0, max_tokens=128_000, top_p=1.0).max_tokens == 128_000


def test_stop_accepts_a_string_or_a_list_and_rejects_empties():
    assert InferenceParams(stop="END").stop == ("END",)
    assert InferenceParams(stop=["a", "b"]).stop == ("a", "b")
    with pytest.raises(InvalidParameter):
        InferenceParams(stop=[""])


def test_value_objects_are_immutable():
    p = InferenceParams(temperature=0.5)
    with pytest.raises(Exception):
        p.temperature = 1.0  # type: ignore[misc]


@pytest.mark.parametrize("kwargs,field", [
    ({"speed": 0.2}, "speed"), ({"speed": 4.5}, "speed"), ({"sample_rate": 100}, "sample_rate"), ({"voice": 3}, "voice"),
])
def test_audio_defaults_validate(kwargs, field):
    with pytest.raises(InvalidParameter) as err:
        AudioDefaults(**kwargs)
    assert err.value.field == field


def test_context_validates():
    with pytest.raises(InvalidParameter):
        InferenceContext(context_length=0)
    with pytest.raises(InvalidParameter):
        InferenceContext(enable_tool_injection="yes")


def test_request_temperature_zero_beats_profile_temperature():
    request = InferenceParams(temperature=0)
    profile = InferenceParams(temperature=0.7, max_tokens=256)
    resolved = cascade(request, profile, SYSTEM_INFERENCE_DEFAULTS)
    assert resolved.temperature == 0
    assert resolved.max_tokens == 256
    assert resolved.top_p == SYSTEM_INFERENCE_DEFAULTS.top_p


def test_cascade_is_field_by_field_request_over_profile_over_system():
    request = InferenceParams(max_tokens=10)
    profile = InferenceParams(temperature=0.3, top_p=0.5, max_tokens=99)
    system = InferenceParams(temperature=1.0, top_p=1.0, max_tokens=4096, seed=7)
    resolved = cascade(request, profile, system)
    assert (resolved.temperature, resolved.top_p, resolved.max_tokens, resolved.seed) == (0.3, 0.5, 10, 7)


def test_cascade_treats_false_and_empty_string_as_values():
    request = InferenceContext(enable_tool_injection=False, system_prompt="")
    profile = InferenceContext(enable_tool_injection=True, system_prompt="Be brief.", context_length=4096)
    resolved = cascade(request, profile)
    assert resolved.enable_tool_injection is False
    assert resolved.system_prompt == ""
    assert resolved.context_length == 4096


def test_cascade_skips_missing_layers():
    assert cascade(None, InferenceParams(top_k=5), None).top_k == 5
    with pytest.raises(ValueError):
        cascade(None, None)


def test_params_from_mapping_ignores_unknown_keys():
    p = params_from_mapping(InferenceParams, {"temperature": 0, "voice": "x"})
    assert p == InferenceParams(temperature=0)
    assert params_from_mapping(InferenceParams, None) == InferenceParams()
