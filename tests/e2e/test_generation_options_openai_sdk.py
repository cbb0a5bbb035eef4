"""uvicorn on loopback + the real openai/anthropic SDKs, a tiny real llama: response_format (json_schema,
json_object), logprobs, n, a list of prompts, penalties, prompt-cache reuse reported in usage, and the
context-length 400 (issue 11 engine half, issue 12 item 3). Each also runs, text-only, on a tiny vision
model (Qwen2-VL on mlx-vlm): structured output, logprobs, n, the context check and the prompt cache (mlx-vlm's
APC) apply; the prompt cache also with images (README "Vision")."""

from __future__ import annotations

import json

import anthropic
import jsonschema
import openai
import pytest

from tests.support.served_models import openai_client, serving, tiny_chat_models

pytestmark = pytest.mark.slow

CHAT_MODELS = ["tiny-llama", "tiny-vlm"]
CONTEXT = {"tiny-llama": 2048, "tiny-vlm": 4096}
SCHEMA = {
    "type": "object",
    "properties": {"city": {"type": "string", "maxLength": 12}, "rank": {"type": "integer", "minimum": 1, "maximum": 9}},
    "required": ["city", "rank"],
    "additionalProperties": False,
}


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    with serving(tmp_path_factory.mktemp("mlxm-home-options"), tiny_chat_models(tmp_path_factory)) as served:
        yield served


@pytest.fixture
def client(server):
    return openai_client(server[0])


@pytest.mark.parametrize("model", CHAT_MODELS)
def test_json_schema_response_format_streamed_and_not(client, model):
    response_format = {"type": "json_schema", "json_schema": {"name": "place", "schema": SCHEMA, "strict": True}}
    for seed in (1, 2, 3):
        completion = client.chat.completions.create(
            model=model, messages=[{"role": "user", "content": "Name a city."}], temperature=1.0, seed=seed,
            max_tokens=200, response_format=response_format)
        jsonschema.validate(json.loads(completion.choices[0].message.content), SCHEMA)
    # The tiny VLM's random 300-token vocabulary rarely closes a free json_object string within max_tokens
    # (its output is valid JSON so far, cut by "length"); the bounded schema must finish, so it streams that.
    streamed_format = {"type": "json_object"} if model == "tiny-llama" else response_format
    stream = client.chat.completions.create(
        model=model, messages=[{"role": "user", "content": "Name a city."}], temperature=1.0, seed=9,
        max_tokens=200, response_format=streamed_format, stream=True)
    text = "".join(chunk.choices[0].delta.content or "" for chunk in stream if chunk.choices)
    assert isinstance(json.loads(text), dict)
    if model == "tiny-vlm":
        jsonschema.validate(json.loads(text), SCHEMA)
        plain = client.chat.completions.create(model=model, messages=[{"role": "user", "content": "Name a city."}],
                                               temperature=1.0, seed=9, max_tokens=200)
        with pytest.raises(ValueError):  # without the constraint the same request is not JSON
            json.loads(plain.choices[0].message.content)


@pytest.mark.parametrize("model", CHAT_MODELS)
def test_a_schema_that_cannot_compile_is_a_400_naming_the_problem(client, model):
    bad = {"type": "json_schema", "json_schema": {"name": "x", "schema": {"type": "object",
                                                                          "properties": {"a": {"type": "nonsense"}}}}}
    with pytest.raises(openai.BadRequestError) as error:
        client.chat.completions.create(model=model, messages=[{"role": "user", "content": "x"}],
                                       response_format=bad, max_tokens=5)
    assert "nonsense" in error.value.message


@pytest.mark.parametrize("model", CHAT_MODELS)
def test_logprobs_and_n_through_the_sdk(client, model):
    completion = client.chat.completions.create(
        model=model, messages=[{"role": "user", "content": "Hello"}], temperature=0, max_tokens=6,
        logprobs=True, top_logprobs=2, n=2)
    assert [c.index for c in completion.choices] == [0, 1]
    assert completion.choices[0].message.content == completion.choices[1].message.content  # greedy
    content = completion.choices[0].logprobs.content
    assert len(content) == completion.usage.completion_tokens // 2
    assert all(len(entry.top_logprobs) == 2 and entry.logprob <= 0 for entry in content)
    stream = client.chat.completions.create(
        model=model, messages=[{"role": "user", "content": "Hello"}], temperature=0, max_tokens=6,
        logprobs=True, stream=True)
    streamed = [e for chunk in stream for c in chunk.choices if c.logprobs for e in c.logprobs.content]
    assert [e.token for e in streamed] == [e.token for e in content]


@pytest.mark.parametrize("model", CHAT_MODELS)
def test_completions_with_a_list_of_prompts_and_logprobs(client, model):
    completion = client.completions.create(model=model, prompt=["Hello", "Once upon"], max_tokens=4,
                                           temperature=0, logprobs=1)
    assert sorted(c.index for c in completion.choices) == [0, 1]
    for choice in completion.choices:
        assert len(choice.logprobs.tokens) == len(choice.logprobs.token_logprobs) == len(choice.logprobs.top_logprobs)


@pytest.mark.parametrize("model", CHAT_MODELS)
def test_a_second_turn_reports_cached_tokens_on_both_sdks(server, client, model):
    url, _ = server
    system = "You are a meticulous assistant. " * 12
    messages = [{"role": "system", "content": system}, {"role": "user", "content": "First question?"}]
    first = client.chat.completions.create(model=model, messages=messages, temperature=0, max_tokens=8)
    messages += [{"role": "assistant", "content": first.choices[0].message.content},
                 {"role": "user", "content": "Second question?"}]
    second = client.chat.completions.create(model=model, messages=messages, temperature=0, max_tokens=8)
    claude = anthropic.Anthropic(base_url=url, api_key="x", max_retries=0)
    reply = claude.messages.create(model=model, max_tokens=8, system=system,
                                   messages=[{"role": "user", "content": "First question?"}])
    assert second.usage.prompt_tokens_details.cached_tokens > 50
    assert reply.usage.cache_read_input_tokens > 50


def image_part(color, size=(40, 30)) -> tuple[dict, dict]:
    """One PNG as an OpenAI content part and as an Anthropic image block."""
    import base64
    import io

    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", size, color).save(buffer, format="PNG")
    data = base64.b64encode(buffer.getvalue()).decode()
    return ({"type": "image_url", "image_url": {"url": f"data:image/png;base64,{data}"}},
            {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": data}})


def test_an_image_conversation_reports_cached_tokens_on_both_sdks(server, client):
    url, container = server
    (red, red_block), (blue, _) = image_part((220, 20, 20)), image_part((20, 20, 220))
    turn = [{"role": "user", "content": [red, {"type": "text", "text": "What is this?"}]}]
    first = client.chat.completions.create(model="tiny-vlm", messages=turn, temperature=0, max_tokens=6)
    messages = turn + [{"role": "assistant", "content": first.choices[0].message.content},
                       {"role": "user", "content": "And its colour?"}]
    second = client.chat.completions.create(model="tiny-vlm", messages=messages, temperature=0, max_tokens=6)
    assert second.usage.prompt_tokens_details.cached_tokens == first.usage.prompt_tokens - 1  # the image's too
    other = client.chat.completions.create(model="tiny-vlm", temperature=0, max_tokens=6,
                                           messages=[{"role": "user", "content": [blue, turn[0]["content"][1]]}])
    assert not other.usage.prompt_tokens_details or not other.usage.prompt_tokens_details.cached_tokens
    claude = anthropic.Anthropic(base_url=url, api_key="x", max_retries=0)
    reply = claude.messages.create(model="tiny-vlm", max_tokens=6, extra_body={"temperature": 0}, messages=[
        {"role": "user", "content": [red_block, {"type": "text", "text": "What is this?"}]}])
    assert reply.content[0].text == first.choices[0].message.content
    assert reply.usage.cache_read_input_tokens == first.usage.prompt_tokens - 1
    assert reply.usage.input_tokens == 1
    loaded = {m.model_id: m for m in container.model_pool().loaded()}  # the pool counts the cache's bytes
    assert loaded["tiny-vlm"].cache_bytes > 0


@pytest.mark.parametrize("model", CHAT_MODELS)
def test_a_prompt_over_the_context_is_a_400_naming_both_numbers(client, model):
    window = CONTEXT[model]
    with pytest.raises(openai.BadRequestError) as error:
        client.completions.create(model=model, prompt="word " * (window + 500), max_tokens=4)
    assert f"context is {window}" in error.value.message and "tokens" in error.value.message
    with pytest.raises(openai.BadRequestError) as error:
        client.completions.create(model=model, prompt="Hello", max_tokens=window + 1000)
    assert f"max_tokens is {window + 1000}" in error.value.message
