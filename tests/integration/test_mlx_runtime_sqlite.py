"""The runtime's use cases on the real SQLite database: last use and probe results persist."""

from __future__ import annotations

import pytest

from adapters.catalog.embedded import EmbeddedCatalogProvider
from adapters.system.clock import SystemClock
from adapters.mlx.inspector import FileModelInspector
from adapters.mlx.runtime import MlxRuntime
from adapters.sqlalchemy.database import open_database
from adapters.sqlalchemy.unit_of_work import sqlalchemy_uow_factory
from application.inference.service import InferenceService
from application.inference.pool import ModelPool
from application.inference.probe import PROBE_VERSION, ProbeService
from application.inference.ports import ChatMessage
from domain.library.capabilities import TextGenCapabilities
from domain.enums import ModelType
from domain.library.models import Model
from domain.profiles.params import InferenceParams
from domain.profiles.model import make_profile
from tests.support.tiny_models import cached_model

pytestmark = pytest.mark.slow


@pytest.fixture
def services(tmp_path):
    llama = cached_model("llama", tmp_path / "models")
    uow_factory = sqlalchemy_uow_factory(open_database(f"sqlite:///{tmp_path / 'mlxm.db'}"))
    with uow_factory() as uow:
        uow.models.add(Model("tiny-llama", model_type=ModelType.TEXT_GEN, local_path=str(llama)))
        uow.profiles.add(make_profile("greedy", ModelType.TEXT_GEN, model_id="tiny-llama",
                                      inference=InferenceParams(temperature=0.0, max_tokens=4)))
        uow.commit()
    runtime = MlxRuntime()
    pool = ModelPool(runtime, SystemClock())
    clock = SystemClock()
    inference = InferenceService(uow_factory, EmbeddedCatalogProvider(), pool, runtime, clock)
    probe = ProbeService(uow_factory, FileModelInspector(), pool, runtime, clock)
    yield inference, probe, uow_factory
    pool.shutdown()


def test_chat_by_profile_records_last_use(services):
    inference, _, uow_factory = services
    with uow_factory() as uow:
        assert uow.models.get("tiny-llama").last_used_at is None
    result = inference.chat("greedy", [ChatMessage("user", "Hello")])
    assert result.completion_tokens <= 4
    with uow_factory() as uow:
        assert uow.models.get("tiny-llama").last_used_at is not None


def test_probe_result_is_stored_as_the_text_subclass(services):
    _, probe, uow_factory = services
    probe.probe("tiny-llama")
    with uow_factory() as uow:
        caps = uow.models.get("tiny-llama").capabilities
    assert isinstance(caps, TextGenCapabilities)
    assert caps.probe_version == PROBE_VERSION and caps.probed_at is not None
    assert caps.practical_max_tokens == 2048 and caps.supports_native_tools is False
