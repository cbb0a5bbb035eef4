"""`mlxm probe` records the tool-call format and thinking markers mlx-lm infers from the real tokenizer,
and `mlxm show` prints them: the scripted model (JSON tool format, <think> tags) and a plain tiny llama."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from entrypoints.cli.main import cli
from tests.support.frontends import real_container
from tests.support.scripted_models import build_scripted_model
from tests.support.tiny_models import cached_model

pytestmark = pytest.mark.slow


def test_probe_records_and_show_prints_the_tool_parser_and_thinking_ids(tmp_path, tmp_path_factory):
    scripted = build_scripted_model(tmp_path / "scripted")
    plain = cached_model("llama", tmp_path_factory.getbasetemp() / "tiny-models")
    container = real_container(tmp_path / "home")
    runner = CliRunner()
    try:
        for path, name in ((scripted, "scripted"), (plain, "plain-llama")):
            result = runner.invoke(cli, ["import", str(path), "--name", name, "--json"], obj=container)
            assert result.exit_code == 0, result.output
        probed = runner.invoke(cli, ["probe", "scripted", "--json"], obj=container)
        assert probed.exit_code == 0, probed.output
        caps = json.loads(probed.output)["capabilities"]
        assert (caps["tool_parser_id"], caps["thinking_parser_id"]) == ("json_tools", "think_tags")
        assert caps["supports_native_tools"] is True and caps["supports_thinking"] is True
        shown = runner.invoke(cli, ["show", "scripted"], obj=container)
        assert shown.exit_code == 0, shown.output
        assert "tool_parser_id=json_tools" in shown.output and "thinking_parser_id=think_tags" in shown.output

        plain_caps = json.loads(runner.invoke(cli, ["probe", "plain-llama", "--json"], obj=container).output)
        assert plain_caps["capabilities"]["tool_parser_id"] is None
        assert plain_caps["capabilities"]["supports_native_tools"] is False
    finally:
        container.model_pool().shutdown()


def test_mlxm_run_keeps_reasoning_apart_and_can_switch_it_off(tmp_path):
    scripted = build_scripted_model(tmp_path / "scripted")
    container = real_container(tmp_path / "home")
    runner = CliRunner()
    try:
        assert runner.invoke(cli, ["import", str(scripted), "--name", "scripted"], obj=container).exit_code == 0
        answer = runner.invoke(cli, ["run", "scripted", "think", "--json"], obj=container)
        assert answer.exit_code == 0, answer.output
        data = json.loads(answer.output)
        assert (data["text"], data["reasoning"]) == ("Rayleigh scattering.", "The sky scatters blue light.")
        off = json.loads(runner.invoke(cli, ["run", "scripted", "think", "--no-thinking", "--json"], obj=container).output)
        assert (off["text"], off["reasoning"]) == ("Blue, because of Rayleigh.", None)
    finally:
        container.model_pool().shutdown()
