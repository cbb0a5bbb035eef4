"""Probe on tiny real models: the file inspector plus a real mlx-lm test generation."""

from __future__ import annotations

import pytest

from adapters.system.clock import SystemClock
from adapters.memory.repositories import InMemoryUnitOfWork
from adapters.mlx.inspector import FileModelInspector
from adapters.mlx.runtime import MlxRuntime
from application.inference.pool import ModelPool
from application.inference.probe import PROBE_VERSION, ProbeService
from domain.library.capabilities import AudioCapabilities, TextGenCapabilities
from domain.enums import ModelType
from domain.library.models import Model
from tests.support.tiny_models import CHAT_TEMPLATE, cached_model

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def probe(tmp_path_factory):
    root = tmp_path_factory.mktemp("mlx-probe")
    uow = InMemoryUnitOfWork()
    with uow:
        uow.models.add(Model("llama", model_type=ModelType.TEXT_GEN, local_path=str(cached_model("llama", root))))
        uow.models.add(Model("whisper", model_type=ModelType.AUDIO, local_path=str(cached_model("whisper", root))))
        uow.commit()
    runtime = MlxRuntime()
    pool = ModelPool(runtime, SystemClock())
    yield ProbeService(lambda: uow, FileModelInspector(), pool, runtime, SystemClock()), uow
    pool.shutdown()


def test_text_probe_reads_config_template_and_generates(probe):
    service, uow = probe
    facts = FileModelInspector().inspect(uow.models.get("llama").local_path, ModelType.TEXT_GEN)
    assert facts.chat_template == CHAT_TEMPLATE and "<|assistant|>" in facts.special_tokens
    result = service.probe("llama")
    caps = result.capabilities
    assert isinstance(caps, TextGenCapabilities)
    assert (caps.model_family, caps.practical_max_tokens) == ("llama", 2048)
    assert caps.supports_native_tools is False and caps.supports_thinking is False
    assert result.sample_output is not None and result.warnings == []
    with uow:
        assert uow.models.get("llama").capabilities.probe_version == PROBE_VERSION


def test_audio_probe_tells_stt(probe):
    service, uow = probe
    caps = service.probe("whisper").capabilities
    assert isinstance(caps, AudioCapabilities) and caps.supports_stt and not caps.supports_tts
