"""The parts of the sharded-model adapter that need no ranks: the hostfile, the remote engine's
bookkeeping (tokens to events, cancel, failure -> 503 for every waiting request), the runtime router,
and `mlxm serve`'s refusals. The ranks themselves run in tests/contract (runtime contract, "mlx-sharded")
and tests/e2e/test_sharded_serve.py."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from adapters.mlx.distributed.engine import RemoteEngine
from adapters.mlx.distributed.group import Hostfile
from adapters.mlx.distributed.runtime import ShardingRuntime
from adapters.mlx.engine import EngineRequest
from application.errors import InvalidRequest, Unavailable
from application.inference.ports import LoadedModel, Sharding
from domain.enums import ModelType
from domain.profiles.params import InferenceParams

TWO_LOCAL = {"hosts": [{"ssh": "127.0.0.1", "ips": ["127.0.0.1"]}, {"ssh": "127.0.0.1", "ips": ["127.0.0.1"]}]}


def test_a_hostfile_in_mlx_format_is_read_in_rank_order(tmp_path):
    path = tmp_path / "hosts.json"
    path.write_text(json.dumps({"backend": "ring", "hosts": [{"ssh": "127.0.0.1", "ips": ["127.0.0.1"]},
                                                              {"ssh": "mac-2", "ips": ["10.0.0.2"]}]}))
    hostfile = Hostfile.read(path)
    assert hostfile.hosts == ("127.0.0.1", "mac-2") and hostfile.backend == "ring"
    path.write_text(json.dumps(TWO_LOCAL["hosts"]))  # mlx also accepts a bare list
    assert Hostfile.read(path).hosts == ("127.0.0.1", "127.0.0.1") and Hostfile.read(path).backend is None


@pytest.mark.parametrize("content, message", [
    ("{not json", "is not JSON"),
    (json.dumps({"hosts": [{"ips": ["1.2.3.4"]}]}), "mlx.distributed_config's format"),
    (json.dumps({"hosts": [{"ssh": "127.0.0.1"}]}), "sharding needs at least 2"),
    (json.dumps({"hosts": [{"ssh": "mac-1"}, {"ssh": "127.0.0.1"}]}), "first host (rank 0) must be this machine"),
])
def test_a_bad_hostfile_is_refused_naming_the_problem(tmp_path, content, message):
    path = tmp_path / "hosts.json"
    path.write_text(content)
    with pytest.raises(InvalidRequest, match=message.replace("(", r"\(").replace(")", r"\)")):
        Hostfile.read(path)
    with pytest.raises(InvalidRequest, match="hosts-missing.json"):
        Hostfile.read(tmp_path / "hosts-missing.json")


class FakeGroup:
    model_id = "m"

    def __init__(self) -> None:
        self.sent: list[dict] = []
        self.available = True
        self.stopped = False

    def send(self, message: dict) -> None:
        if not self.available:
            raise Unavailable("m is unavailable: down")
        self.sent.append(message)

    def unavailable_reason(self) -> str:
        return "m is unavailable: down"

    def stop(self, timeout: float = 10.0) -> None:
        self.stopped = True


def _request(**params) -> EngineRequest:
    return EngineRequest(prompt=[1, 2, 3], max_tokens=4, params=InferenceParams(**params))


def test_tokens_from_rank_0_become_the_requests_events():
    group = FakeGroup()
    engine = RemoteEngine(group)
    request = _request(temperature=0.0, top_k=5)
    engine.submit(request)
    sent = group.sent[0]
    assert sent["op"] == "generate" and sent["prompt"] == [1, 2, 3] and sent["max_tokens"] == 4
    assert sent["params"]["temperature"] == 0.0 and sent["params"]["top_k"] == 5 and sent["params"]["seed"] is None
    engine.on_message({"op": "progress", "id": sent["id"], "done": 3, "total": 3})
    engine.on_message({"op": "token", "id": sent["id"], "token": 7, "finish": None})
    engine.on_message({"op": "token", "id": sent["id"], "token": 2, "finish": "stop", "logprob": -0.5,
                       "top": [[2, -0.5], [9, -1.0]]})
    assert request.events.get_nowait() == (0, 7, None, None, None)
    assert request.events.get_nowait() == (0, 2, "stop", -0.5, [(2, -0.5), (9, -1.0)])
    assert request.finished.is_set() and request.prefilled == 3 and request.generated == 2


def test_sampling_requests_get_one_seed_for_every_rank():
    group = FakeGroup()
    RemoteEngine(group).submit(_request(temperature=0.8))
    RemoteEngine(group).submit(_request(temperature=0.8, seed=42))
    assert isinstance(group.sent[0]["params"]["seed"], int)  # chosen here, so all ranks draw the same tokens
    assert group.sent[1]["params"]["seed"] == 42


def test_cancel_reaches_rank_0_once_and_done_finishes_the_request():
    group = FakeGroup()
    engine = RemoteEngine(group)
    request = _request(temperature=0.0)
    engine.submit(request)
    engine.cancel(request)
    engine.cancel(request)
    assert [m["op"] for m in group.sent] == ["generate", "cancel"]
    engine.on_message({"op": "done", "id": group.sent[0]["id"]})
    assert request.finished.is_set()


def test_a_failed_group_ends_every_waiting_request_with_a_503():
    group = FakeGroup()
    engine = RemoteEngine(group)
    first, second = _request(temperature=0.0), _request(temperature=0.0)
    engine.submit(first)
    engine.submit(second)
    engine.fail("m is unavailable: rank 1 died")
    for request in (first, second):
        event = request.events.get_nowait()
        assert isinstance(event, Unavailable) and "rank 1 died" in str(event) and request.finished.is_set()
    group.available = False
    with pytest.raises(Unavailable, match="down"):
        engine.submit(_request(temperature=0.0))


class Recorder:
    def __init__(self, name: str) -> None:
        self.name = name

    def load(self, model_id, path, model_type):
        model = LoadedModel(model_id, model_type, path, 1)
        if self.name == "distributed":
            model.sharding = Sharding("tensor", ("127.0.0.1", "127.0.0.1"), "ring")
        return model

    def cache_bytes(self, model):
        return self.name


def test_only_the_chosen_text_models_are_sharded(tmp_path):
    runtime = ShardingRuntime(Recorder("local"), Recorder("distributed"), ["big"])
    big = runtime.load("big", tmp_path, ModelType.TEXT_GEN)
    small = runtime.load("small", tmp_path, ModelType.TEXT_GEN)
    assert big.sharding is not None and small.sharding is None
    assert runtime.cache_bytes(big) == "distributed" and runtime.cache_bytes(small) == "local"
    every = ShardingRuntime(Recorder("local"), Recorder("distributed"))
    assert every.shards("any", ModelType.TEXT_GEN) and not every.shards("any", ModelType.EMBEDDINGS)


def test_serve_refuses_sharding_options_without_a_hostfile_and_a_bad_hostfile(tmp_path, monkeypatch):
    from entrypoints.cli.main import cli

    monkeypatch.setenv("MLX_MANAGER_HOME", str(tmp_path))
    monkeypatch.delenv("MLX_SHARDING_HOSTFILE", raising=False)
    result = CliRunner().invoke(cli, ["serve", "--pipeline"])
    assert result.exit_code == 2 and "--hosts HOSTFILE" in result.output
    bad = tmp_path / "hosts.json"
    bad.write_text(json.dumps({"hosts": [{"ssh": "mac-1"}, {"ssh": "mac-2"}]}))
    result = CliRunner().invoke(cli, ["serve", "--hosts", str(bad), "--port", "1"])
    assert result.exit_code != 0 and "Error: hostfile" in result.output and "rank 0" in result.output
    assert "Traceback" not in result.output
