"""The closing note's transcript as a test: `mlxm import` + `mlxm serve` as fresh processes, and the real
openai SDK doing a two-step tool call (call, tool result, answer) on a scripted model."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import openai
import pytest

from tests.support.scripted_models import build_scripted_model
from tests.support.serve_process import mlxm_serve

pytestmark = pytest.mark.slow

WEATHER_TOOL = {"type": "function", "function": {
    "name": "get_weather", "description": "Current weather in a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}


def test_two_step_tool_call_against_mlxm_serve(tmp_path):
    model = build_scripted_model(tmp_path / "scripted")
    env = {**os.environ, "MLX_MANAGER_HOME": str(tmp_path / "home")}
    exe = str(Path(sys.executable).with_name("mlxm"))
    imported = subprocess.run([exe, "import", str(model), "--name", "scripted"], env=env, capture_output=True,
                              text=True, timeout=300)
    assert imported.returncode == 0, imported.stderr
    with mlxm_serve(env) as served:
        client = openai.OpenAI(base_url=f"{served.url}/v1", api_key="local", max_retries=0, timeout=120)
        messages = [{"role": "user", "content": "What is the weather in Paris?"}]
        first = client.chat.completions.create(model="scripted", messages=messages, tools=[WEATHER_TOOL])
        assert first.choices[0].finish_reason == "tool_calls"
        call = first.choices[0].message.tool_calls[0]
        assert call.function.name == "get_weather" and json.loads(call.function.arguments) == {"city": "Paris"}
        messages.append(first.choices[0].message.model_dump(exclude_none=True))
        messages.append({"role": "tool", "tool_call_id": call.id,
                         "content": json.dumps({"city": "Paris", "temperature_c": 22, "sky": "sunny"})})
        second = client.chat.completions.create(model="scripted", messages=messages, tools=[WEATHER_TOOL])
        assert second.choices[0].finish_reason == "stop"
        assert second.choices[0].message.content == "It is sunny in Paris, 22 C."
    # Ctrl-C after serving generations must end the process cleanly: no abort while MLX threads
    # finalise (`mlxm serve` ends with os._exit after its shutdown: entrypoints/cli/serve_server.py).
    assert served.process.returncode == 0, served.stderr[-3000:]
