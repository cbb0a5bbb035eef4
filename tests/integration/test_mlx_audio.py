"""MlxAudioRuntime on tiny random-weight Soprano (TTS) and Whisper (STT), through real mlx-audio."""

from __future__ import annotations

import io
import sys
import wave

import numpy as np
import pytest

from adapters.mlx.audio import MlxAudioRuntime, read_audio, wav_bytes
from adapters.mlx.runtime import MlxRuntime
from application.errors import InvalidRequest
from application.inference.ports import GenerationRequest
from domain.enums import ModelType
from domain.profiles.params import AudioDefaults, InferenceParams
from tests.support.tiny_models import cached_model

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    return tmp_path_factory.mktemp("mlx-audio")


@pytest.fixture(scope="module")
def runtime():
    return MlxAudioRuntime(max_speech_tokens=8)


@pytest.fixture(scope="module")
def tts(runtime, root):
    model = runtime.load("tiny-tts", cached_model("tts", root), ModelType.AUDIO)
    yield model
    runtime.unload(model)


@pytest.fixture(scope="module")
def stt(runtime, root):
    model = runtime.load("tiny-whisper", cached_model("whisper", root), ModelType.AUDIO)
    yield model
    runtime.unload(model)


def parse_wav(data: bytes):
    with wave.open(io.BytesIO(data), "rb") as source:
        assert source.getnchannels() == 1 and source.getsampwidth() == 2
        return source.getframerate(), source.getnframes()


def sine(seconds: float, rate: int) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    return (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)


def test_speech_is_a_valid_wav_at_the_models_rate(runtime, tts):
    data = runtime.synthesize(tts, "Hello world.", AudioDefaults())
    rate, frames = parse_wav(data)
    assert rate == tts.handle.sample_rate == 32000
    assert frames > 0
    # Deterministic path: the same text gives the same waveform size.
    assert parse_wav(runtime.synthesize(tts, "Hello world.", AudioDefaults()))[1] > 0


def test_speech_can_be_resampled_on_request(runtime, tts):
    rate, frames = parse_wav(runtime.synthesize(tts, "Hello.", AudioDefaults(sample_rate=16000)))
    native_rate, native_frames = parse_wav(runtime.synthesize(tts, "Hello.", AudioDefaults()))
    assert rate == 16000
    assert abs(frames - native_frames / 2) <= 2


def test_transcription_returns_text_language_and_duration(runtime, stt):
    data = wav_bytes(sine(1.0, 16000), 16000)
    result = runtime.transcribe(stt, data, "en")
    assert isinstance(result.text, str)
    assert result.language == "en"
    assert result.duration == pytest.approx(1.0, abs=0.01)
    assert all({"start", "end", "text"} <= set(s) for s in result.segments)
    # Same model, same audio, temperature 0: the same transcription.
    assert runtime.transcribe(stt, data, "en").text == result.text


def test_transcription_resamples_to_the_models_rate(runtime, stt):
    at_32k = wav_bytes(sine(0.5, 32000), 32000)
    result = runtime.transcribe(stt, at_32k, "en")
    assert result.duration == pytest.approx(0.5, abs=0.01)  # counted at 16 kHz after resampling


def test_tts_wav_round_trips_into_stt(runtime, tts, stt):
    speech = runtime.synthesize(tts, "Testing one two.", AudioDefaults())
    result = runtime.transcribe(stt, speech, "en")
    assert isinstance(result.text, str) and result.language == "en"


def test_read_audio_handles_stereo_and_rejects_garbage():
    stereo = io.BytesIO()
    with wave.open(stereo, "wb") as out:
        out.setnchannels(2)
        out.setsampwidth(2)
        out.setframerate(8000)
        out.writeframes(np.array([1000, 3000] * 80, dtype="<i2").tobytes())
    samples, rate = read_audio(stereo.getvalue())
    assert rate == 8000 and samples.shape == (80,)
    assert samples[0] == pytest.approx(2000 / 32768)
    with pytest.raises(InvalidRequest):
        read_audio(b"definitely not audio")


def test_wrong_direction_and_wrong_modality_are_refused(runtime, tts, stt):
    with pytest.raises(InvalidRequest, match="TTS model"):
        runtime.transcribe(tts, wav_bytes(sine(0.1, 16000), 16000), None)
    with pytest.raises(InvalidRequest, match="STT model"):
        runtime.synthesize(stt, "hi", AudioDefaults())
    with pytest.raises(InvalidRequest):
        runtime.generate(tts, GenerationRequest(InferenceParams(), prompt="hi"))


def test_portaudio_module_is_never_imported(runtime, tts):
    runtime.synthesize(tts, "Hi.", AudioDefaults())
    assert "mlx_audio.tts.generate" not in sys.modules
    assert "sounddevice" not in sys.modules


def test_voice_and_speed_reach_models_that_take_them(runtime):
    # A stand-in with Kokoro's generate signature: the adapter passes what the model accepts.
    from pathlib import Path
    from types import SimpleNamespace

    from adapters.mlx.audio import AudioModelHandle
    from application.inference.ports import LoadedModel

    seen = {}

    class KokoroLike:
        def generate(self, text, voice=None, speed=1.0, lang_code="a", max_tokens=None):
            seen.update(text=text, voice=voice, speed=speed, max_tokens=max_tokens)
            yield SimpleNamespace(audio=np.zeros(2400, dtype=np.float32), sample_rate=24000)

    handle = AudioModelHandle(model=KokoroLike(), kind="tts", sample_rate=24000, config={})
    model = LoadedModel("kokoro-like", ModelType.AUDIO, Path("."), 1, handle=handle)
    rate, frames = parse_wav(runtime.synthesize(model, "Hi", AudioDefaults(voice="af_sky", speed=1.25)))
    assert seen == {"text": "Hi", "voice": "af_sky", "speed": 1.25, "max_tokens": 8}
    assert (rate, frames) == (24000, 2400)
