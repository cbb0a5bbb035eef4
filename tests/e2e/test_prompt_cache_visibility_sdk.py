"""uvicorn on loopback, the real openai SDK and the real CLI, a tiny real llama (mlx-lm) and a tiny Qwen2-VL
(mlx-vlm): `GET /api/pool` and `mlxm ps` show each model's prompt cache (bytes, entries, the configured
bounds) and count its bytes as the pool does; with n > 1 the usage reports the prompt tokens the request
read from the cache, whichever choice read them (README "Inference engine: prompt cache")."""

from __future__ import annotations

import json

import httpx
import pytest
from click.testing import CliRunner

from entrypoints.cli.main import cli
from tests.support.served_models import openai_client, serving, tiny_chat_models

pytestmark = pytest.mark.slow

CHAT_MODELS = ["tiny-llama", "tiny-vlm"]
CACHE_ENTRIES, CACHE_BYTES = 7, 256 * 2**20  # MLX_SERVER_PROMPT_CACHE_SIZE / _BYTES, not the defaults


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    home = tmp_path_factory.mktemp("mlxm-home-cache-visibility")
    # One row at a time: the choices of an n > 1 request run in turn, so each later choice finds the earlier
    # ones' prompt in the cache (as with n above the batch size, or a batch full of other requests).
    with serving(home, tiny_chat_models(tmp_path_factory), max_batch_size=1, max_models=2,
                 prompt_cache_size=CACHE_ENTRIES, prompt_cache_bytes=CACHE_BYTES) as served:
        yield served


@pytest.fixture
def client(server):
    return openai_client(server[0])


def pool_entry(url: str, model: str) -> dict | None:
    return {m["model_id"]: m for m in httpx.get(f"{url}/api/pool", timeout=30).json()["loaded"]}.get(model)


@pytest.mark.parametrize("model", CHAT_MODELS)
def test_the_pool_shows_each_models_prompt_cache_as_it_counts_it(server, client, model):
    url, container = server
    if pool_entry(url, model) is not None:
        assert httpx.post(f"{url}/api/pool/unload", json={"model": model}, timeout=30).status_code == 200
    client.chat.completions.create(model=model, messages=[{"role": "user", "content": f"Describe {model}."}],
                                   temperature=0, max_tokens=4)
    # Read at once: the entry is stored before the answer is returned (test_prompt_cache_stored_before_answer.py).
    cache = pool_entry(url, model)["prompt_cache"]
    assert cache["entries"] > 0 and cache["bytes"] > 0
    assert (cache["max_entries"], cache["max_bytes"]) == (CACHE_ENTRIES, CACHE_BYTES)
    pool = container.model_pool()
    info = {i.model_id: i for i in pool.loaded()}
    assert cache["bytes"] == info[model].cache_bytes  # the bytes the pool counts against its memory limit
    assert httpx.get(f"{url}/api/pool", timeout=30).json()["used_bytes"] == pool.total_bytes
    assert pool.total_bytes == sum(i.size_bytes + i.cache_bytes for i in info.values())

    shown = json.loads(CliRunner().invoke(cli, ["ps", "--url", url, "--json"], obj=container).output)
    assert {m["model_id"]: m for m in shown["loaded"]}[model]["prompt_cache"] == cache
    table = CliRunner().invoke(cli, ["ps", "--url", url], obj=container)
    assert table.exit_code == 0, table.output
    row = next(line for line in table.output.splitlines() if line.startswith(model))
    assert "Prompt cache" in table.output and f"{cache['entries']}/{CACHE_ENTRIES} entries" in row

    assert httpx.post(f"{url}/api/pool/unload", json={"model": model}, timeout=30).json()["loaded"] is False
    assert pool_entry(url, model) is None
    assert model not in {i.model_id for i in pool.loaded()}


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "streamed"])
@pytest.mark.parametrize("model", CHAT_MODELS)
def test_n_choices_report_the_prompt_tokens_the_request_read_from_the_cache(server, client, model, stream):
    # A cold cache (the model freshly loaded): choice 0 prefills the whole prompt, choice 1 then reads all of it
    # but the last token from the cache that choice 0 left. Usage counts the prompt once, with that reuse.
    url, _ = server
    if pool_entry(url, model) is not None:
        assert httpx.post(f"{url}/api/pool/unload", json={"model": model}, timeout=30).status_code == 200
    messages = [{"role": "user", "content": f"{model} choice test {'streamed' if stream else 'whole'}: hello"}]
    if stream:
        events = list(client.chat.completions.create(
            model=model, messages=messages, temperature=0, max_tokens=4, n=2, stream=True,
            stream_options={"include_usage": True}))
        usage = events[-1].usage
        assert {c.index for e in events for c in e.choices} == {0, 1}
    else:
        completion = client.chat.completions.create(model=model, messages=messages, temperature=0, max_tokens=4, n=2)
        usage = completion.usage
        assert [c.index for c in completion.choices] == [0, 1]
    assert usage.prompt_tokens > 10
    assert usage.prompt_tokens_details.cached_tokens == usage.prompt_tokens - 1


def unload(url: str, model: str) -> None:
    """A cold prompt cache: the model is loaded afresh by the next request."""
    if pool_entry(url, model) is not None:
        assert httpx.post(f"{url}/api/pool/unload", json={"model": model}, timeout=30).status_code == 200


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "streamed"])
@pytest.mark.parametrize("model", CHAT_MODELS)
def test_responses_report_the_prompt_tokens_read_from_the_cache_as_chat_does(server, client, model, stream):
    # `usage.input_tokens_details.cached_tokens` of /v1/responses was always 0. Two turns sharing a long prefix
    # from a cold cache, through client.responses.create; then the same two prompts through chat completions.
    url, _ = server
    instructions = f"You are a meticulous assistant ({model}, {'streamed' if stream else 'whole'}). " * 12

    def respond(items: list[dict]):
        kwargs = dict(model=model, instructions=instructions, input=items, temperature=0, max_output_tokens=8)
        if not stream:
            return client.responses.create(**kwargs)
        events = list(client.responses.create(**kwargs, stream=True))
        assert events[-1].type in ("response.completed", "response.incomplete")
        return events[-1].response

    unload(url, model)
    turn = [{"role": "user", "content": "First question?"}]
    first = respond(turn)
    conversation = turn + [{"role": "assistant", "content": first.output_text},
                           {"role": "user", "content": "Second question?"}]
    second = respond(conversation)
    assert first.usage.input_tokens_details.cached_tokens == 0  # cold
    assert second.usage.input_tokens > first.usage.input_tokens > 50
    assert second.usage.input_tokens_details.cached_tokens > 50  # the instructions and the first turn, at least

    unload(url, model)
    system = [{"role": "system", "content": instructions}]
    chat_first = client.chat.completions.create(model=model, messages=system + turn, temperature=0, max_tokens=8)
    chat_second = client.chat.completions.create(model=model, messages=system + conversation, temperature=0,
                                                 max_tokens=8)
    assert (chat_first.usage.prompt_tokens, chat_second.usage.prompt_tokens) == (first.usage.input_tokens,
                                                                                 second.usage.input_tokens)
    assert chat_first.choices[0].message.content == first.output_text  # the same prompts and cache entries
    assert chat_second.usage.prompt_tokens_details.cached_tokens == second.usage.input_tokens_details.cached_tokens
