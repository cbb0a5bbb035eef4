"""Probe rules on facts, and ProbeService on fakes (inspector, runtime, in-memory UoW)."""

from __future__ import annotations

from pathlib import Path

import pytest

from adapters.memory.repositories import FakeClock, InMemoryUnitOfWork
from adapters.memory.runtime import FakeModelRuntime
from application.errors import InvalidRequest
from application.inference.pool import ModelPool
from application.inference.ports import ModelFacts
from application.inference.probe import (
    PROBE_VERSION,
    ProbeService,
    audio_capabilities,
    embedding_capabilities,
    text_capabilities,
    vision_capabilities,
)
from domain.library.capabilities import AudioCapabilities, EmbeddingCapabilities, TextGenCapabilities
from domain.enums import DownloadStatus, ModelType
from domain.library.models import Model

QWEN_TEMPLATE = (
    "{%- if tools %}<|im_start|>system\n# Tools\n<tools>{{ tools }}</tools>\n"
    "For each function call, return a json object within <tool_call></tool_call> XML tags{%- endif %}"
    "{%- if enable_thinking is defined and enable_thinking is false %}<think>\n\n</think>{%- endif %}"
)
LLAMA3_TEMPLATE = "{%- if tools is not none %}Environment: ipython{% endif %}<|python_tag|>{{ message }}"


def test_text_qwen_style_tools_and_thinking():
    facts = ModelFacts(config={"model_type": "qwen3", "max_position_embeddings": 40960}, chat_template=QWEN_TEMPLATE)
    caps = text_capabilities(facts, sample_output="Hello")
    assert (caps.model_family, caps.practical_max_tokens) == ("qwen3", 40960)
    assert (caps.supports_native_tools, caps.tool_format, caps.tool_parser_id) == (True, "hermes", "hermes")
    assert (caps.supports_thinking, caps.thinking_parser_id) == (True, "think_tags")


def test_text_llama3_tools_without_thinking():
    facts = ModelFacts(config={"model_type": "llama", "max_position_embeddings": 131072}, chat_template=LLAMA3_TEMPLATE)
    caps = text_capabilities(facts, sample_output="Hi")
    assert (caps.supports_native_tools, caps.tool_format) == (True, "llama3")
    assert caps.supports_thinking is False


def test_text_without_template_markers_has_no_tools_and_thinking_seen_in_output():
    facts = ModelFacts(config={"model_type": "llama"}, chat_template="{{ messages }}")
    caps = text_capabilities(facts, sample_output="<think>hmm")
    assert caps.supports_native_tools is False and caps.tool_format is None
    assert caps.supports_thinking is True  # only the test generation showed it
    assert caps.practical_max_tokens is None


def test_vision_from_config():
    facts = ModelFacts(
        config={"model_type": "qwen2_5_vl", "vision_config": {}, "video_token_id": 1, "image_token_id": 2},
        chat_template="<tool_call>",
    )
    caps = vision_capabilities(facts)
    assert caps.supports_video and caps.supports_multi_image and caps.supports_native_tools
    assert caps.model_family == "qwen2_5_vl"


def test_audio_and_embeddings():
    assert audio_capabilities(ModelFacts(config={"model_type": "whisper"}, audio_kind="stt")).supports_stt
    tts = audio_capabilities(ModelFacts(config={"model_type": "kokoro"}, audio_kind="tts"))
    assert tts.supports_tts and not tts.supports_stt
    emb = embedding_capabilities(
        ModelFacts(config={"model_type": "bert", "hidden_size": 384, "max_position_embeddings": 512}, normalizes_embeddings=True)
    )
    assert (emb.embedding_dimensions, emb.max_sequence_length, emb.is_normalized) == (384, 512, True)


class FakeInspector:
    def __init__(self, facts: dict[str, ModelFacts]) -> None:
        self.facts = facts

    def inspect(self, path: Path, model_type: ModelType) -> ModelFacts:
        return self.facts[Path(path).name]


@pytest.fixture
def service():
    uow = InMemoryUnitOfWork()
    clock = FakeClock()
    runtime = FakeModelRuntime()
    with uow:
        uow.models.add(Model("chat", model_type=ModelType.TEXT_GEN, local_path="/m/chat"))
        uow.models.add(Model("ears", model_type=ModelType.AUDIO, local_path="/m/ears"))
        uow.models.add(Model("vec", model_type=ModelType.EMBEDDINGS, local_path="/m/vec"))
        uow.models.add(Model("partial", model_type=ModelType.TEXT_GEN, status=DownloadStatus.DOWNLOADING))
        uow.commit()
    inspector = FakeInspector(
        {
            "chat": ModelFacts(config={"model_type": "qwen3", "max_position_embeddings": 4096}, chat_template=QWEN_TEMPLATE),
            "ears": ModelFacts(config={"model_type": "whisper"}, audio_kind="stt"),
            "vec": ModelFacts(config={"model_type": "bert", "hidden_size": 384}, normalizes_embeddings=False),
        }
    )
    pool = ModelPool(runtime, clock)
    return ProbeService(lambda: uow, inspector, pool, runtime, clock), uow, runtime, clock


def test_probe_writes_the_subclass_with_time_and_version(service):
    probe, uow, runtime, clock = service
    result = probe.probe("chat")
    assert isinstance(result.capabilities, TextGenCapabilities)
    assert result.sample_output  # the short generation ran through the runtime
    assert runtime.requests[-1].params.temperature == 0.0
    with uow:
        stored = uow.models.get("chat")
    assert isinstance(stored.capabilities, TextGenCapabilities)
    assert stored.capabilities.probed_at == clock.now()
    assert stored.capabilities.probe_version == PROBE_VERSION
    assert stored.capabilities.supports_native_tools is True
    assert stored.family == "qwen3"


def test_probe_other_types(service):
    probe, uow, runtime, clock = service
    ears = probe.probe("ears").capabilities
    assert isinstance(ears, AudioCapabilities) and (ears.supports_stt, ears.supports_tts) == (True, False)
    emb = probe.probe("vec").capabilities
    # The values of a real embedding win over config.json's (the fake gives 8 unit-length dims, max 512).
    assert isinstance(emb, EmbeddingCapabilities)
    assert (emb.embedding_dimensions, emb.is_normalized, emb.max_sequence_length) == (8, True, 512)
    assert runtime.loads == ["ears", "vec"]  # every type is run, not only text


def test_probe_without_runs_reads_files_only(service):
    probe, uow, runtime, clock = service
    emb = probe.probe("vec", generate=False).capabilities
    assert (emb.embedding_dimensions, emb.is_normalized) == (384, False)
    assert runtime.loads == []


def test_failed_generation_is_reported_not_raised(service):
    probe, uow, runtime, clock = service
    runtime.fail_loads = {"chat"}
    result = probe.probe("chat")
    assert any("test generation failed" in w for w in result.warnings)
    assert result.capabilities.practical_max_tokens == 4096


def test_probe_refuses_a_model_that_is_not_installed(service):
    probe, *_ = service
    with pytest.raises(InvalidRequest, match="not installed"):
        probe.probe("partial")
