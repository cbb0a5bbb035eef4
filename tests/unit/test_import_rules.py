"""Pure import rules: safe model IDs, weight-file safety, type/family inference with confidence."""

from __future__ import annotations

import pytest

from domain.enums import ModelType
from domain.library.importing import (
    CONFIDENCE_THRESHOLD,
    MAX_MODEL_ID_LENGTH,
    InvalidModelName,
    content_digest,
    infer_family,
    infer_model_type,
    is_safe_relative_path,
    normalise_model_id,
    pickle_weight_files,
    weight_files,
)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("Tiny Llama", "tiny-llama"),
        ("mlx-community/Qwen3-0.6B-4bit", "mlx-community-qwen3-0.6b-4bit"),
        ("..\\evil/../name", "evil-name"),
        ("  My_Model.v2  ", "my_model.v2"),
        ("a--b__c..d", "a-b_c.d"),
        ("-leading.and.trailing-", "leading.and.trailing"),
    ],
)
def test_names_are_normalised_into_safe_ids(raw, expected):
    assert normalise_model_id(raw) == expected


@pytest.mark.parametrize("raw", [".", "..", "con", "CON", "api", "nul.txt", "com1", "v1", "staging", "models"])
def test_reserved_names_are_refused(raw):
    with pytest.raises(InvalidModelName, match="reserved"):
        normalise_model_id(raw)


@pytest.mark.parametrize("raw", ["", "   ", "///", "***"])
def test_names_without_usable_characters_are_refused(raw):
    with pytest.raises(InvalidModelName):
        normalise_model_id(raw)


def test_long_names_are_refused_not_truncated():
    assert normalise_model_id("a" * MAX_MODEL_ID_LENGTH) == "a" * MAX_MODEL_ID_LENGTH
    with pytest.raises(InvalidModelName, match="longer than"):
        normalise_model_id("a" * (MAX_MODEL_ID_LENGTH + 1))


def test_normalised_ids_never_contain_separators():
    for raw in ["a/b", "a\\b", "a:b", "a b", "a\x00b"]:
        value = normalise_model_id(raw)
        assert "/" not in value and "\\" not in value and "\x00" not in value


@pytest.mark.parametrize(
    ("path", "safe"),
    [("model.safetensors", True), ("sub/dir/file", True), ("../x", False), ("a/../../x", False),
     ("/etc/passwd", False), ("a//b", False), ("./a", False), ("", False), ("a\\..\\b", False)],
)
def test_relative_path_safety(path, safe):
    assert is_safe_relative_path(path) is safe


def test_pickle_suffixes_are_detected_case_insensitively():
    files = ["model.safetensors", "pytorch_model.BIN", "x.pt", "sub/y.pth", "z.ckpt", "config.json", "bin"]
    assert pickle_weight_files(files) == ["pytorch_model.BIN", "sub/y.pth", "x.pt", "z.ckpt"]
    assert "model.safetensors" in weight_files(files) and "config.json" not in weight_files(files)


def test_content_digest_ignores_order_but_not_content():
    a = content_digest([("a", "1"), ("b", "2")])
    assert a == content_digest([("b", "2"), ("a", "1")])
    assert a != content_digest([("a", "1"), ("b", "3")])
    assert a != content_digest([("a", "1"), ("c", "2")])


LLAMA_CONFIG = {"model_type": "llama", "architectures": ["LlamaForCausalLM"], "hidden_size": 64}
LLAMA_TENSORS = ["model.embed_tokens.weight", "model.layers.0.self_attn.q_proj.weight", "model.norm.weight"]


def test_text_model_with_agreeing_signals_is_confident():
    result = infer_model_type(LLAMA_CONFIG, LLAMA_TENSORS)
    assert result.model_type is ModelType.TEXT_GEN
    assert result.family == "llama"
    assert result.confidence >= CONFIDENCE_THRESHOLD
    assert result.review_reasons == ()


def test_whisper_is_audio():
    config = {"model_type": "whisper", "n_mels": 80, "n_audio_ctx": 1500}
    result = infer_model_type(config, ["encoder.conv1.weight", "decoder.blocks.0.attn.query.weight"])
    assert result.model_type is ModelType.AUDIO and not result.needs_review


def test_vision_model_with_text_backbone_is_vision_without_review():
    config = {"model_type": "gemma3", "architectures": ["Gemma3ForConditionalGeneration"], "vision_config": {}}
    tensors = ["vision_tower.encoder.layers.0.weight", "language_model.model.layers.0.self_attn.q_proj.weight"]
    result = infer_model_type(config, tensors)
    assert result.model_type is ModelType.VISION
    assert result.family == "gemma3"
    assert not result.needs_review


def test_qwen_vl_family_is_readable():
    assert infer_family({"model_type": "qwen2_5_vl"}) == "qwen2.5-vl"
    assert infer_family({"model_type": "gemma3_text"}) == "gemma3"
    assert infer_family({"architectures": ["MistralForCausalLM"]}) == "mistral"
    assert infer_family({}) is None


def test_embeddings_from_config_and_pooler_tensors():
    result = infer_model_type({"model_type": "bert", "architectures": ["BertModel"]},
                              ["embeddings.word_embeddings.weight", "pooler.dense.weight"])
    assert result.model_type is ModelType.EMBEDDINGS and not result.needs_review


def test_disagreeing_config_and_tensors_are_reported_for_review():
    result = infer_model_type(LLAMA_CONFIG, ["vision_tower.blocks.0.attn.weight", "encoder.conv1.weight"])
    assert result.needs_review
    assert any("config.json says text-gen but tensor names say" in r for r in result.review_reasons)


def test_weights_only_is_weak_and_reviewed():
    result = infer_model_type(None, LLAMA_TENSORS)
    assert result.model_type is ModelType.TEXT_GEN
    assert result.confidence < CONFIDENCE_THRESHOLD
    assert any("no config.json" in r for r in result.review_reasons)
    assert any("low confidence" in r for r in result.review_reasons)


def test_no_signal_at_all_is_never_guessed_silently():
    result = infer_model_type({"hidden_size": 8}, [])
    assert result.confidence == 0.0
    assert any("no signal" in r for r in result.review_reasons)
    assert any("family unknown" in r for r in result.review_reasons)


def test_confidence_grows_with_agreeing_evidence():
    weak = infer_model_type({"architectures": ["LlamaForCausalLM"]}, [])
    strong = infer_model_type(LLAMA_CONFIG, LLAMA_TENSORS)
    assert strong.confidence > weak.confidence


def test_tts_model_wrapping_a_causal_lm_is_audio_without_review():
    # Soprano-like: a known audio model_type, a *ForCausalLM architecture, an LM beside a vocoder.
    config = {"model_type": "soprano", "architectures": ["SopranoForCausalLM"], "sample_rate": 32000}
    tensors = ["language_model.embed_tokens.weight", "language_model.layers.0.self_attn.q_proj.weight",
               "decoder.decoder.convnext.0.dwconv.weight", "decoder.head.out.weight"]
    result = infer_model_type(config, tensors)
    assert result.model_type is ModelType.AUDIO and result.family == "soprano"
    assert result.confidence >= CONFIDENCE_THRESHOLD and not result.needs_review


def test_a_strong_runner_up_is_reported_as_mixed_signals():
    config = {"architectures": ["LlamaForCausalLM"], "sample_rate": 16000}
    result = infer_model_type(config, LLAMA_TENSORS)
    assert result.model_type is ModelType.TEXT_GEN
    assert any(r.startswith("mixed signals: text-gen (5) over audio (2)") for r in result.review_reasons)


@pytest.mark.parametrize("architectures", [5, "LlamaForCausalLM", {"a": 1}, [1, 2], ["LlamaForCausalLM", None]])
def test_architectures_that_are_not_a_list_of_names_become_a_review_reason(architectures):
    inference = infer_model_type({"model_type": "llama", "architectures": architectures}, ["lm_head.weight"])
    assert inference.model_type is ModelType.TEXT_GEN
    assert any("architectures is not a list of names" in r for r in inference.review_reasons)
    assert infer_family({"architectures": architectures}) is None
