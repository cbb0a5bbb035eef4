"""The anthropic SDK on a real tiny MLX model: the Messages route runs the same internal request as
the OpenAI chat route, so greedy answers are identical. Also on a tiny vision model, text-only."""

from __future__ import annotations

import anthropic
import pytest

from domain.audit.model import AuditQuery
from tests.support.served_models import anthropic_client, openai_client, serving, tiny_chat_models

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    with serving(tmp_path_factory.mktemp("mlxm-home"), tiny_chat_models(tmp_path_factory)) as served:
        yield served


@pytest.mark.parametrize("model", ["tiny-llama", "tiny-vlm"])
def test_messages_equal_chat_completions_greedy(server, model):
    url, container = server
    messages = [{"role": "user", "content": "Hello there"}]
    chat = openai_client(url).chat.completions.create(
        model=model, messages=messages, max_tokens=6, temperature=0)
    expected = chat.choices[0].message.content
    client = anthropic_client(url)
    message = client.messages.create(model=model, max_tokens=6, messages=messages,
                                     extra_body={"temperature": 0})  # this SDK has no sampling arguments
    assert message.content[0].text == expected
    assert message.usage.output_tokens == chat.usage.completion_tokens
    # The same prompt again: Anthropic counts prompt-cache reads apart from the rest of the input.
    assert message.usage.cache_read_input_tokens > 0  # vision models too (mlx-vlm's APC)
    assert message.usage.input_tokens + (message.usage.cache_read_input_tokens or 0) == chat.usage.prompt_tokens
    with client.messages.stream(model=model, max_tokens=6, messages=messages,
                                 extra_body={"temperature": 0}) as stream:
        streamed = "".join(stream.text_stream)
    assert streamed == expected
    container.audit_sink().flush()
    rows = container.audit_service().query(AuditQuery(model=model)).items
    assert {r.endpoint for r in rows} == {"/v1/chat/completions", "/v1/messages"} and len(rows) == 3
    assert all(r.completion_tokens == chat.usage.completion_tokens and r.backend == "local" for r in rows)


def test_tools_for_the_vision_model_without_a_tool_format_are_a_400_naming_it(server):
    url, _ = server
    client = anthropic_client(url)
    tool = {"name": "get_weather", "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}}}
    with pytest.raises(anthropic.BadRequestError, match="tiny-vlm: this model has no known tool-call format"):
        client.messages.create(model="tiny-vlm", max_tokens=6, tools=[tool],
                               messages=[{"role": "user", "content": "Weather in Paris?"}])
