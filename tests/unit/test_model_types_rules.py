"""Rules for the model types: import inference of embedding layouts, embedding input shapes."""

from __future__ import annotations

import pytest

from application.errors import InvalidRequest
from application.inference.service import _embedding_inputs
from domain.enums import ModelType
from domain.library.importing import infer_model_type

QWEN3 = {"model_type": "qwen3", "architectures": ["Qwen3ForCausalLM"]}
TENSORS = ["model.embed_tokens.weight", "model.layers.0.self_attn.q_proj.weight"]


def test_a_causal_lm_in_a_sentence_transformers_layout_is_an_embeddings_model():
    assert infer_model_type(QWEN3, TENSORS).model_type is ModelType.TEXT_GEN
    inference = infer_model_type(QWEN3, TENSORS, sentence_transformers=True)
    assert inference.model_type is ModelType.EMBEDDINGS
    assert not inference.review_reasons


@pytest.mark.parametrize("given,expected", [
    ("hi", ("hi",)),
    (["a", "b"], ("a", "b")),
    ([1, 2, 3], ((1, 2, 3),)),
    ([[1, 2], [3]], ((1, 2), (3,))),
])
def test_embedding_inputs_take_the_four_openai_shapes(given, expected):
    assert _embedding_inputs(given) == expected


@pytest.mark.parametrize("bad", ["", [], [""], [[]], [1.5], [True, 2], [["a"]], None, 3])
def test_bad_embedding_inputs_are_refused(bad):
    with pytest.raises(InvalidRequest):
        _embedding_inputs(bad)


# -- images on the inference service (fakes) ------------------------------------------------
from adapters.catalog.embedded import EmbeddedCatalogProvider  # noqa: E402
from adapters.memory.repositories import FakeClock, InMemoryUnitOfWork  # noqa: E402
from adapters.memory.runtime import FakeModelRuntime  # noqa: E402
from application.inference.images import ImagePolicy, ImageResolver  # noqa: E402
from application.inference.service import InferenceService  # noqa: E402
from application.inference.pool import ModelPool, PoolLimits  # noqa: E402
from application.inference.ports import ChatMessage, ImageInput  # noqa: E402
from domain.library.capabilities import VisionCapabilities  # noqa: E402
from domain.library.models import Model  # noqa: E402


class FakeFetcher:
    def __init__(self):
        self.urls = []

    def fetch(self, url, *, max_bytes, timeout):
        self.urls.append((url, max_bytes, timeout))
        return ImageInput(data=b"fetched", media_type="image/png")


@pytest.fixture
def service():
    uow = InMemoryUnitOfWork()
    runtime = FakeModelRuntime()
    with uow:
        uow.models.add(Model("chat", model_type=ModelType.TEXT_GEN, local_path="/m/chat"))
        uow.models.add(Model("eyes", model_type=ModelType.VISION, local_path="/m/eyes"))
        uow.models.add(Model("one-eye", model_type=ModelType.VISION, local_path="/m/one",
                             capabilities=VisionCapabilities(supports_multi_image=False)))
        uow.commit()
    fetcher = FakeFetcher()
    images = ImageResolver(ImagePolicy(allow_remote=True, max_bytes=1000, timeout_seconds=3), fetcher)
    clock = FakeClock()
    svc = InferenceService(lambda: uow, EmbeddedCatalogProvider(), ModelPool(runtime, clock, PoolLimits(max_models=2)),
                           runtime, clock, images=images)
    return svc, runtime, fetcher


IMG = ImageInput(data=b"\x89PNG....")


def test_an_image_for_a_text_model_is_a_400_naming_its_type(service):
    svc, runtime, _ = service
    with pytest.raises(InvalidRequest, match="'chat' is a text-gen model; images need a vision model"):
        svc.stream_chat("chat", [ChatMessage("user", "hi", images=(IMG,))])
    assert runtime.requests == [] and runtime.loads == []  # refused before loading anything


def test_images_reach_the_runtime_and_remote_ones_are_fetched_first(service):
    svc, runtime, fetcher = service
    svc.chat("eyes", [ChatMessage("user", "a", images=(IMG,)), ChatMessage("assistant", "b"),
                      ChatMessage("user", "c", images=(ImageInput(url="https://example.com/x.png"), IMG))])
    (request,) = runtime.requests
    assert [len(m.images) for m in request.messages] == [1, 0, 2]
    assert request.messages[2].images[0] == ImageInput(data=b"fetched", media_type="image/png")
    assert fetcher.urls == [("https://example.com/x.png", 1000, 3)]


def test_the_probed_single_image_limit_is_enforced(service):
    svc, runtime, _ = service
    svc.chat("one-eye", [ChatMessage("user", "a", images=(IMG,))])
    with pytest.raises(InvalidRequest, match="one image per request"):
        svc.chat("one-eye", [ChatMessage("user", "a", images=(IMG, IMG))])
