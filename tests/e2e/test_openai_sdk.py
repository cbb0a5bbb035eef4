"""The server as users run it: uvicorn on loopback, tiny real models imported, the real openai SDK."""

from __future__ import annotations

import io
import json
import threading
import wave

import httpx
import openai
import pytest
from click.testing import CliRunner

from entrypoints.cli.main import cli
from entrypoints.http.app import create_app
from tests.support.frontends import real_container, serve_in_thread
from tests.support.tiny_models import cached_model, no_eos_logits_processor

pytestmark = pytest.mark.slow

PROMPT = "Hello there"


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    root = tmp_path_factory.getbasetemp() / "tiny-models"
    return {
        "llama": cached_model("llama", root, tie_word_embeddings=False),
        "whisper": cached_model("whisper", root),
        "tts": cached_model("tts", root),
    }


@pytest.fixture(scope="module")
def server(tmp_path_factory, models):
    home = tmp_path_factory.mktemp("mlxm-home")
    container = real_container(home)
    runner = CliRunner()
    for name, kind in (("tiny-llama", "llama"), ("tiny-whisper", "whisper"), ("tiny-tts", "tts")):
        result = runner.invoke(cli, ["import", str(models[kind]), "--name", name, "--json"], obj=container)
        assert result.exit_code == 0, result.output
    result = runner.invoke(cli, ["profile", "create", "warm", "tiny-llama", "--temperature", "0.9", "--max-tokens", "12"],
                           obj=container)
    assert result.exit_code == 0, result.output
    with serve_in_thread(create_app(container)) as url:
        yield url, container
    pool = container.model_pool()
    pool.shutdown()


@pytest.fixture
def client(server):
    url, _ = server
    return openai.OpenAI(base_url=f"{url}/v1", api_key="x", max_retries=0, timeout=120)


def greedy_reference(llama_dir, messages, max_tokens):
    import mlx_lm
    from mlx_lm.sample_utils import make_sampler

    model, tokenizer = mlx_lm.load(str(llama_dir))
    prompt = tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
    return mlx_lm.generate(model, tokenizer, prompt, max_tokens=max_tokens, sampler=make_sampler(temp=0.0))


def test_list_models_shows_imports_and_profiles(client):
    ids = {m.id: m for m in client.models.list().data}
    assert {"tiny-llama", "tiny-whisper", "tiny-tts", "warm"} <= set(ids)
    assert ids["warm"].owned_by == "mlxm-profile:tiny-llama"
    assert client.models.retrieve("warm").owned_by == "mlxm-profile:tiny-llama"
    assert client.models.retrieve("tiny-llama").id == "tiny-llama"
    with pytest.raises(openai.NotFoundError):
        client.models.retrieve("tiny-lama")


def test_chat_greedy_non_streaming_and_streaming_equal_mlx_lm(client, models):
    messages = [{"role": "user", "content": PROMPT}]
    expected = greedy_reference(models["llama"], messages, 16)
    completion = client.chat.completions.create(model="tiny-llama", messages=messages, temperature=0, max_tokens=16)
    assert completion.choices[0].message.content == expected
    assert completion.choices[0].finish_reason in ("stop", "length")
    assert 0 < completion.usage.completion_tokens <= 16 and completion.usage.prompt_tokens > 0

    stream = client.chat.completions.create(model="tiny-llama", messages=messages, temperature=0, max_tokens=16,
                                            stream=True, stream_options={"include_usage": True})
    pieces, usage, finish = [], None, None
    for chunk in stream:
        if chunk.usage is not None:
            usage = chunk.usage
        for choice in chunk.choices:
            pieces.append(choice.delta.content or "")
            finish = choice.finish_reason or finish
    assert "".join(pieces) == expected
    assert usage.completion_tokens == completion.usage.completion_tokens
    assert finish == completion.choices[0].finish_reason


def test_profile_defaults_apply_and_a_request_temperature_zero_wins(client, models):
    # The profile says temperature 0.9 and max_tokens 12; the request's 0 must make it greedy.
    messages = [{"role": "user", "content": PROMPT}]
    completion = client.chat.completions.create(model="warm", messages=messages, temperature=0)
    assert completion.choices[0].message.content == greedy_reference(models["llama"], messages, 12)
    assert completion.usage.completion_tokens <= 12


def test_seeded_sampling_is_reproducible_over_http(client):
    messages = [{"role": "user", "content": PROMPT}]

    def ask(seed):
        return client.chat.completions.create(model="tiny-llama", messages=messages, temperature=1.0, seed=seed,
                                              max_tokens=12).choices[0].message.content

    assert ask(7) == ask(7)


def test_concurrent_streams_are_served_together_and_stay_independent(client, models):
    prompts = ["one two", "The quick brown fox", "seven eight", "Hello world"]
    expected = {p: greedy_reference(models["llama"], [{"role": "user", "content": p}], 10) for p in prompts}
    results: dict[str, str] = {}

    def ask(prompt):
        stream = client.chat.completions.create(model="tiny-llama", messages=[{"role": "user", "content": prompt}],
                                                temperature=0, max_tokens=10, stream=True)
        results[prompt] = "".join(c.choices[0].delta.content or "" for c in stream if c.choices)

    threads = [threading.Thread(target=ask, args=(p,)) for p in prompts]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert results == expected


def test_completions_endpoint(client):
    completion = client.completions.create(model="tiny-llama", prompt="The quick brown fox", max_tokens=5, temperature=0)
    again = client.completions.create(model="tiny-llama", prompt="The quick brown fox", max_tokens=5, temperature=0)
    assert completion.choices[0].text == again.choices[0].text
    assert 0 < completion.usage.completion_tokens <= 5


def test_speech_round_trip_into_transcription(client):
    speech = client.audio.speech.create(model="tiny-tts", voice="default", input="Hello world", response_format="wav")
    audio = speech.read()
    with wave.open(io.BytesIO(audio)) as wav:
        assert wav.getnframes() > 0 and wav.getframerate() > 0
    text = client.audio.transcriptions.create(model="tiny-whisper", file=("speech.wav", audio, "audio/wav"))
    assert isinstance(text.text, str)
    verbose = client.audio.transcriptions.create(model="tiny-whisper", file=("speech.wav", audio, "audio/wav"),
                                                 response_format="verbose_json")
    assert verbose.text == text.text  # temperature 0: deterministic
    plain = client.audio.transcriptions.create(model="tiny-whisper", file=("speech.wav", audio, "audio/wav"),
                                               response_format="text")
    assert plain == text.text or plain.strip() == text.text.strip()


def test_client_mistakes_raise_the_sdk_4xx_errors(client):
    messages = [{"role": "user", "content": "hi"}]
    with pytest.raises(openai.NotFoundError) as err:
        client.chat.completions.create(model="tiny-lama", messages=messages)
    assert "tiny-llama" in json.dumps(err.value.body)
    with pytest.raises(openai.NotFoundError):
        client.chat.completions.create(model="qwen3-4b", messages=messages)  # in the catalog, not installed
    with pytest.raises(openai.BadRequestError):
        client.chat.completions.create(model="tiny-whisper", messages=messages)  # wrong model type
    with pytest.raises(openai.BadRequestError):
        client.chat.completions.create(model="tiny-llama", messages=messages, n=17)  # n is 1-16
    with pytest.raises((openai.BadRequestError, openai.UnprocessableEntityError)):
        client.chat.completions.create(model="tiny-llama", messages=messages, temperature=7)
    with pytest.raises(openai.BadRequestError):
        client.audio.speech.create(model="tiny-llama", voice="x", input="hello")
    with pytest.raises(openai.BadRequestError):
        client.embeddings.create(model="tiny-llama", input="hello")


def test_stream_disconnect_releases_the_model(server, monkeypatch):
    url, container = server
    max_tokens = 2000  # within the tiny llama's 2048-token context: a larger request is a 400 now
    computed = []  # one entry per token the engine computes for this request
    text_runtime = container.model_runtime().text
    generate = text_runtime.generate

    def generate_without_eos(model, request):
        # The tiny llama may end by itself: forbid EOS so only the disconnect can stop it before max_tokens.
        stream = generate(model, request)
        no_eos = no_eos_logits_processor(model.handle.tokenizer.eos_token_ids)

        def counting(tokens, logits):
            computed.append(1)
            return no_eos(tokens, logits)

        stream.request.logits_processors.append(counting)
        return stream

    monkeypatch.setattr(text_runtime, "generate", generate_without_eos)
    body = {"model": "tiny-llama", "stream": True, "max_tokens": max_tokens, "temperature": 1.0,
            "messages": [{"role": "user", "content": "go on"}]}
    with httpx.Client(base_url=url, timeout=120) as http:
        with http.stream("POST", "/v1/chat/completions", json=body) as response:
            seen = 0
            for line in response.iter_lines():
                seen += line.startswith("data: ")
                if seen >= 3:
                    break
        import time

        deadline = time.monotonic() + 60
        while any(m["in_use"] for m in http.get("/api/pool").json()["loaded"]):
            assert time.monotonic() < deadline, "the abandoned stream still holds its model"
            time.sleep(0.05)
    # Released because the disconnect cancelled generation, not because it ran out of tokens.
    assert 2 <= len(computed) < max_tokens // 2, len(computed)


def test_management_api_on_the_live_server(server):
    url, _ = server
    with httpx.Client(base_url=url, timeout=60) as http:
        # Loaded here, so the test does not depend on an earlier one having used the model.
        assert http.post("/api/pool/load", json={"model": "tiny-llama"}).status_code == 200
        assert http.post("/api/chat", json={"model": "tiny-llama", "overrides": {"max_tokens": 1},
                                            "messages": [{"role": "user", "content": PROMPT}]}).status_code == 200
        loaded = {m["model_id"] for m in http.get("/api/pool").json()["loaded"]}
        assert "tiny-llama" in loaded
        shown = http.get("/api/models/tiny-llama").json()
        assert shown["type"] == "text-gen" and shown["last_used_at"] is not None
        chat = http.post("/api/chat", json={"profile_id": "warm", "overrides": {"temperature": 0, "max_tokens": 4},
                                            "messages": [{"role": "user", "content": PROMPT}]}).json()
        assert chat["profile"] == "warm" and chat["usage"]["completion_tokens"] <= 4
        assert http.get("/openapi.json").json()["paths"]["/v1/audio/transcriptions"]["post"]


def test_probe_over_http_and_cli_writes_capabilities(server):
    url, container = server
    with httpx.Client(base_url=url, timeout=300) as http:
        probed = http.post("/api/models/tiny-whisper/probe").json()
        assert probed["model_id"] == "tiny-whisper"
        assert probed["capabilities"]["model_type"] == "audio" and probed["capabilities"]["supports_stt"] is True
        assert probed["capabilities"]["probed_at"] is not None
        stored = http.get("/api/models/tiny-whisper").json()["capabilities"]
        assert stored["supports_stt"] is True
        assert http.get("/api/models", params={"capability": "stt"}).json()["data"][0]["id"] == "tiny-whisper"
        assert http.post("/api/models/nope/probe").status_code == 404
    result = CliRunner().invoke(cli, ["probe", "tiny-llama", "--json"], obj=container)
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["capabilities"]["model_type"] == "text-gen" and data["capabilities"]["probe_version"] is not None
