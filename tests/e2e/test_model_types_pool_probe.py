"""Probes stored in the capability subclass tables, and the pool across all four model types, through
uvicorn with MLX_SERVER_MAX_MODELS=2 and real tiny models (text, vision, embeddings, audio)."""

from __future__ import annotations

import base64
import json
import sqlite3

import httpx
import openai
import pytest
from click.testing import CliRunner

from entrypoints.cli.main import cli
from tests.support.served_models import serving
from tests.support.tiny_models import cached_model

pytestmark = pytest.mark.slow

KINDS = {"tiny-llama": "llama", "tiny-vlm": "qwen2_vl", "tiny-bert": "bert", "tiny-qwen3-embed": "qwen3_embedding",
         "tiny-whisper": "whisper", "tiny-tts": "tts"}


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    root = tmp_path_factory.getbasetemp() / "tiny-models"
    home = tmp_path_factory.mktemp("mlxm-home")
    folders = {name: cached_model(kind, root) for name, kind in KINDS.items()}
    with serving(home, folders, max_models=2) as (url, container):
        yield url, container, home


def rows(home, sql):
    with sqlite3.connect(home / "mlxm.db") as db:
        return db.execute(sql).fetchall()


def test_probe_fills_each_capability_subclass_table(server):
    url, container, home = server
    vision = httpx.post(f"{url}/api/models/tiny-vlm/probe", timeout=300).json()
    assert vision["capabilities"]["supports_multi_image"] is True, vision
    assert vision["capabilities"]["supports_video"] is True  # Qwen2-VL: a video token and a video processor
    embed = httpx.post(f"{url}/api/models/tiny-bert/probe", timeout=300).json()
    assert embed["capabilities"]["embedding_dimensions"] == 32 and embed["capabilities"]["is_normalized"] is True
    result = CliRunner().invoke(cli, ["probe", "tiny-qwen3-embed", "--json"], obj=container)
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["capabilities"]["max_sequence_length"] == 256
    for name in ("tiny-tts", "tiny-whisper", "tiny-llama"):
        assert httpx.post(f"{url}/api/models/{name}/probe", timeout=300).status_code == 200

    (vision_row,) = rows(home, "SELECT v.supports_multi_image, v.supports_video FROM vision_capabilities v "
                               "JOIN model_capabilities c ON c.id = v.id JOIN models m ON m.id = c.model_pk "
                               "WHERE m.model_id = 'tiny-vlm'")
    assert vision_row == (1, 1)
    embedding_rows = dict((r[0], r[1:]) for r in rows(
        home, "SELECT m.model_id, e.embedding_dimensions, e.max_sequence_length, e.is_normalized "
              "FROM embedding_capabilities e JOIN model_capabilities c ON c.id = e.id "
              "JOIN models m ON m.id = c.model_pk"))
    assert embedding_rows == {"tiny-bert": (32, 128, 1), "tiny-qwen3-embed": (32, 256, 1)}
    audio_rows = dict((r[0], r[1:]) for r in rows(
        home, "SELECT m.model_id, a.supports_tts, a.supports_stt FROM audio_capabilities a "
              "JOIN model_capabilities c ON c.id = a.id JOIN models m ON m.id = c.model_pk"))
    assert audio_rows == {"tiny-tts": (1, 0), "tiny-whisper": (0, 1)}
    (text_row,) = rows(home, "SELECT t.practical_max_tokens FROM text_gen_capabilities t JOIN model_capabilities c "
                             "ON c.id = t.id JOIN models m ON m.id = c.model_pk WHERE m.model_id = 'tiny-llama'")
    assert text_row == (2048,)

    shown = CliRunner().invoke(cli, ["show", "tiny-vlm"], obj=container)
    assert shown.exit_code == 0 and "supports_multi_image" in shown.output


def test_pool_evicts_across_text_vision_embeddings_and_audio(server):
    url, container, _ = server
    client = openai.OpenAI(base_url=f"{url}/v1", api_key="x", max_retries=0, timeout=300)
    png = base64.b64encode(_png()).decode()

    def loaded():
        return sorted(m["model_id"] for m in httpx.get(f"{url}/api/pool").json()["loaded"])

    client.chat.completions.create(model="tiny-llama", messages=[{"role": "user", "content": "hi"}], max_tokens=2)
    client.chat.completions.create(model="tiny-vlm", max_tokens=2, messages=[{"role": "user", "content": [
        {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{png}"}}, {"type": "text", "text": "x"}]}])
    assert loaded() == ["tiny-llama", "tiny-vlm"]
    client.embeddings.create(model="tiny-bert", input="hello")
    assert loaded() == ["tiny-bert", "tiny-vlm"]  # least recently used (text) went first
    speech = client.audio.speech.create(model="tiny-tts", voice="default", input="Hello.")
    assert speech.content[:4] == b"RIFF"
    assert loaded() == ["tiny-bert", "tiny-tts"]
    # Every type still answers after being evicted and loaded again.
    client.chat.completions.create(model="tiny-vlm", messages=[{"role": "user", "content": "again"}], max_tokens=2)
    assert len(client.embeddings.create(model="tiny-bert", input="again").data[0].embedding) == 32
    assert loaded() == ["tiny-bert", "tiny-vlm"]


def _png() -> bytes:
    import io

    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (32, 32), (10, 200, 10)).save(buffer, format="PNG")
    return buffer.getvalue()
