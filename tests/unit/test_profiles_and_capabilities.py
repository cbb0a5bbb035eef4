import pytest

from domain.library.capabilities import (
    AudioCapabilities,
    EmbeddingCapabilities,
    TextGenCapabilities,
    VisionCapabilities,
    capabilities_for,
    supports,
)
from domain.enums import ModelType, ProfileType
from domain.errors import InvalidParameter, ProfileTypeMismatch
from domain.profiles.params import AudioDefaults, InferenceContext, InferenceParams
from domain.profiles.model import (
    AudioProfile,
    ExecutionProfile,
    InferenceProfile,
    make_profile,
    profile_type_for,
)


@pytest.mark.parametrize(
    "model_type,expected",
    [
        (ModelType.TEXT_GEN, ProfileType.INFERENCE),
        (ModelType.VISION, ProfileType.INFERENCE),
        (ModelType.EMBEDDINGS, ProfileType.BASE),
        (ModelType.AUDIO, ProfileType.AUDIO),
        (None, ProfileType.INFERENCE),
    ],
)
def test_profile_type_follows_model_type(model_type, expected):
    assert profile_type_for(model_type) is expected


def test_make_profile_builds_the_matching_subclass():
    assert isinstance(make_profile("chat", ModelType.TEXT_GEN), InferenceProfile)
    assert isinstance(make_profile("voice", ModelType.AUDIO), AudioProfile)
    base = make_profile("emb", ModelType.EMBEDDINGS)
    assert type(base) is ExecutionProfile and base.profile_type is ProfileType.BASE


def test_audio_defaults_on_a_text_model_name_the_field():
    with pytest.raises(ProfileTypeMismatch) as err:
        make_profile("p", ModelType.TEXT_GEN, audio=AudioDefaults(voice="af_heart"))
    assert err.value.field == "audio.voice"


def test_inference_defaults_on_an_audio_model_name_the_field():
    with pytest.raises(ProfileTypeMismatch) as err:
        make_profile("p", ModelType.AUDIO, inference=InferenceParams(temperature=0.2))
    assert err.value.field == "inference.temperature"
    with pytest.raises(ProfileTypeMismatch) as err:
        make_profile("p", ModelType.AUDIO, context=InferenceContext(system_prompt="hi"))
    assert err.value.field == "context.system_prompt"


@pytest.mark.parametrize(
    "kwargs,field",
    [
        ({"inference": InferenceParams(max_tokens=5)}, "inference.max_tokens"),
        ({"context": InferenceContext(context_length=512)}, "context.context_length"),
        ({"audio": AudioDefaults(speed=1.0)}, "audio.speed"),
    ],
)
def test_any_defaults_on_an_embeddings_model_are_rejected(kwargs, field):
    with pytest.raises(ProfileTypeMismatch) as err:
        make_profile("p", ModelType.EMBEDDINGS, **kwargs)
    assert err.value.field == field


def test_valid_defaults_are_kept():
    p = make_profile("p", ModelType.VISION, inference=InferenceParams(temperature=0), context=InferenceContext(system_prompt=""))
    assert p.inference.temperature == 0 and p.context.system_prompt == ""
    a = make_profile("a", ModelType.AUDIO, audio=AudioDefaults(voice="v", speed=1.5))
    assert a.audio.speed == 1.5


@pytest.mark.parametrize("name", ["", "has space", "../etc", "x" * 65, "-lead"])
def test_profile_names_are_validated(name):
    with pytest.raises(InvalidParameter):
        make_profile(name, ModelType.TEXT_GEN)


def test_capability_hierarchy_and_filters():
    assert isinstance(capabilities_for(ModelType.TEXT_GEN, supports_native_tools=True), TextGenCapabilities)
    assert isinstance(capabilities_for(ModelType.VISION), VisionCapabilities)
    assert isinstance(capabilities_for(ModelType.EMBEDDINGS, embedding_dimensions=384), EmbeddingCapabilities)
    assert isinstance(capabilities_for(ModelType.AUDIO, supports_tts=True), AudioCapabilities)
    assert supports(TextGenCapabilities(supports_native_tools=True), "tools")
    assert not supports(TextGenCapabilities(supports_thinking=False), "thinking")
    assert supports(AudioCapabilities(supports_stt=True), "stt")
    assert not supports(None, "tools")
    assert not supports(EmbeddingCapabilities(), "tools")


def test_legacy_model_type_spellings_parse():
    assert ModelType.parse("lm") is ModelType.TEXT_GEN
    assert ModelType.parse(None) is ModelType.TEXT_GEN
    assert ModelType.parse("multimodal") is ModelType.VISION
    assert ModelType.parse("audio") is ModelType.AUDIO
