"""The e2e SDK tests' server: a real container with model folders imported through the real CLI, served
by real uvicorn on loopback, and the SDK clients pointed at it. Each test module keeps its own
module-scoped `server` fixture (its own models and settings) and calls `serving` from it, so a module's
server is still built once and shut down when the module ends."""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Iterable, Iterator

from click.testing import CliRunner

from tests.support.frontends import real_container, serve_in_thread
from tests.support.tiny_models import cached_model


def tiny_chat_models(tmp_path_factory) -> dict[str, Path]:
    """Name -> folder of the two chat models the SDK tests compare: a tiny real llama (mlx-lm, untied
    embeddings) and a tiny Qwen2-VL (mlx-vlm), built once into the session's shared tiny-models folder."""
    root = tmp_path_factory.getbasetemp() / "tiny-models"
    return {"tiny-llama": cached_model("llama", root, tie_word_embeddings=False),
            "tiny-vlm": cached_model("qwen2_vl", root)}


@contextlib.contextmanager
def serving(home: Path, models: dict[str, Path], *, commands: Iterable[list[str]] = (),
            **server) -> Iterator[tuple[str, object]]:
    """Yields (base URL, container): `models` (name -> folder) imported with `mlxm import --name`, then each
    of `commands` run through the CLI (e.g. a `profile create`); `server` are ServerSettings fields. The
    model pool is shut down on exit, so no runtime outlives the module."""
    from entrypoints.cli.main import cli
    from entrypoints.http.app import create_app

    container = real_container(home, **server)
    runner = CliRunner()
    for name, folder in models.items():
        result = runner.invoke(cli, ["import", str(folder), "--name", name, "--json"], obj=container)
        assert result.exit_code == 0, result.output
    for command in commands:
        result = runner.invoke(cli, command, obj=container)
        assert result.exit_code == 0, result.output
    with serve_in_thread(create_app(container)) as url:
        yield url, container
    container.model_pool().shutdown()


def openai_client(url: str):
    import openai

    return openai.OpenAI(base_url=f"{url}/v1", api_key="x", max_retries=0, timeout=120)


def anthropic_client(url: str):
    import anthropic

    return anthropic.Anthropic(base_url=url, api_key="x", max_retries=0, timeout=120)
