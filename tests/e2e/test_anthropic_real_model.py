"""The anthropic SDK on a real tiny MLX model: the Messages route runs the same internal request as
the OpenAI chat route, so greedy answers are identical."""

from __future__ import annotations

import anthropic
import openai
import pytest
from click.testing import CliRunner

from domain.audit.model import AuditQuery

from entrypoints.cli.main import cli
from entrypoints.http.app import create_app
from tests.support.frontends import real_container, serve_in_thread
from tests.support.tiny_models import cached_model

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    llama = cached_model("llama", tmp_path_factory.getbasetemp() / "tiny-models", tie_word_embeddings=False)
    container = real_container(tmp_path_factory.mktemp("mlxm-home"))
    result = CliRunner().invoke(cli, ["import", str(llama), "--name", "tiny-llama", "--json"], obj=container)
    assert result.exit_code == 0, result.output
    with serve_in_thread(create_app(container)) as url:
        yield url, container
    container.model_pool().shutdown()


def test_messages_equal_chat_completions_greedy(server):
    url, container = server
    messages = [{"role": "user", "content": "Hello there"}]
    chat = openai.OpenAI(base_url=f"{url}/v1", api_key="x", max_retries=0, timeout=120).chat.completions.create(
        model="tiny-llama", messages=messages, max_tokens=6, temperature=0)
    expected = chat.choices[0].message.content
    client = anthropic.Anthropic(base_url=url, api_key="x", max_retries=0, timeout=120)
    message = client.messages.create(model="tiny-llama", max_tokens=6, messages=messages,
                                     extra_body={"temperature": 0})  # this SDK has no sampling arguments
    assert message.content[0].text == expected
    assert message.usage.output_tokens == chat.usage.completion_tokens
    # The same prompt again: Anthropic counts prompt-cache reads apart from the rest of the input.
    assert message.usage.cache_read_input_tokens > 0
    assert message.usage.input_tokens + message.usage.cache_read_input_tokens == chat.usage.prompt_tokens
    with client.messages.stream(model="tiny-llama", max_tokens=6, messages=messages,
                                 extra_body={"temperature": 0}) as stream:
        streamed = "".join(stream.text_stream)
    assert streamed == expected
    container.audit_sink().flush()
    rows = container.audit_service().query(AuditQuery(model="tiny-llama")).items
    assert {r.endpoint for r in rows} == {"/v1/chat/completions", "/v1/messages"} and len(rows) == 3
    assert all(r.completion_tokens == chat.usage.completion_tokens and r.backend == "local" for r in rows)
