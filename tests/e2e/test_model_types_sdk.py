"""Embeddings, vision and probes as users run them: uvicorn on loopback, tiny real models imported
with the real CLI, the real openai / anthropic SDKs."""

from __future__ import annotations

import base64
import io
import struct

import numpy as np
import openai
import pytest
from click.testing import CliRunner

from entrypoints.cli.main import cli
from tests.support.served_models import openai_client, serving
from tests.support.tiny_models import cached_model

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    root = tmp_path_factory.getbasetemp() / "tiny-models"
    return {"bert": cached_model("bert", root), "qwen3": cached_model("qwen3_embedding", root),
            "vlm": cached_model("qwen2_vl", root), "llama": cached_model("llama", root),
            "vlm_tools": cached_model("qwen2_vl", root, tools=True)}


@pytest.fixture(scope="module")
def server(tmp_path_factory, models):
    names = {"tiny-bert": "bert", "tiny-qwen3-embed": "qwen3", "tiny-vlm": "vlm", "tiny-llama": "llama",
             "tiny-vlm-tools": "vlm_tools"}
    with serving(tmp_path_factory.mktemp("mlxm-home"), {name: models[kind] for name, kind in names.items()}) as served:
        yield served


@pytest.fixture
def client(server):
    return openai_client(server[0])


def direct_vectors(runtime_dir, texts, kind):
    """The same model's vectors computed here, straight from the libraries, one text at a time."""
    import mlx.core as mx

    if kind == "bert":
        from mlx_embeddings import load

        model, tokenizer = load(str(runtime_dir))
        out = []
        for text in texts:
            ids = tokenizer.batch_encode_plus([text], return_tensors="mlx")
            out.append(model(ids["input_ids"], attention_mask=ids["attention_mask"]).text_embeds[0].tolist())
        return np.array(out)
    import mlx_lm
    from transformers import AutoTokenizer

    model, _ = mlx_lm.load(str(runtime_dir))
    tokenizer = AutoTokenizer.from_pretrained(str(runtime_dir))
    out = []
    for text in texts:
        hidden = np.array(model.model(mx.array([tokenizer(text)["input_ids"]]))[0, -1].tolist())
        out.append(hidden / np.linalg.norm(hidden))
    return np.array(out)


@pytest.mark.parametrize("name,kind", [("tiny-bert", "bert"), ("tiny-qwen3-embed", "qwen3")])
def test_openai_embeddings_float_and_base64_equal_direct_vectors(client, models, name, kind):
    texts = ["hello world", "The quick brown fox jumps over the lazy dog.", "a"]
    expected = direct_vectors(models[kind], texts, kind)
    floats = client.embeddings.create(model=name, input=texts, encoding_format="float")
    got = np.array([d.embedding for d in floats.data])
    np.testing.assert_allclose(got, expected, atol=2e-5)
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(models[kind]))
    assert floats.usage.prompt_tokens == sum(len(tokenizer(t)["input_ids"]) for t in texts)
    # The SDK asks for base64 by default and decodes it itself; decode the raw body here as well.
    decoded = client.embeddings.create(model=name, input=texts)
    np.testing.assert_allclose(np.array([d.embedding for d in decoded.data]), expected, atol=2e-5)
    raw = client.embeddings.with_raw_response.create(model=name, input=texts[0], encoding_format="base64").http_response
    data = base64.b64decode(raw.json()["data"][0]["embedding"])
    np.testing.assert_allclose(struct.unpack(f"<{len(data) // 4}f", data), expected[0], atol=2e-5)


def test_embedding_request_surface(client, server):
    url, _ = server
    import httpx

    tokens = client.embeddings.create(model="tiny-bert", input=[[2, 50, 60, 3], [2, 70, 3]], encoding_format="float")
    assert len(tokens.data) == 2 and tokens.usage.prompt_tokens == 7
    short = client.embeddings.create(model="tiny-qwen3-embed", input="hello", dimensions=8, encoding_format="float")
    assert len(short.data[0].embedding) == 8
    with pytest.raises(openai.BadRequestError, match="not Matryoshka"):
        client.embeddings.create(model="tiny-bert", input="hello", dimensions=8)
    with pytest.raises(openai.BadRequestError, match="max sequence length"):
        client.embeddings.create(model="tiny-bert", input="hello " * 300)
    body = httpx.post(f"{url}/v1/embeddings", json={"model": "tiny-bert", "input": "hello " * 300, "truncate": True,
                                                     "encoding_format": "float"}).json()
    assert body["usage"]["prompt_tokens"] == 128
    with pytest.raises(openai.BadRequestError, match="text-gen model"):
        client.embeddings.create(model="tiny-llama", input="hello")
    for bad in ([], [""], [[]]):
        response = httpx.post(f"{url}/v1/embeddings", json={"model": "tiny-bert", "input": bad})
        assert response.status_code in (400, 422) and "error" in response.json()


def test_cli_embed_prints_vectors_and_json(server):
    _, container = server
    import json

    result = CliRunner().invoke(cli, ["embed", "tiny-bert", "hello world", "--json"], obj=container)
    assert result.exit_code == 0, result.output
    body = json.loads(result.output)
    assert len(body["data"]) == 1 and len(body["data"][0]["embedding"]) == 32
    assert body["usage"]["prompt_tokens"] == 4  # [CLS] hello world [SEP]
    result = CliRunner().invoke(cli, ["embed", "tiny-llama", "hi"], obj=container)
    assert result.exit_code != 0 and result.output.startswith("Error:") and "text-gen" in result.output


def png(color=(200, 30, 30), size=(40, 30)) -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", size, color).save(buffer, format="PNG")
    return buffer.getvalue()


def data_url(data: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(data).decode()


def vlm_reference(vlm_dir, messages_json, images, max_tokens):
    import mlx.core as mx
    from mlx_vlm import generate, load
    from mlx_vlm.prompt_utils import apply_chat_template
    from PIL import Image

    model, processor = load(str(vlm_dir))
    prompt = apply_chat_template(processor, model.config, messages_json, num_images=len(images))
    pil = [Image.open(io.BytesIO(d)).convert("RGB") for d in images]
    return generate(model, processor, prompt, image=pil or None, max_tokens=max_tokens,
                    sampler=lambda x: mx.argmax(x, axis=-1)).text


RED, BLUE = png((220, 20, 20)), png((20, 20, 220))
TWO_IMAGES_JSON = [{"role": "user", "content": [{"type": "image"}, {"type": "image"}, {"type": "text", "text": "compare"}]}]


def test_openai_image_chat_streaming_and_not_equal_mlx_vlm(client, models):
    expected = vlm_reference(models["vlm"], TWO_IMAGES_JSON, [RED, BLUE], 12)
    content = [{"type": "image_url", "image_url": {"url": data_url(RED)}},
               {"type": "image_url", "image_url": {"url": data_url(BLUE)}},
               {"type": "text", "text": "compare"}]
    completion = client.chat.completions.create(model="tiny-vlm", messages=[{"role": "user", "content": content}],
                                                temperature=0, max_tokens=12)
    assert completion.choices[0].message.content == expected
    assert completion.usage.completion_tokens == 12 and completion.usage.prompt_tokens > 10
    stream = client.chat.completions.create(model="tiny-vlm", messages=[{"role": "user", "content": content}],
                                            temperature=0, max_tokens=12, stream=True)
    assert "".join(c.choices[0].delta.content or "" for c in stream if c.choices) == expected


def test_anthropic_image_blocks_equal_mlx_vlm(server, models):
    import anthropic

    url, _ = server
    expected = vlm_reference(models["vlm"], TWO_IMAGES_JSON, [RED, BLUE], 10)
    sdk = anthropic.Anthropic(base_url=url, api_key="x", max_retries=0)
    blocks = [{"type": "image", "source": {"type": "base64", "media_type": "image/png",
                                           "data": base64.b64encode(data).decode()}} for data in (RED, BLUE)]
    message = sdk.messages.create(model="tiny-vlm", max_tokens=10, extra_body={"temperature": 0},
                                  messages=[{"role": "user", "content": [*blocks, {"type": "text", "text": "compare"}]}])
    assert message.content[0].text == expected and message.usage.output_tokens == 10


def test_api_chat_images_and_earlier_turns(server, models):
    import httpx

    url, _ = server
    expected = vlm_reference(models["vlm"], [
        {"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "what"}]},
        {"role": "assistant", "content": "red"},
        {"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "and now"}]}], [RED, BLUE], 8)
    body = httpx.post(f"{url}/api/chat", timeout=120, json={"model": "tiny-vlm", "overrides": {"temperature": 0, "max_tokens": 8},
                      "messages": [{"role": "user", "content": "what", "images": [base64.b64encode(RED).decode()]},
                                   {"role": "assistant", "content": "red"},
                                   {"role": "user", "content": "and now", "images": [data_url(BLUE)]}]}).json()
    assert body["message"]["content"] == expected


def test_image_errors_are_4xx_naming_the_problem(client, server):
    image = [{"type": "image_url", "image_url": {"url": data_url(RED)}}, {"type": "text", "text": "hi"}]
    with pytest.raises(openai.BadRequestError, match="tiny-llama' is a text-gen model; images need a vision model"):
        client.chat.completions.create(model="tiny-llama", messages=[{"role": "user", "content": image}])
    with pytest.raises(openai.BadRequestError, match="MLX_SERVER_ALLOW_REMOTE_IMAGES"):
        client.chat.completions.create(model="tiny-vlm", messages=[{"role": "user", "content": [
            {"type": "image_url", "image_url": {"url": "http://127.0.0.1:9/cat.png"}}]}])
    with pytest.raises(openai.BadRequestError, match="not a readable image"):
        client.chat.completions.create(model="tiny-vlm", messages=[{"role": "user", "content": [
            {"type": "image_url", "image_url": {"url": "data:image/png;base64," + base64.b64encode(b"nope").decode()}}]}])
    with pytest.raises(openai.BadRequestError, match="base64"):
        client.chat.completions.create(model="tiny-vlm", messages=[{"role": "user", "content": [
            {"type": "image_url", "image_url": {"url": "data:image/png;base64,@@@"}}]}])


def test_text_only_chat_on_the_vision_model(client):
    completion = client.chat.completions.create(model="tiny-vlm", messages=[{"role": "user", "content": "hello"}],
                                                temperature=0, max_tokens=6)
    assert completion.usage.completion_tokens == 6 and completion.choices[0].finish_reason == "length"


def test_cli_run_with_images(server, models, tmp_path):
    _, container = server
    import json

    (tmp_path / "red.png").write_bytes(RED)
    (tmp_path / "blue.png").write_bytes(BLUE)
    expected = vlm_reference(models["vlm"], TWO_IMAGES_JSON, [RED, BLUE], 10)
    result = CliRunner().invoke(cli, ["run", "tiny-vlm", "compare", "--image", str(tmp_path / "red.png"), "--image",
                                      str(tmp_path / "blue.png"), "--temperature", "0", "--max-tokens", "10", "--json"],
                                obj=container)
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["text"] == expected
    result = CliRunner().invoke(cli, ["run", "tiny-llama", "hi", "--image", str(tmp_path / "red.png")], obj=container)
    assert result.exit_code != 0 and "images need a vision model" in result.output


def test_text_only_requests_on_the_vision_model_behave_like_text_models(client):
    """The inference issue's text checks, on the vision model: greedy == greedy, stream == non-stream,
    max_tokens, stop strings, seeds, profile-free cascade."""
    messages = [{"role": "user", "content": "Hello there"}]
    first = client.chat.completions.create(model="tiny-vlm", messages=messages, temperature=0, max_tokens=16)
    again = client.chat.completions.create(model="tiny-vlm", messages=messages, temperature=0, max_tokens=16)
    assert first.choices[0].message.content == again.choices[0].message.content
    assert first.usage.completion_tokens == 16 and first.choices[0].finish_reason == "length"
    streamed = client.chat.completions.create(model="tiny-vlm", messages=messages, temperature=0, max_tokens=16,
                                              stream=True, stream_options={"include_usage": True})
    chunks = list(streamed)
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == first.choices[0].message.content
    assert chunks[-1].usage.completion_tokens == 16
    text = first.choices[0].message.content
    assert len(text) > 4  # this tiny model's greedy answer (deterministic) is long enough to cut
    stop = text[2:4]
    cut = client.chat.completions.create(model="tiny-vlm", messages=messages, temperature=0, max_tokens=16, stop=[stop])
    assert cut.choices[0].message.content == text[: text.find(stop)] and cut.choices[0].finish_reason == "stop"
    seeded = [client.chat.completions.create(model="tiny-vlm", messages=messages, temperature=1.0, seed=7,
                                             max_tokens=8).choices[0].message.content for _ in range(2)]
    assert seeded[0] == seeded[1]


WEATHER_TOOL = {"type": "function", "function": {
    "name": "get_weather", "description": "Current weather in a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string", "maxLength": 12}}, "required": ["city"],
                   "additionalProperties": False}}}


def test_tool_calls_on_a_vision_model_with_an_image(client):
    """A VLM whose chat template has a tool-call format (json_tools): the text models' tool-call path applies.
    Random weights never call a tool by themselves, so tool_choice "required" makes the engine enforce one
    (the grammar of the model's own format), and the call is parsed out of the text as for text models."""
    import json

    image = {"type": "image_url", "image_url": {"url": data_url(RED)}}
    messages = [{"role": "user", "content": [image, {"type": "text", "text": "Weather where this was taken?"}]}]
    completion = client.chat.completions.create(model="tiny-vlm-tools", messages=messages, tools=[WEATHER_TOOL],
                                                tool_choice="required", parallel_tool_calls=False, temperature=0, max_tokens=300)
    choice = completion.choices[0]
    assert choice.finish_reason == "tool_calls" and len(choice.message.tool_calls) >= 1
    call = choice.message.tool_calls[0]
    assert call.function.name == "get_weather" and isinstance(json.loads(call.function.arguments)["city"], str)
    assert "<tool_call>" not in (choice.message.content or "")
    stream = client.chat.completions.create(model="tiny-vlm-tools", messages=messages, tools=[WEATHER_TOOL],
                                            tool_choice="required", parallel_tool_calls=False, temperature=0, max_tokens=300, stream=True)
    names, arguments, finish = [], "", None
    for chunk in stream:
        for delta_call in (chunk.choices[0].delta.tool_calls or []) if chunk.choices else []:
            if delta_call.function.name:
                names.append(delta_call.function.name)
            arguments += delta_call.function.arguments or ""
        finish = (chunk.choices[0].finish_reason if chunk.choices else None) or finish
    assert names[:1] == ["get_weather"] and finish == "tool_calls"
    assert arguments.startswith(call.function.arguments)  # greedy: the same first call
    # The tool's result goes back (tool turn in the template) and the model answers in text.
    messages += [{"role": "assistant", "content": None, "tool_calls": [call.model_dump()]},
                 {"role": "tool", "tool_call_id": call.id, "content": '{"temperature_c": 22}'}]
    answer = client.chat.completions.create(model="tiny-vlm-tools", messages=messages, tools=[WEATHER_TOOL],
                                            tool_choice="none", temperature=0, max_tokens=8)
    assert answer.choices[0].finish_reason in ("stop", "length") and not answer.choices[0].message.tool_calls
