"""`tool_choice: "required"` and a named function are enforced by constrained decoding, not hoped for.

Random-weight tiny llamas (byte-level BPE) whose chat templates carry the JSON (Hermes/Qwen), the
Qwen3-Coder (XML) or the Mistral tool markers: left alone it never calls a tool; with `required` or a named function the engine's
llguidance constraint, built from the model's own tool-call format, makes it emit a parsable call of
an offered function with schema-valid arguments, for several seeds. Through the real openai SDK.
"""

from __future__ import annotations

import json
import shutil

import pytest

from tests.support.served_models import anthropic_client, openai_client, serving
from tests.support.tiny_models import cached_model

pytestmark = pytest.mark.slow

# Chat templates whose markers make mlx-lm infer a tool format: JSON (Hermes/Qwen), Qwen3-Coder, Mistral.
TEMPLATES = {
    "random-tools": (
        "{%- for m in messages -%}{{ m.role }}: {{ m.content or '' }}\n{%- endfor -%}"
        "{%- if tools -%}tools:{% for t in tools %} {{ t.function.name }}{% endfor %}\n"
        "{%- for tool_call in [] -%}<tool_call>{{ tool_call.name }}</tool_call>{%- endfor -%}{%- endif -%}"
        "assistant:"
    ),
    "random-qwen-coder": (
        "{%- for m in messages -%}{{ m.role }}: {{ m.content or '' }}\n{%- endfor -%}"
        "{%- if tools -%}tools:{% for t in tools %} {{ t.function.name }}{% endfor %}\n"
        "{%- for tool_call in [] -%}<tool_call>\n<function={{ tool_call.name }}>{%- endfor -%}{%- endif -%}"
        "assistant:"
    ),
    "random-mistral": (
        "{%- for m in messages -%}{{ m.role }}: {{ m.content or '' }}\n{%- endfor -%}"
        "{%- if tools -%}[AVAILABLE_TOOLS]{% for t in tools %} {{ t.function.name }}{% endfor %}[/AVAILABLE_TOOLS]"
        "{%- for tool_call in [] -%}[TOOL_CALLS]{{ tool_call.name }}[ARGS]{%- endfor -%}{%- endif -%}"
        "assistant:"
    ),
}
CITY = {"type": "string", "enum": ["Paris", "Tokyo", "Lima"]}
TOOLS = [
    {"type": "function", "function": {"name": "get_weather", "parameters": {
        "type": "object", "properties": {"city": CITY}, "required": ["city"], "additionalProperties": False}}},
    {"type": "function", "function": {"name": "get_time", "parameters": {
        "type": "object", "properties": {"city": CITY}, "required": ["city"], "additionalProperties": False}}},
]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    source = cached_model("llama", tmp_path_factory.getbasetemp() / "tiny-models", tie_word_embeddings=False)
    folders = {}
    for name, template in TEMPLATES.items():
        folders[name] = tmp_path_factory.mktemp("models") / name
        shutil.copytree(source, folders[name])
        (folders[name] / "chat_template.jinja").write_text(template)
    with serving(tmp_path_factory.mktemp("mlxm-home"), folders) as (url, _):
        yield url


@pytest.fixture
def client(server):
    return openai_client(server)


def _calls(completion):
    return [(c.function.name, json.loads(c.function.arguments)) for c in completion.choices[0].message.tool_calls or []]


@pytest.mark.parametrize("model", list(TEMPLATES))
def test_without_a_constraint_the_random_model_calls_nothing(client, model):
    completion = client.chat.completions.create(model=model, messages=[{"role": "user", "content": "hi"}],
                                                tools=TOOLS, temperature=0, max_tokens=40)
    assert not completion.choices[0].message.tool_calls


@pytest.mark.parametrize("model", list(TEMPLATES))
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_required_makes_a_valid_call(client, model, seed):
    completion = client.chat.completions.create(
        model=model, messages=[{"role": "user", "content": "hi"}], tools=TOOLS, tool_choice="required",
        parallel_tool_calls=False, temperature=1.0, seed=seed, max_tokens=120)
    [(name, arguments)] = _calls(completion)
    assert name in ("get_weather", "get_time") and arguments["city"] in CITY["enum"] and set(arguments) == {"city"}
    assert completion.choices[0].finish_reason == "tool_calls"


@pytest.mark.parametrize("model", list(TEMPLATES))
def test_a_named_function_is_the_one_called(client, model):
    completion = client.chat.completions.create(
        model=model, messages=[{"role": "user", "content": "hi"}], tools=TOOLS, parallel_tool_calls=False,
        tool_choice={"type": "function", "function": {"name": "get_time"}}, temperature=0, max_tokens=120)
    [(name, arguments)] = _calls(completion)
    assert name == "get_time" and arguments["city"] in CITY["enum"]


def test_required_streams_the_call(client):
    stream = client.chat.completions.create(
        model="random-tools", messages=[{"role": "user", "content": "hi"}], tools=TOOLS, tool_choice="required",
        parallel_tool_calls=False, temperature=0, max_tokens=120, stream=True)
    names = [tc.function.name for event in stream for tc in (event.choices[0].delta.tool_calls or [])
             if tc.function and tc.function.name]
    assert len(names) == 1 and names[0] in ("get_weather", "get_time")


def test_anthropic_any_and_named_tool_are_enforced(server):
    client = anthropic_client(server)
    tools = [{"name": t["function"]["name"], "input_schema": t["function"]["parameters"]} for t in TOOLS]
    for choice, names in (({"type": "any", "disable_parallel_tool_use": True}, {"get_weather", "get_time"}),
                          ({"type": "tool", "name": "get_weather"}, {"get_weather"})):
        message = client.messages.create(model="random-tools", max_tokens=120, tools=tools, tool_choice=choice,
                                         messages=[{"role": "user", "content": "hi"}])
        [block] = [b for b in message.content if b.type == "tool_use"]
        assert block.name in names and block.input["city"] in CITY["enum"]
        assert message.stop_reason == "tool_use"


def test_responses_required_is_enforced(client):
    response = client.responses.create(model="random-tools", input="hi", tool_choice="required",
                                       parallel_tool_calls=False, max_output_tokens=120,
                                       tools=[{"type": "function", **t["function"]} for t in TOOLS])
    [call] = [item for item in response.output if item.type == "function_call"]
    assert call.name in ("get_weather", "get_time") and json.loads(call.arguments)["city"] in CITY["enum"]


def test_responses_text_format_json_schema_is_enforced(client):
    schema = {"type": "object", "properties": {"city": CITY, "ok": {"type": "boolean"}},
              "required": ["city", "ok"], "additionalProperties": False}
    response = client.responses.create(model="random-tools", input="hi", max_output_tokens=400, temperature=0,
                                       text={"format": {"type": "json_schema", "name": "answer", "schema": schema,
                                                        "strict": True}})
    data = json.loads(response.output_text)
    assert data["city"] in CITY["enum"] and isinstance(data["ok"], bool) and set(data) == {"city", "ok"}
