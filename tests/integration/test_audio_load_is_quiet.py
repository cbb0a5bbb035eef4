"""Loading an mlx-audio model prints nothing a user cannot act on (issue 15: the `soprano` warning)."""

from __future__ import annotations

from adapters.mlx.audio import MlxAudioRuntime
from domain.enums import ModelType
from tests.support.tiny_models import build_tiny_tts


def test_loading_a_tts_model_prints_no_transformers_warning(tmp_path, capfd):
    path = build_tiny_tts(tmp_path / "tts")
    capfd.readouterr()
    runtime = MlxAudioRuntime(max_speech_tokens=4)
    model = runtime.load("tiny-tts", path, ModelType.AUDIO)
    try:
        captured = capfd.readouterr()
        assert "You are using a model of type" not in captured.err + captured.out
    finally:
        runtime.unload(model)
