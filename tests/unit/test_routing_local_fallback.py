"""A mapping's local fallback names a local model or profile (`--fallback local:NAME`); when the local
fallback cannot run, the error says the cloud backend failed and why (not 404 for the cloud name)."""

import json

import pytest
from click.testing import CliRunner

from application.errors import BackendError, InvalidRequest, NotFound
from entrypoints.cli.main import cli
from tests.unit.test_routing_service import REQUEST, world  # noqa: F401 - the fixture


class LocalWithModels:
    """Only `known` models exist locally; others are NotFound, as the local InferenceService says."""

    def __init__(self, known):
        self.known, self.calls = set(known), []

    def generate(self, model, request):
        from application.inference.ports import GenerationChunk

        self.calls.append(model)
        if model not in self.known:
            raise NotFound(f"unknown model or profile {model!r}")
        yield GenerationChunk(f"local:{model}", prompt_tokens=1, completion_tokens=1, finish_reason="stop")


def test_the_local_fallback_runs_the_named_model(world):  # noqa: F811
    router, mappings, _, _, _, script = world
    router._local = local = LocalWithModels({"qwen3-4b"})
    mapping = mappings.add("gpt-4o", "openai", fallback_backend="local:qwen3-4b")
    assert (mapping.fallback_backend.value, mapping.fallback_model) == ("local", "qwen3-4b")
    script["failure"] = BackendError("openai unreachable: connection refused", backend="openai")
    answer = router.complete("gpt-4o", REQUEST)
    assert answer.text == "local:qwen3-4b" and answer.backend == "local"
    assert local.calls == ["qwen3-4b"]


def test_no_local_model_fits_says_the_cloud_failed_and_why(world):  # noqa: F811
    router, mappings, _, _, _, script = world
    router._local = LocalWithModels(set())
    mappings.add("gpt-4o", "openai", fallback_backend="local")
    script["failure"] = BackendError("openai unreachable: connection refused", backend="openai")
    with pytest.raises(BackendError) as caught:
        router.complete("gpt-4o", REQUEST)
    assert not isinstance(caught.value, NotFound)
    message = str(caught.value)
    assert "openai backend failed" in message and "connection refused" in message and "local:NAME" in message


def test_a_model_is_only_named_for_the_local_fallback(world):  # noqa: F811
    _, mappings, _, _, _, _ = world
    with pytest.raises(InvalidRequest):
        mappings.add("gpt-4o", "openai", fallback_backend="anthropic:claude")
    updated = mappings.update(mappings.add("x", "openai").id, fallback_backend="local:tiny")
    assert updated.fallback_model == "tiny"
    assert mappings.update(updated.id, fallback_backend=None).fallback_model is None


def test_cli_routes_add_local_name(tmp_path, monkeypatch):
    from tests.support.frontends import fake_container

    monkeypatch.setenv("MLX_MANAGER_HOME", str(tmp_path))
    container, _ = fake_container(tmp_path)
    runner = CliRunner()
    added = runner.invoke(cli, ["routes", "add", "gpt-4o", "openai", "--fallback", "local:qwen3-4b", "--json"],
                          obj=container)
    assert added.exit_code == 0, added.output
    body = json.loads(added.output)
    assert (body["fallback_backend"], body["fallback_model"]) == ("local", "qwen3-4b")
    assert "local:qwen3-4b" in runner.invoke(cli, ["routes", "list"], obj=container).output
    bad = runner.invoke(cli, ["routes", "add", "x", "openai", "--fallback", "openai:gpt"], obj=container)
    assert bad.exit_code == 2 and "only the local fallback" in bad.output
