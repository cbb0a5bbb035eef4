"""The server as users run it: uvicorn on loopback, tiny real models imported, the real openai SDK.

The text-generation checks run on a text model (tiny llama, mlx-lm) and, text-only, on a vision model
(tiny Qwen2-VL, mlx-vlm): `CHAT_MODELS`. Where a feature is not served for vision models the vision case
asserts the documented 400 (README "Vision")."""

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
from tests.support.served_models import openai_client, serving
from tests.support.tiny_models import cached_model, no_eos_logits_processor

pytestmark = pytest.mark.slow

PROMPT = "Hello there"
CHAT_MODELS = ["tiny-llama", "tiny-vlm"]


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    root = tmp_path_factory.getbasetemp() / "tiny-models"
    return {
        "llama": cached_model("llama", root, tie_word_embeddings=False),
        "whisper": cached_model("whisper", root),
        "tts": cached_model("tts", root),
        "vlm": cached_model("qwen2_vl", root),
    }


@pytest.fixture(scope="module")
def server(tmp_path_factory, models):
    names = {"tiny-llama": "llama", "tiny-whisper": "whisper", "tiny-tts": "tts", "tiny-vlm": "vlm"}
    profiles = [["profile", "create", profile, model, "--temperature", "0.9", "--max-tokens", "12"]
                for profile, model in (("warm", "tiny-llama"), ("warm-vlm", "tiny-vlm"))]
    with serving(tmp_path_factory.mktemp("mlxm-home"), {name: models[kind] for name, kind in names.items()},
                 commands=profiles) as served:
        yield served


@pytest.fixture
def client(server):
    return openai_client(server[0])


def greedy_reference(llama_dir, messages, max_tokens):
    import mlx_lm
    from mlx_lm.sample_utils import make_sampler

    model, tokenizer = mlx_lm.load(str(llama_dir))
    prompt = tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
    return mlx_lm.generate(model, tokenizer, prompt, max_tokens=max_tokens, sampler=make_sampler(temp=0.0))


def vlm_greedy_reference(vlm_dir, messages, max_tokens):
    """mlx-vlm's own greedy generate, text-only."""
    import mlx.core as mx
    from mlx_vlm import generate, load
    from mlx_vlm.prompt_utils import apply_chat_template

    model, processor = load(str(vlm_dir))
    prompt = apply_chat_template(processor, model.config, messages, num_images=0)
    return generate(model, processor, prompt, max_tokens=max_tokens, sampler=lambda x: mx.argmax(x, axis=-1)).text


def reference(models, model, messages, max_tokens):
    """The library's own greedy answer for `model` (mlx-lm for the text model, mlx-vlm for the vision one)."""
    if model == "tiny-vlm":
        return vlm_greedy_reference(models["vlm"], messages, max_tokens)
    return greedy_reference(models["llama"], messages, max_tokens)


def test_list_models_shows_imports_and_profiles(client):
    ids = {m.id: m for m in client.models.list().data}
    assert {"tiny-llama", "tiny-whisper", "tiny-tts", "tiny-vlm", "warm", "warm-vlm"} <= set(ids)
    assert ids["warm"].owned_by == "mlxm-profile:tiny-llama"
    assert client.models.retrieve("warm").owned_by == "mlxm-profile:tiny-llama"
    assert client.models.retrieve("tiny-llama").id == "tiny-llama"
    with pytest.raises(openai.NotFoundError):
        client.models.retrieve("tiny-lama")


@pytest.mark.parametrize("model", CHAT_MODELS)
def test_chat_greedy_non_streaming_and_streaming_equal_the_library(client, models, model):
    messages = [{"role": "user", "content": PROMPT}]
    expected = reference(models, model, messages, 16)
    completion = client.chat.completions.create(model=model, messages=messages, temperature=0, max_tokens=16)
    assert completion.choices[0].message.content == expected
    assert completion.choices[0].finish_reason in ("stop", "length")
    assert 0 < completion.usage.completion_tokens <= 16 and completion.usage.prompt_tokens > 0

    stream = client.chat.completions.create(model=model, messages=messages, temperature=0, max_tokens=16,
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


@pytest.mark.parametrize("profile,model", [("warm", "tiny-llama"), ("warm-vlm", "tiny-vlm")])
def test_profile_defaults_apply_and_a_request_temperature_zero_wins(client, models, profile, model):
    # The profile says temperature 0.9 and max_tokens 12; the request's 0 must make it greedy.
    messages = [{"role": "user", "content": PROMPT}]
    completion = client.chat.completions.create(model=profile, messages=messages, temperature=0)
    assert completion.choices[0].message.content == reference(models, model, messages, 12)
    assert completion.usage.completion_tokens <= 12


@pytest.mark.parametrize("model", CHAT_MODELS)
def test_seeded_sampling_is_reproducible_over_http(client, model):
    messages = [{"role": "user", "content": PROMPT}]

    def ask(seed):
        return client.chat.completions.create(model=model, messages=messages, temperature=1.0, seed=seed,
                                              max_tokens=12).choices[0].message.content

    assert ask(7) == ask(7)
    assert len({ask(7), ask(8), ask(9)}) > 1  # the seed reaches the sampler


@pytest.mark.parametrize("model", CHAT_MODELS)
def test_concurrent_streams_are_served_together_and_stay_independent(client, models, model):
    prompts = ["one two", "The quick brown fox", "seven eight", "Hello world"]
    expected = {p: reference(models, model, [{"role": "user", "content": p}], 10) for p in prompts}
    results: dict[str, str] = {}

    def ask(prompt):
        stream = client.chat.completions.create(model=model, messages=[{"role": "user", "content": prompt}],
                                                temperature=0, max_tokens=10, stream=True)
        results[prompt] = "".join(c.choices[0].delta.content or "" for c in stream if c.choices)

    threads = [threading.Thread(target=ask, args=(p,)) for p in prompts]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert results == expected


@pytest.mark.parametrize("model", CHAT_MODELS)
def test_stop_strings_and_max_tokens_streamed_and_not(client, model):
    messages = [{"role": "user", "content": PROMPT}]
    full = client.chat.completions.create(model=model, messages=messages, temperature=0, max_tokens=24)
    text = full.choices[0].message.content
    assert full.usage.completion_tokens <= 24 and len(text) > 6
    stop = text[4:6]
    expected = text[: text.find(stop)]
    cut = client.chat.completions.create(model=model, messages=messages, temperature=0, max_tokens=24, stop=[stop, "never"])
    assert cut.choices[0].message.content == expected and cut.choices[0].finish_reason == "stop"
    stream = client.chat.completions.create(model=model, messages=messages, temperature=0, max_tokens=24, stop=stop,
                                            stream=True)
    chunks = list(stream)
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == expected
    assert [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason] == ["stop"]
    short = client.chat.completions.create(model=model, messages=messages, temperature=0, max_tokens=3)
    assert short.usage.completion_tokens == 3 and short.choices[0].finish_reason == "length"
    assert text.startswith(short.choices[0].message.content)


@pytest.mark.parametrize("model", CHAT_MODELS)
def test_responses_api_text_equals_chat_completions(client, model):
    messages = [{"role": "user", "content": PROMPT}]
    chat = client.chat.completions.create(model=model, messages=messages, temperature=0, max_tokens=8)
    response = client.responses.create(model=model, input=PROMPT, temperature=0, max_output_tokens=8)
    assert response.output_text == chat.choices[0].message.content
    assert response.usage.output_tokens == chat.usage.completion_tokens
    assert response.status == ("incomplete" if chat.choices[0].finish_reason == "length" else "completed")


@pytest.mark.parametrize("model", CHAT_MODELS)
def test_completions_endpoint(client, model):
    completion = client.completions.create(model=model, prompt="The quick brown fox", max_tokens=5, temperature=0)
    again = client.completions.create(model=model, prompt="The quick brown fox", max_tokens=5, temperature=0)
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


@pytest.mark.parametrize("model", CHAT_MODELS)
def test_client_mistakes_raise_the_sdk_4xx_errors(client, model):
    messages = [{"role": "user", "content": "hi"}]
    with pytest.raises(openai.NotFoundError) as err:
        client.chat.completions.create(model="tiny-lama", messages=messages)
    assert "tiny-llama" in json.dumps(err.value.body)
    with pytest.raises(openai.NotFoundError):
        client.chat.completions.create(model="qwen3-4b", messages=messages)  # in the catalog, not installed
    with pytest.raises(openai.BadRequestError):
        client.chat.completions.create(model="tiny-whisper", messages=messages)  # wrong model type
    with pytest.raises(openai.BadRequestError):
        client.chat.completions.create(model=model, messages=messages, n=17)  # n is 1-16
    with pytest.raises((openai.BadRequestError, openai.UnprocessableEntityError)):
        client.chat.completions.create(model=model, messages=messages, temperature=7)
    with pytest.raises(openai.BadRequestError):
        client.audio.speech.create(model=model, voice="x", input="hello")
    with pytest.raises(openai.BadRequestError):
        client.embeddings.create(model=model, input="hello")


@pytest.mark.parametrize("model", CHAT_MODELS)
def test_tools_for_a_model_without_a_tool_format_are_a_400_naming_it(client, model):
    # Neither tiny model's chat template has a tool-call format (tool calls on a vision model whose template
    # has one: tests/e2e/test_model_types_sdk.py).
    tool = {"type": "function", "function": {"name": "f", "parameters": {"type": "object", "properties": {}}}}
    with pytest.raises(openai.BadRequestError, match=f"{model}: this model has no known tool-call format"):
        client.chat.completions.create(model=model, messages=[{"role": "user", "content": "hi"}], tools=[tool])


def _count_and_forbid_eos(container, model, monkeypatch, computed):
    """Patch the runtime so every token the engine computes for `model` is counted and EOS cannot end it."""
    runtime = container.model_runtime()
    part = runtime.vision if model == "tiny-vlm" else runtime.text
    generate = part.generate

    def generate_without_eos(loaded, request):
        stream = generate(loaded, request)
        if model == "tiny-vlm":
            eos, processors = loaded.handle.processor.tokenizer.stopping_criteria.eos_token_ids, stream.job.logits_processors
        else:
            eos, processors = loaded.handle.tokenizer.eos_token_ids, stream.request.logits_processors
        no_eos = no_eos_logits_processor(eos)

        def counting(tokens, logits):
            computed.append(1)
            return no_eos(tokens, logits)

        processors.append(counting)
        return stream

    monkeypatch.setattr(part, "generate", generate_without_eos)


@pytest.mark.parametrize("model", CHAT_MODELS)
def test_stream_disconnect_releases_the_model(server, monkeypatch, model):
    url, container = server
    max_tokens = 2000  # within both tiny models' contexts (2048, 4096): a larger request is a 400 now
    computed = []  # one entry per token the engine computes for this request
    # The tiny models may end by themselves: forbid EOS so only the disconnect can stop them before max_tokens.
    _count_and_forbid_eos(container, model, monkeypatch, computed)
    body = {"model": model, "stream": True, "max_tokens": max_tokens, "temperature": 1.0,
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


@pytest.mark.parametrize("model,profile,kind", [("tiny-llama", "warm", "text-gen"), ("tiny-vlm", "warm-vlm", "vision")])
def test_management_api_on_the_live_server(server, model, profile, kind):
    url, _ = server
    with httpx.Client(base_url=url, timeout=60) as http:
        # Loaded here, so the test does not depend on an earlier one having used the model.
        assert http.post("/api/pool/load", json={"model": model}).status_code == 200
        assert http.post("/api/chat", json={"model": model, "overrides": {"max_tokens": 1},
                                            "messages": [{"role": "user", "content": PROMPT}]}).status_code == 200
        loaded = {m["model_id"] for m in http.get("/api/pool").json()["loaded"]}
        assert model in loaded
        shown = http.get(f"/api/models/{model}").json()
        assert shown["type"] == kind and shown["last_used_at"] is not None
        chat = http.post("/api/chat", json={"profile_id": profile, "overrides": {"temperature": 0, "max_tokens": 4},
                                            "messages": [{"role": "user", "content": PROMPT}]}).json()
        assert chat["profile"] == profile and chat["usage"]["completion_tokens"] <= 4
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
