"""Server start-up and shutdown: preload of auto_start profiles, the TTL sweep, unloading everything."""

import time

from starlette.testclient import TestClient

from application.inference.pool import PoolLimits
from domain.enums import EvictionPolicy, ModelType
from entrypoints.http import app as app_module
from entrypoints.http.app import create_app
from tests.support.frontends import add_models, fake_container


def test_auto_start_profiles_are_preloaded_pinned_and_everything_unloads_at_shutdown(tmp_path):
    container, uow = fake_container(tmp_path)
    add_models(uow, tmp_path / "models", ("tiny-llama", ModelType.TEXT_GEN), ("tiny-whisper", ModelType.AUDIO))
    container.profile_service().create("always", "tiny-llama", auto_start=True)
    container.profile_service().create("sometimes", "tiny-whisper")
    runtime = container.runtime()
    with TestClient(create_app(container)) as client:
        loaded = client.get("/api/pool").json()["loaded"]
        assert [(m["model_id"], m["pinned"]) for m in loaded] == [("tiny-llama", True)]
        assert runtime.loads == ["tiny-llama"]
    assert runtime.unloads == ["tiny-llama"]  # graceful shutdown


def test_a_broken_auto_start_profile_does_not_stop_the_server(tmp_path):
    container, uow = fake_container(tmp_path)
    add_models(uow, tmp_path / "models", ("tiny-llama", ModelType.TEXT_GEN), ("tiny-whisper", ModelType.AUDIO))
    container.profile_service().create("always", "tiny-llama", auto_start=True)
    container.profile_service().create("voice", "tiny-whisper", auto_start=True)
    container.runtime().fail_loads.add("tiny-llama")
    with TestClient(create_app(container)) as client:
        assert client.get("/api/health").status_code == 200
        # The broken profile is skipped; the next one still loads (through InferenceService.preload_auto_start).
        assert [m["model_id"] for m in client.get("/api/pool").json()["loaded"]] == ["tiny-whisper"]


def test_the_periodic_sweep_unloads_idle_models_under_ttl(tmp_path, monkeypatch):
    monkeypatch.setattr(app_module, "POOL_SWEEP_INTERVAL_SECONDS", 0.05)
    container, uow = fake_container(tmp_path, pool_limits=PoolLimits(policy=EvictionPolicy.TTL, idle_ttl_seconds=60))
    add_models(uow, tmp_path / "models", ("tiny-llama", ModelType.TEXT_GEN))
    clock = container.clock()
    with TestClient(create_app(container)) as client:
        assert client.post("/api/pool/load", json={"model": "tiny-llama"}).status_code == 200
        time.sleep(0.3)  # several sweeps run; the model is not idle long enough yet
        assert [m["model_id"] for m in client.get("/api/pool").json()["loaded"]] == ["tiny-llama"]
        clock.advance(61)
        deadline = time.monotonic() + 10
        while client.get("/api/pool").json()["loaded"]:
            assert time.monotonic() < deadline, "the sweep never unloaded the idle model"
            time.sleep(0.05)
    assert container.runtime().unloads == ["tiny-llama"]


def test_downloads_left_running_by_a_crash_are_paused_at_start_up(tmp_path):
    from domain.downloads.model import Download
    from domain.enums import DownloadStatus

    container, uow = fake_container(tmp_path)
    with uow:
        row = uow.downloads.add(Download("crashed-model", status=DownloadStatus.DOWNLOADING, total_bytes=10,
                                         downloaded_bytes=4))
        uow.commit()
    with TestClient(create_app(container)):
        with uow:
            assert uow.downloads.get(row.id).status is DownloadStatus.PAUSED
