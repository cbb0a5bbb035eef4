"""The CLI through CliRunner on a container with in-memory fakes (real services, pool, inference)."""

import io
import json
import wave

import pytest
from click.testing import CliRunner

from domain.enums import ModelType
from entrypoints.cli.main import cli
from entrypoints.http.app import create_app
from tests.support.frontends import add_models, fake_container, serve_in_thread
from tests.support.model_folders import write_safetensors


@pytest.fixture
def env(tmp_path, monkeypatch):
    monkeypatch.setenv("MLX_MANAGER_HOME", str(tmp_path))
    container, uow = fake_container(tmp_path)
    add_models(uow, tmp_path / "models", ("tiny-llama", ModelType.TEXT_GEN), ("tiny-whisper", ModelType.AUDIO))
    runner = CliRunner()

    def invoke(*args, ok=True):
        result = runner.invoke(cli, list(args), obj=container)
        if ok:
            assert result.exit_code == 0, result.output
        return result

    return invoke, container, tmp_path


def _one_line_error(result):
    assert result.exit_code != 0
    assert "Traceback" not in result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.output
    return lines[0]


def test_list_search_show_json_and_tables(env):
    invoke, _, _ = env
    listed = json.loads(invoke("list", "--json").output)
    assert {m["id"] for m in listed} == {"tiny-llama", "tiny-whisper"}
    table = invoke("list").output
    assert "tiny-llama" in table and "text-gen" in table and "audio" in table
    found = json.loads(invoke("search", "tiny", "--type", "audio", "--json").output)
    assert found["total"] == 1 and found["data"][0]["id"] == "tiny-whisper"
    assert json.loads(invoke("show", "tiny-llama", "--json").output)["type"] == "text-gen"
    assert "tiny-llama" in _one_line_error(invoke("show", "tiny-lama", ok=False))
    assert "not installed" in _one_line_error(invoke("show", "qwen3-4b", ok=False))
    bad_type = invoke("search", "x", "--type", "speech", ok=False)
    assert bad_type.exit_code == 2 and "Traceback" not in bad_type.output


def test_import_then_use_the_name_everywhere_then_rm(env):
    invoke, container, tmp_path = env
    folder = tmp_path / "elsewhere" / "m"
    folder.mkdir(parents=True)
    (folder / "config.json").write_text('{"model_type": "llama"}')
    write_safetensors(folder / "model.safetensors")  # the import pipeline refuses corrupt weights
    imported = json.loads(invoke("import", str(folder), "--name", "my-llama", "--json").output)
    assert imported["id"] == "my-llama" and imported["type"] == "text-gen" and imported["created"] is True
    # Importing the same content again is a no-op that reports the existing id (issue 7).
    assert "Already in the library as my-llama" in invoke("import", str(folder), "--name", "my-llama").output
    assert invoke("run", "my-llama", "hello world", "--max-tokens", "3").output == "hello world hello\n"
    assert json.loads(invoke("rm", "my-llama", "--json").output) == {"id": "my-llama", "deleted": True}
    assert folder.exists()
    _one_line_error(invoke("show", "my-llama", ok=False))


def test_profile_crud_and_its_rules(env):
    invoke, container, _ = env
    created = json.loads(invoke("profile", "create", "chatty", "tiny-llama", "--temperature", "0", "--max-tokens", "4",
                                "--system", "Be brief", "--json").output)
    assert created["profile_type"] == "inference" and created["inference"]["temperature"] == 0
    assert created["context"]["system_prompt"] == "Be brief"
    assert "audio.voice" in _one_line_error(invoke("profile", "create", "v", "tiny-llama", "--voice", "af", ok=False))
    assert "already exists" in _one_line_error(invoke("profile", "create", "chatty", "tiny-llama", ok=False))
    assert "temperature" in _one_line_error(invoke("profile", "create", "hot", "tiny-llama", "--temperature", "7", ok=False))
    updated = json.loads(invoke("profile", "update", "chatty", "--top-p", "0.5", "--json").output)
    assert updated["inference"] == {**created["inference"], "top_p": 0.5}  # merged, not replaced
    assert "chatty" in invoke("profile", "list").output
    shown = invoke("profile", "show", "chatty").output
    assert "inference profile for tiny-llama" in shown and "top_p=0.5" in shown
    # The profile name works for inference, with its defaults (max_tokens 4) applied.
    assert invoke("run", "chatty", "a b c d e f").output == "a b c d\n"
    seen = container.runtime().requests[-1]
    assert seen.messages[0].content == "Be brief" and seen.params.temperature == 0
    invoke("profile", "rm", "chatty")
    assert json.loads(invoke("profile", "list", "--json").output) == []


def test_profile_response_format_from_the_cli(env):
    from domain.profiles.constraints import OutputConstraint

    invoke, container, _ = env
    schema = {"type": "object", "properties": {"n": {"type": "integer"}}}
    created = json.loads(invoke("profile", "create", "structured", "tiny-llama", "--response-format", json.dumps(schema),
                                "--json").output)
    assert created["context"]["response_format"]["json_schema"]["schema"] == schema
    invoke("run", "structured", "hello")
    assert container.runtime().requests[-1].constraint == OutputConstraint("json_schema", json.dumps(schema))
    updated = json.loads(invoke("profile", "update", "structured", "--response-format", "json_object", "--json").output)
    assert updated["context"]["response_format"] == {"type": "json_object"}
    result = invoke("profile", "update", "structured", "--response-format", "{not json", ok=False)
    assert result.exit_code == 2 and "not JSON" in result.output and "Traceback" not in result.output


@pytest.mark.parametrize("schema", [{"type": "object", "properties": {"a": {"$ref": "#/nowhere"}}},
                                    {"type": "string", "pattern": "(["}], ids=["dangling $ref", "bad pattern"])
def test_a_profile_response_format_that_cannot_be_compiled_is_refused_by_the_cli(env, schema):
    # Refused by the same compiler requests use, when saved (it was saved, then every `run` of it failed).
    invoke, _, _ = env
    assert "cannot be compiled" in _one_line_error(
        invoke("profile", "create", "structured", "tiny-llama", "--response-format", json.dumps(schema), ok=False))
    assert json.loads(invoke("profile", "list", "--json").output) == []
    invoke("profile", "create", "structured", "tiny-llama", "--response-format", "json_object")
    assert "cannot be compiled" in _one_line_error(
        invoke("profile", "update", "structured", "--response-format", json.dumps(schema), ok=False))
    shown = json.loads(invoke("profile", "show", "structured", "--json").output)
    assert shown["context"]["response_format"] == {"type": "json_object"}


def test_run_flags_reach_the_runtime_and_json_output(env):
    invoke, container, _ = env
    out = json.loads(invoke("run", "tiny-llama", "x y", "--temperature", "0", "--top-p", "0.9", "--seed", "7",
                            "--max-tokens", "2", "--system", "sys", "--json").output)
    assert out["text"] == "x y" and out["finish_reason"] == "length" and out["usage"]["completion_tokens"] == 2
    params = container.runtime().requests[-1].params
    assert (params.temperature, params.top_p, params.seed, params.max_tokens) == (0, 0.9, 7, 2)
    assert "temperature" in _one_line_error(invoke("run", "tiny-llama", "x", "--temperature", "3", ok=False))
    assert "text generation" in _one_line_error(invoke("run", "tiny-whisper", "x", ok=False))


def test_speak_writes_wav_and_transcribe_reads_it(env):
    invoke, _, tmp_path = env
    target = tmp_path / "out.wav"
    invoke("speak", "tiny-whisper", "hello there", "-o", str(target))
    with wave.open(io.BytesIO(target.read_bytes())) as wav:
        assert wav.getnframes() > 0
    assert invoke("transcribe", "tiny-whisper", str(target)).output.strip().endswith("seconds of audio")
    data = json.loads(invoke("transcribe", "tiny-whisper", str(target), "--json").output)
    assert data["language"] == "en" and data["segments"]
    _one_line_error(invoke("speak", "tiny-llama", "hi", "-o", str(tmp_path / "x.wav"), ok=False))
    assert not (tmp_path / "x.wav").exists()


def test_select_stores_the_canonical_id(env):
    invoke, container, home = env
    assert "--pull" in _one_line_error(invoke("select", "llama3.2-1b", ok=False))  # not installed yet (issue 15)
    add_models(container.uow_factory(), home / "models", ("llama-3.2-1b-instruct-4bit-v1", ModelType.TEXT_GEN))
    assert json.loads(invoke("select", "llama3.2-1b", "--json").output)["model_id"] == "llama-3.2-1b-instruct-4bit-v1"
    assert invoke("select").output.strip() == "llama-3.2-1b-instruct-4bit-v1"
    _one_line_error(invoke("select", "nonsense", ok=False))


def test_ps_and_unload_talk_to_the_running_server(env):
    invoke, container, _ = env
    assert "no mlxm server" in _one_line_error(invoke("ps", "--url", "http://127.0.0.1:9", ok=False))
    with serve_in_thread(create_app(container)) as url:
        assert "No models loaded" in invoke("ps", "--url", url).output
        container.model_pool().acquire("tiny-llama", container.library_service().show("tiny-llama").local_path,
                                       ModelType.TEXT_GEN).release()
        loaded = json.loads(invoke("ps", "--url", url, "--json").output)["loaded"]
        assert [m["model_id"] for m in loaded] == ["tiny-llama"]
        assert "tiny-llama" in invoke("ps", "--url", url).output
        assert invoke("unload", "tiny-llama", "--url", url).output.strip() == "Unloaded tiny-llama"
        assert "404" in _one_line_error(invoke("unload", "tiny-llama", "--url", url, ok=False))


def test_ps_sends_the_api_key_when_the_server_requires_one(tmp_path, monkeypatch):
    monkeypatch.delenv("MLX_MANAGER_API_KEY", raising=False)
    container, _ = fake_container(tmp_path, auth="on")
    admin = container.user_service().ensure_local_admin()
    secret = container.api_key_service().create("cli", user=admin.id).secret
    runner = CliRunner()
    # A CLI with another home: its local-admin token proves nothing to this server, so the key must.
    elsewhere, _ = fake_container(tmp_path / "elsewhere", auth="on")
    with serve_in_thread(create_app(container)) as url:
        refused = runner.invoke(cli, ["ps", "--url", url], obj=elsewhere)
        assert "401" in _one_line_error(refused)
        monkeypatch.setenv("MLX_MANAGER_API_KEY", secret)
        allowed = runner.invoke(cli, ["ps", "--url", url, "--json"], obj=elsewhere)
        assert allowed.exit_code == 0, allowed.output
        assert json.loads(allowed.output)["loaded"] == []


def test_run_goes_through_the_routed_service_like_http(env):
    """Backend routing and the audit log sit in front of `mlxm run` as they do in front of /v1/chat/completions."""
    from domain.audit.model import AuditQuery

    invoke, container, _ = env
    invoke("run", "tiny-llama", "x y", "--max-tokens", "2", "--json")
    rows = container.audit_service().query(AuditQuery()).items
    assert [(row.model, row.status.value) for row in rows] == [("tiny-llama", "success")]
    # A mapping to a cloud backend without a credential: the routed service refuses, the local one would answer.
    invoke("routes", "add", "tiny-", "openai", "--type", "prefix")
    error = _one_line_error(invoke("run", "tiny-llama", "x", ok=False))
    assert "openai" in error.lower()
