"""The tiny random-weight models load and run through the libraries' real loaders.

Everything here is offline: the models are built by tests/support/tiny_models.py
and loaded from local directories with mlx_lm.load, mlx_audio.stt.load and
mlx_audio.tts.load. Never import mlx_audio.tts.generate (it needs PortAudio).
"""

from __future__ import annotations

import hashlib
import io
import sys
import wave
from pathlib import Path

import numpy as np
import pytest

from tests.support.tiny_models import (
    CHAT_TEMPLATE,
    build_tiny_llama,
    cached_model,
    no_eos_logits_processor,
)

pytestmark = pytest.mark.slow


# ---------------------------------------------------------------- fixtures


@pytest.fixture(scope="session")
def tiny_root(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("tiny-models")


@pytest.fixture(scope="session")
def llama_dir(tiny_root) -> Path:
    return cached_model("llama", tiny_root)


@pytest.fixture(scope="session")
def whisper_dir(tiny_root) -> Path:
    return cached_model("whisper", tiny_root)


@pytest.fixture(scope="session")
def tts_dir(tiny_root) -> Path:
    return cached_model("tts", tiny_root)


@pytest.fixture(scope="module")
def llama(llama_dir):
    import mlx_lm

    return mlx_lm.load(str(llama_dir))


@pytest.fixture(scope="module")
def whisper(whisper_dir):
    from mlx_audio.stt import load

    return load(str(whisper_dir))


@pytest.fixture(scope="module")
def tts(tts_dir):
    from mlx_audio.tts import load

    return load(str(tts_dir))


def _digests(directory: Path) -> dict[str, str]:
    return {
        p.name: hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(directory.iterdir())
        if p.is_file() and not p.name.startswith(".")
    }


def _sine(seconds: float = 1.0, sr: int = 16000, freq: float = 440.0) -> np.ndarray:
    t = np.arange(int(seconds * sr)) / sr
    return (0.1 * np.sin(2 * np.pi * freq * t)).astype(np.float32)


# ---------------------------------------------------------------- builders / cache


def test_llama_build_is_deterministic_and_seeded(tmp_path):
    a = _digests(build_tiny_llama(tmp_path / "a", seed=3))
    b = _digests(build_tiny_llama(tmp_path / "b", seed=3))
    c = _digests(build_tiny_llama(tmp_path / "c", seed=4))
    assert a == b
    assert {"config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json"} <= set(a)
    assert a["model.safetensors"] != c["model.safetensors"]
    assert a["tokenizer.json"] == c["tokenizer.json"]


def test_llama_build_respects_size_options(tmp_path):
    import json

    import mlx.core as mx

    d = build_tiny_llama(
        tmp_path / "m", hidden_size=32, num_layers=1, intermediate_size=48, heads=2, kv_heads=1,
        max_position_embeddings=256,
    )
    cfg = json.loads((d / "config.json").read_text())
    assert (cfg["hidden_size"], cfg["num_hidden_layers"], cfg["intermediate_size"]) == (32, 1, 48)
    assert (cfg["num_attention_heads"], cfg["num_key_value_heads"]) == (2, 1)
    assert cfg["max_position_embeddings"] == 256
    weights = mx.load(str(d / "model.safetensors"))
    assert weights["model.embed_tokens.weight"].shape == (cfg["vocab_size"], 32)
    assert weights["model.layers.0.self_attn.k_proj.weight"].shape == (16, 32)
    assert not any(k.startswith("model.layers.1.") for k in weights)


def test_cached_model_builds_once(tiny_root, llama_dir):
    before = (llama_dir / "model.safetensors").stat().st_mtime_ns
    again = cached_model("llama", tiny_root)
    assert again == llama_dir
    assert (again / "model.safetensors").stat().st_mtime_ns == before
    # No temporary build directories are left behind.
    assert not [p for p in tiny_root.iterdir() if p.name.startswith(".")]
    with pytest.raises(ValueError):
        cached_model("nope", tiny_root)


def test_cached_model_with_options_gets_its_own_dir(tiny_root, llama_dir):
    import json

    small = cached_model("llama", tiny_root, hidden_size=32, heads=2, kv_heads=1)
    assert small != llama_dir
    assert json.loads((small / "config.json").read_text())["hidden_size"] == 32
    assert cached_model("llama", tiny_root, hidden_size=32, heads=2, kv_heads=1) == small


# ---------------------------------------------------------------- llama / mlx-lm


def test_llama_loads_and_generates(llama):
    import mlx_lm

    model, tokenizer = llama
    # A random model may pick EOS first; suppress it so there is text to check.
    no_eos = [no_eos_logits_processor(tokenizer.eos_token_ids)]
    text = mlx_lm.generate(model, tokenizer, "Hello world!", max_tokens=8, logits_processors=no_eos)
    assert isinstance(text, str) and text
    responses = list(mlx_lm.stream_generate(model, tokenizer, "Hello world!", max_tokens=8))
    assert responses
    assert all(isinstance(r.text, str) for r in responses)
    assert responses[-1].finish_reason in ("length", "stop")
    assert responses[-1].prompt_tokens > 0


def test_llama_greedy_generation_is_deterministic(llama):
    import mlx_lm
    from mlx_lm.sample_utils import make_sampler

    model, tokenizer = llama

    def run():
        rs = list(
            mlx_lm.stream_generate(
                model, tokenizer, "The quick brown fox", max_tokens=12, sampler=make_sampler(temp=0.0)
            )
        )
        return [r.token for r in rs], "".join(r.text for r in rs)

    first, second = run(), run()
    assert first == second
    assert len(first[0]) >= 1
    assert first[1] == mlx_lm.generate(
        model, tokenizer, "The quick brown fox", max_tokens=12, sampler=make_sampler(temp=0.0)
    )


def test_llama_no_eos_processor_forces_fixed_length(llama):
    import mlx_lm
    from mlx_lm.sample_utils import make_sampler

    model, tokenizer = llama
    eos = set(tokenizer.eos_token_ids)
    assert eos == {tokenizer.eos_token_id}
    rs = list(
        mlx_lm.stream_generate(
            model,
            tokenizer,
            "Hello",
            max_tokens=24,
            sampler=make_sampler(temp=1.0),
            logits_processors=[no_eos_logits_processor(tokenizer.eos_token_ids)],
        )
    )
    assert len(rs) == 24
    assert rs[-1].generation_tokens == 24
    assert rs[-1].finish_reason == "length"
    assert not eos & {r.token for r in rs}


def test_no_eos_processor_masks_only_eos():
    import mlx.core as mx

    logits = mx.array([[0.0, 1.0, 9.0, 2.0]])
    out = no_eos_logits_processor([2])(mx.array([1]), logits)
    assert int(mx.argmax(out, axis=-1).item()) == 3
    assert out[0, 2].item() == float("-inf")
    assert out[0, :2].tolist() == [0.0, 1.0]
    # An int works too, and an id outside the vocabulary is ignored.
    assert no_eos_logits_processor(99)(None, logits).tolist() == logits.tolist()


def test_llama_chat_template(llama, llama_dir):
    _, tokenizer = llama
    messages = [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Hi there"},
        {"role": "assistant", "content": "Hello."},
        {"role": "user", "content": "Bye"},
    ]
    prompt = tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
    assert prompt == (
        "<s><|system|>\nBe brief.</s>\n<|user|>\nHi there</s>\n"
        "<|assistant|>\nHello.</s>\n<|user|>\nBye</s>\n<|assistant|>\n"
    )
    no_gen = tokenizer.apply_chat_template(messages, add_generation_prompt=False, tokenize=False)
    assert prompt == no_gen + "<|assistant|>\n"

    ids = tokenizer.encode(prompt, add_special_tokens=False)
    assert ids[0] == tokenizer.bos_token_id
    # Role markers are single special tokens.
    assert tokenizer.convert_tokens_to_ids("<|assistant|>") in ids

    with pytest.raises(Exception):
        tokenizer.apply_chat_template([{"role": "tool", "content": "x"}], tokenize=False)

    # The template is stored with the model, as a Hub snapshot would have it.
    assert (llama_dir / "chat_template.jinja").read_text() == CHAT_TEMPLATE


def test_llama_generates_from_chat_prompt(llama):
    import mlx_lm
    from mlx_lm.sample_utils import make_sampler

    model, tokenizer = llama
    prompt = tokenizer.apply_chat_template(
        [{"role": "user", "content": "Hello"}], add_generation_prompt=True, tokenize=True
    )
    if not isinstance(prompt, list):  # transformers 5 may return a BatchEncoding
        prompt = list(prompt["input_ids"])
    rs = list(
        mlx_lm.stream_generate(model, tokenizer, prompt, max_tokens=4, sampler=make_sampler(temp=0.0))
    )
    assert rs and rs[-1].prompt_tokens == len(prompt)


# ---------------------------------------------------------------- whisper / mlx-audio stt


def test_whisper_loads_and_transcribes(whisper):
    from mlx_audio.stt.models.whisper.whisper import Model

    assert isinstance(whisper, Model)
    assert whisper.dims.n_mels == 80 and not whisper.is_multilingual
    audio = _sine()
    result = whisper.generate(audio, temperature=0.0, language="en")
    assert isinstance(result.text, str)
    assert result.language == "en"
    assert isinstance(result.segments, list)
    again = whisper.generate(audio, temperature=0.0, language="en")
    assert again.text == result.text


# ---------------------------------------------------------------- tts / mlx-audio


def test_tts_loads_and_synthesizes(tts):
    import mlx.core as mx
    from mlx_audio.tts.models.soprano import Model

    assert isinstance(tts, Model)
    assert tts.sample_rate == 32000
    result = next(tts.generate("Hello world.", max_tokens=8, temperature=0.0))
    audio = np.array(result.audio)  # GenerationResult.audio is a lazy mx.array
    assert audio.ndim == 1 and audio.size > 0
    assert audio.size == result.samples
    assert np.isfinite(audio).all()
    assert result.sample_rate == 32000
    again = next(tts.generate("Hello world.", max_tokens=8, temperature=0.0))
    assert np.array_equal(np.array(again.audio), audio)
    assert isinstance(result.audio, mx.array)


def test_tts_to_wav_to_stt_round_trip(tts, whisper):
    result = next(tts.generate("Testing one two.", max_tokens=8, temperature=0.0))
    audio = np.clip(np.array(result.audio, dtype=np.float32), -1.0, 1.0)

    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(result.sample_rate)
        w.writeframes((audio * 32767).astype("<i2").tobytes())
    buf.seek(0)
    with wave.open(buf, "rb") as r:
        sr = r.getframerate()
        pcm = np.frombuffer(r.readframes(r.getnframes()), dtype="<i2").astype(np.float32) / 32767
    assert sr == 32000 and pcm.size == audio.size

    # Resample 32 kHz -> 16 kHz for Whisper.
    n = int(pcm.size * 16000 / sr)
    pcm16 = np.interp(np.linspace(0, pcm.size - 1, n), np.arange(pcm.size), pcm).astype(np.float32)
    out = whisper.generate(pcm16, temperature=0.0, language="en")
    assert isinstance(out.text, str) and out.language == "en"


def test_portaudio_module_was_never_imported():
    # mlx_audio.tts.generate imports sounddevice (PortAudio), absent here.
    assert "mlx_audio.tts.generate" not in sys.modules
    assert "sounddevice" not in sys.modules
