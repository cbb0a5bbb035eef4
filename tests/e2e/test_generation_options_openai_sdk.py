"""uvicorn on loopback + the real openai/anthropic SDKs, a tiny real llama: response_format (json_schema,
json_object), logprobs, n, a list of prompts, penalties, prompt-cache reuse reported in usage, and the
context-length 400 (issue 11 engine half, issue 12 item 3)."""

from __future__ import annotations

import json

import anthropic
import jsonschema
import openai
import pytest
from click.testing import CliRunner

from entrypoints.cli.main import cli
from entrypoints.http.app import create_app
from tests.support.frontends import real_container, serve_in_thread
from tests.support.tiny_models import cached_model

pytestmark = pytest.mark.slow

SCHEMA = {
    "type": "object",
    "properties": {"city": {"type": "string", "maxLength": 12}, "rank": {"type": "integer", "minimum": 1, "maximum": 9}},
    "required": ["city", "rank"],
    "additionalProperties": False,
}


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    root = tmp_path_factory.getbasetemp() / "tiny-models"
    llama = cached_model("llama", root, tie_word_embeddings=False)
    home = tmp_path_factory.mktemp("mlxm-home-options")
    container = real_container(home)
    result = CliRunner().invoke(cli, ["import", str(llama), "--name", "tiny-llama", "--json"], obj=container)
    assert result.exit_code == 0, result.output
    with serve_in_thread(create_app(container)) as url:
        yield url, container
    container.model_pool().shutdown()


@pytest.fixture
def client(server):
    url, _ = server
    return openai.OpenAI(base_url=f"{url}/v1", api_key="x", max_retries=0, timeout=120)


def test_json_schema_response_format_streamed_and_not(client):
    response_format = {"type": "json_schema", "json_schema": {"name": "place", "schema": SCHEMA, "strict": True}}
    for seed in (1, 2, 3):
        completion = client.chat.completions.create(
            model="tiny-llama", messages=[{"role": "user", "content": "Name a city."}], temperature=1.0, seed=seed,
            max_tokens=200, response_format=response_format)
        jsonschema.validate(json.loads(completion.choices[0].message.content), SCHEMA)
    stream = client.chat.completions.create(
        model="tiny-llama", messages=[{"role": "user", "content": "Name a city."}], temperature=1.0, seed=9,
        max_tokens=200, response_format={"type": "json_object"}, stream=True)
    text = "".join(chunk.choices[0].delta.content or "" for chunk in stream if chunk.choices)
    assert isinstance(json.loads(text), dict)


def test_a_schema_that_cannot_compile_is_a_400_naming_the_problem(client):
    bad = {"type": "json_schema", "json_schema": {"name": "x", "schema": {"type": "object",
                                                                          "properties": {"a": {"type": "nonsense"}}}}}
    with pytest.raises(openai.BadRequestError) as error:
        client.chat.completions.create(model="tiny-llama", messages=[{"role": "user", "content": "x"}],
                                       response_format=bad, max_tokens=5)
    assert "nonsense" in error.value.message


def test_logprobs_and_n_through_the_sdk(client):
    completion = client.chat.completions.create(
        model="tiny-llama", messages=[{"role": "user", "content": "Hello"}], temperature=0, max_tokens=6,
        logprobs=True, top_logprobs=2, n=2)
    assert [c.index for c in completion.choices] == [0, 1]
    assert completion.choices[0].message.content == completion.choices[1].message.content  # greedy
    content = completion.choices[0].logprobs.content
    assert len(content) == completion.usage.completion_tokens // 2
    assert all(len(entry.top_logprobs) == 2 and entry.logprob <= 0 for entry in content)
    stream = client.chat.completions.create(
        model="tiny-llama", messages=[{"role": "user", "content": "Hello"}], temperature=0, max_tokens=6,
        logprobs=True, stream=True)
    streamed = [e for chunk in stream for c in chunk.choices if c.logprobs for e in c.logprobs.content]
    assert [e.token for e in streamed] == [e.token for e in content]


def test_completions_with_a_list_of_prompts_and_logprobs(client):
    completion = client.completions.create(model="tiny-llama", prompt=["Hello", "Once upon"], max_tokens=4,
                                           temperature=0, logprobs=1)
    assert sorted(c.index for c in completion.choices) == [0, 1]
    for choice in completion.choices:
        assert len(choice.logprobs.tokens) == len(choice.logprobs.token_logprobs) == len(choice.logprobs.top_logprobs)


def test_a_second_turn_reports_cached_tokens_on_both_sdks(server, client):
    url, _ = server
    system = "You are a meticulous assistant. " * 12
    messages = [{"role": "system", "content": system}, {"role": "user", "content": "First question?"}]
    first = client.chat.completions.create(model="tiny-llama", messages=messages, temperature=0, max_tokens=8)
    messages += [{"role": "assistant", "content": first.choices[0].message.content},
                 {"role": "user", "content": "Second question?"}]
    second = client.chat.completions.create(model="tiny-llama", messages=messages, temperature=0, max_tokens=8)
    assert second.usage.prompt_tokens_details.cached_tokens > 50
    claude = anthropic.Anthropic(base_url=url, api_key="x", max_retries=0)
    reply = claude.messages.create(model="tiny-llama", max_tokens=8, system=system,
                                   messages=[{"role": "user", "content": "First question?"}])
    assert reply.usage.cache_read_input_tokens > 50


def test_a_prompt_over_the_context_is_a_400_naming_both_numbers(client):
    with pytest.raises(openai.BadRequestError) as error:
        client.completions.create(model="tiny-llama", prompt="word " * 3000, max_tokens=4)
    assert "context is 2048" in error.value.message and "tokens" in error.value.message
    with pytest.raises(openai.BadRequestError) as error:
        client.completions.create(model="tiny-llama", prompt="Hello", max_tokens=5000)
    assert "max_tokens is 5000" in error.value.message
