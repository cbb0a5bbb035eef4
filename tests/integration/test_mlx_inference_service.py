"""InferenceService over the real MLX runtime and pool: the cascade reaches mlx-lm."""

from __future__ import annotations

import pytest

from adapters.catalog.embedded import EmbeddedCatalogProvider
from adapters.system.clock import SystemClock
from adapters.memory.repositories import InMemoryUnitOfWork
from adapters.mlx.runtime import MlxRuntime
from application.inference.service import InferenceService
from application.inference.pool import ModelPool, PoolLimits
from application.inference.ports import ChatMessage
from domain.enums import ModelType
from domain.library.models import Model
from domain.profiles.params import AudioDefaults, InferenceParams
from domain.profiles.model import make_profile
from tests.support.tiny_models import cached_model

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("mlx-service")
    llama = cached_model("llama", root, tie_word_embeddings=False)
    tts = cached_model("tts", root)
    uow = InMemoryUnitOfWork()
    with uow:
        uow.models.add(Model("tiny-llama", model_type=ModelType.TEXT_GEN, local_path=str(llama)))
        uow.models.add(Model("tiny-tts", model_type=ModelType.AUDIO, local_path=str(tts)))
        uow.profiles.add(
            make_profile("warm", ModelType.TEXT_GEN, model_id="tiny-llama", inference=InferenceParams(temperature=0.7))
        )
        uow.commit()
    runtime = MlxRuntime(max_speech_tokens=8)
    pool = ModelPool(runtime, SystemClock(), PoolLimits(max_models=2))
    service = InferenceService(
        lambda: uow, EmbeddedCatalogProvider(), pool, runtime, SystemClock(),
        system_params=InferenceParams(temperature=1.0, max_tokens=16, top_p=1.0),
    )
    yield service, pool, llama
    pool.shutdown()


def test_request_temperature_zero_over_profile_is_greedy_mlx_lm(setup):
    import mlx_lm
    from mlx_lm.sample_utils import make_sampler

    service, pool, llama = setup
    messages = [ChatMessage("user", "Hello there")]
    result = service.chat("warm", messages, InferenceParams(temperature=0.0))
    model, tokenizer = mlx_lm.load(str(llama))
    prompt = tokenizer.apply_chat_template([{"role": "user", "content": "Hello there"}], add_generation_prompt=True, tokenize=False)
    assert result.text == mlx_lm.generate(model, tokenizer, prompt, max_tokens=16, sampler=make_sampler(temp=0.0))
    assert result.completion_tokens <= 16  # max_tokens came from the system defaults


def test_streams_release_the_pool_and_speech_loads_a_second_model(setup):
    service, pool, _ = setup
    with service.stream_complete("tiny-llama", "Hello", InferenceParams(max_tokens=200)) as stream:
        next(stream)
        assert {i.model_id: i.in_use for i in pool.loaded()}["tiny-llama"] == 1
    assert {i.model_id: i.in_use for i in pool.loaded()}["tiny-llama"] == 0
    wav = service.speak("tiny-tts", "Hello.", AudioDefaults())
    assert wav[:4] == b"RIFF"
    sizes = {i.model_id: i.size_bytes for i in pool.loaded()}
    assert set(sizes) == {"tiny-llama", "tiny-tts"} and sizes["tiny-tts"] > sizes["tiny-llama"] > 0
