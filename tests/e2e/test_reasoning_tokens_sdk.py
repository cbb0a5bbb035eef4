"""Reasoning-token counts through the real `openai` SDK, against uvicorn, on a scripted tiny model (real
mlx-lm): thinking markers spelled over several tokens, stop strings inside and right after the thinking
block (the stream holds text back), and several choices. Each generated token is counted once, with the
part its text lands in; the expected counts come from the scripts.
"""

from __future__ import annotations

import pytest

from tests.support.scripted_models import build_scripted_model
from tests.support.served_models import openai_client, serving

pytestmark = pytest.mark.slow

SCRIPTS = {
    # `<think>` spelled over three tokens, `</think>` over two (the vocabulary still has both as tokens, so
    # mlx-lm treats the model as a thinking model).
    "split": ["<t", "hin", "k>", "Sky ", "is ", "blue.", "</thi", "nk>", "Rayleigh ", "scattering."],
    "think": ["<think>", "The sky ", "scatters ", "blue light.", "</think>", "Mie ", "and Rayleigh."],
    "default": ["Hello ", "from ", "a script."],
}
SPLIT_THINKING = SCRIPTS["split"].index("nk>") + 1  # the opening marker's tokens through the closing one's


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    scripted = build_scripted_model(tmp_path_factory.mktemp("models") / "scripted", SCRIPTS)
    with serving(tmp_path_factory.mktemp("mlxm-home"), {"scripted": scripted}) as (url, _):
        yield url


@pytest.fixture
def client(server):
    return openai_client(server)


def _chat(client, word: str, **extra):
    return client.chat.completions.create(model="scripted", messages=[{"role": "user", "content": word}],
                                          temperature=0, **extra)


def _streamed_usage(client, word: str, **extra):
    stream = _chat(client, word, stream=True, stream_options={"include_usage": True}, **extra)
    return [event.usage for event in stream if event.usage is not None][-1]


def test_every_token_of_a_marker_split_over_tokens_counts_as_reasoning(client):
    completion = _chat(client, "split")
    message = completion.choices[0].message
    assert message.content == "Rayleigh scattering." and message.model_extra["reasoning_content"] == "Sky is blue."
    assert completion.usage.completion_tokens == len(SCRIPTS["split"])
    assert completion.usage.completion_tokens_details.reasoning_tokens == SPLIT_THINKING
    assert _streamed_usage(client, "split").completion_tokens_details.reasoning_tokens == SPLIT_THINKING
    response = client.responses.create(model="scripted", input="split", temperature=0)
    assert response.usage.output_tokens_details.reasoning_tokens == SPLIT_THINKING


def test_a_stop_string_inside_the_thinking_block_counts_every_token_as_reasoning(client):
    script = SCRIPTS["think"]
    completion = _chat(client, "think", stop=["blue"])
    assert completion.choices[0].message.model_extra["reasoning_content"] == "The sky scatters "
    assert completion.usage.completion_tokens == script.index("blue light.") + 1
    assert completion.usage.completion_tokens_details.reasoning_tokens == completion.usage.completion_tokens


@pytest.mark.parametrize("stream", [False, True])
def test_a_stop_string_right_after_the_thinking_block_counts_its_tokens_as_content(client, stream):
    # Longer than `</think>`: the stream holds the whole closing marker back until the stop string is decided.
    script, stop = SCRIPTS["think"], ["Mie and"]
    usage = _streamed_usage(client, "think", stop=stop) if stream else _chat(client, "think", stop=stop).usage
    assert usage.completion_tokens == script.index("and Rayleigh.") + 1
    assert usage.completion_tokens_details.reasoning_tokens == script.index("</think>") + 1


@pytest.mark.parametrize("stream", [False, True])
def test_several_choices_are_counted_each_and_summed(client, stream):
    choices = 3
    extra = {"n": choices, "stop": ["Rayleigh"]}
    usage = _streamed_usage(client, "split", **extra) if stream else _chat(client, "split", **extra).usage
    assert usage.completion_tokens == choices * (SCRIPTS["split"].index("Rayleigh ") + 1)
    assert usage.completion_tokens_details.reasoning_tokens == choices * SPLIT_THINKING
