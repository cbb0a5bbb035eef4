"""`MlxAudioRuntime`: text to speech and speech to text with mlx-audio.

Only `mlx_audio.tts.load` / `mlx_audio.stt.load` and the models' own `generate` are used.
`mlx_audio.tts.generate` is never imported: it pulls in sounddevice, which needs PortAudio.
"""

from __future__ import annotations

import importlib.util
import inspect
import io
import threading
import wave
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

from adapters.mlx.common import free_buffer_cache, read_config, weights_nbytes
from adapters.mlx.transformers_quiet import transformers_quiet
from application.errors import InvalidRequest
from application.inference.ports import GenerationRequest, LoadedModel, NotSupported, Transcription
from domain.enums import ModelType
from domain.profiles.params import AudioDefaults

WHISPER_SAMPLE_RATE = 16_000


@dataclass
class AudioModelHandle:
    model: Any
    kind: str  # "tts" | "stt"
    sample_rate: int
    config: dict


def _package_dirs(package: str) -> set[str]:
    """Model families mlx-audio ships for `package`, found without importing it."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        return set()
    names: set[str] = set()
    for location in spec.submodule_search_locations:
        names.update(p.name for p in Path(location).iterdir() if p.is_dir() and not p.name.startswith("_"))
    return names


def audio_kind(config: dict) -> str:
    """"stt" or "tts" from a model's config.json (Whisper-style keys count as STT)."""
    model_type = str(config.get("model_type", "")).lower()
    if any(key in config for key in ("n_audio_ctx", "n_mels")) or "whisper" in model_type:
        return "stt"
    if model_type and model_type in _package_dirs("mlx_audio.stt.models") and model_type not in _package_dirs(
        "mlx_audio.tts.models"
    ):
        return "stt"
    return "tts"


def wav_bytes(samples, sample_rate: int) -> bytes:
    """Mono 16-bit PCM WAV from float samples in [-1, 1]."""
    import numpy as np

    pcm = (np.clip(np.asarray(samples, dtype=np.float32), -1.0, 1.0) * 32767).astype("<i2")
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(int(sample_rate))
        out.writeframes(pcm.tobytes())
    return buffer.getvalue()


def read_audio(data: bytes | str | Path):
    """Decode WAV (or anything libsndfile reads) to mono float32 samples and their rate."""
    import numpy as np

    if isinstance(data, (str, Path)):
        data = Path(data).read_bytes()
    try:
        with wave.open(io.BytesIO(data), "rb") as source:
            rate, width, channels = source.getframerate(), source.getsampwidth(), source.getnchannels()
            frames = source.readframes(source.getnframes())
        if width == 1:
            samples = (np.frombuffer(frames, dtype=np.uint8).astype(np.float32) - 128.0) / 128.0
        elif width == 2:
            samples = np.frombuffer(frames, dtype="<i2").astype(np.float32) / 32768.0
        elif width == 4:
            samples = np.frombuffer(frames, dtype="<i4").astype(np.float32) / 2147483648.0
        else:
            raise wave.Error(f"unsupported sample width {width}")
        samples = samples.reshape(-1, channels).mean(axis=1) if channels > 1 else samples
        return samples.astype(np.float32), rate
    except (wave.Error, EOFError):
        pass
    try:
        import soundfile

        samples, rate = soundfile.read(io.BytesIO(data), dtype="float32", always_2d=True)
    except Exception as exc:  # noqa: BLE001 - any decoder failure is the client's bad input
        # libsndfile's own words ("Format not recognised."), not the message naming our in-memory buffer object.
        reason = getattr(exc, "error_string", None) or str(exc)
        raise InvalidRequest(f"cannot decode the audio (not WAV or another format libsndfile reads): {reason}") from exc
    return samples.mean(axis=1).astype(np.float32), int(rate)


def resample(samples, rate: int, target: int):
    if rate == target or len(samples) == 0:
        return samples
    try:
        from mlx_audio.utils import resample_audio

        return resample_audio(samples, rate, target, axis=0)
    except ImportError:  # pragma: no cover - older mlx-audio: linear interpolation
        import numpy as np

        count = int(round(len(samples) * target / rate))
        return np.interp(np.linspace(0, len(samples) - 1, count), np.arange(len(samples)), samples).astype(np.float32)


class MlxAudioRuntime:
    """The `ModelRuntime` port for audio models: TTS and STT through mlx-audio."""

    def __init__(self, *, max_speech_tokens: int | None = None) -> None:
        # A cap on codec tokens per TTS segment (None: the model's default).
        self.max_speech_tokens = max_speech_tokens
        # mlx-audio models keep per-call state; one call per model at a time.
        self._call_lock = threading.Lock()

    def load(self, model_id: str, path: Path, model_type: ModelType) -> LoadedModel:
        path = Path(path)
        config = read_config(path)
        if not config:
            raise InvalidRequest(f"{model_id}: {path} has no readable config.json")
        kind = audio_kind(config)
        with transformers_quiet():  # it warns on every load that it does not know mlx-audio's types
            return self._load(model_id, path, model_type, config, kind)

    def _load(self, model_id: str, path: Path, model_type: ModelType, config: dict, kind: str) -> LoadedModel:
        try:
            if kind == "stt":
                from mlx_audio.stt import load as load_stt

                model = load_stt(str(path))
                rate = int(getattr(model, "sample_rate", None) or config.get("sample_rate") or WHISPER_SAMPLE_RATE)
            else:
                from mlx_audio.tts import load as load_tts

                model = load_tts(str(path))
                rate = int(getattr(model, "sample_rate", None) or config.get("sample_rate") or 24_000)
        except FileNotFoundError as exc:
            raise InvalidRequest(f"{model_id}: the model folder {path} is incomplete: {exc}") from exc
        except (ValueError, ImportError, KeyError) as exc:  # unknown architecture, missing extra package
            raise NotSupported(f"{model_id}: mlx-audio cannot load this {kind.upper()} model: {exc}") from exc
        handle = AudioModelHandle(model=model, kind=kind, sample_rate=rate, config=config)
        return LoadedModel(model_id, ModelType(model_type), path, weights_nbytes(model), handle=handle)

    def unload(self, model: LoadedModel) -> None:
        model.handle = None
        free_buffer_cache()

    # ------------------------------------------------------------------ TTS

    def synthesize(self, model: LoadedModel, text: str, audio: AudioDefaults) -> bytes:
        import mlx.core as mx
        import numpy as np

        handle = self._handle(model, "tts")
        if not text or not text.strip():
            raise InvalidRequest("there is no text to speak")
        options: dict[str, Any] = {}
        accepted = inspect.signature(handle.model.generate).parameters
        if audio.voice is not None and "voice" in accepted:
            options["voice"] = audio.voice
        if audio.speed is not None and "speed" in accepted:
            options["speed"] = audio.speed
        if self.max_speech_tokens is not None and "max_tokens" in accepted:
            options["max_tokens"] = self.max_speech_tokens
        with self._call_lock:
            pieces = []
            rate = handle.sample_rate
            for result in handle.model.generate(text, **options):
                segment = result.audio
                if isinstance(segment, mx.array):
                    mx.eval(segment)
                pieces.append(np.asarray(segment, dtype=np.float32).reshape(-1))
                rate = int(getattr(result, "sample_rate", None) or rate)
        samples = np.concatenate(pieces) if pieces else np.zeros(0, dtype=np.float32)
        if audio.sample_rate and audio.sample_rate != rate:
            samples, rate = resample(samples, rate, audio.sample_rate), audio.sample_rate
        return wav_bytes(samples, rate)

    # ------------------------------------------------------------------ STT

    def transcribe(self, model: LoadedModel, audio: bytes, language: str | None) -> Transcription:
        handle = self._handle(model, "stt")
        samples, rate = read_audio(audio)
        if len(samples) == 0:
            raise InvalidRequest("the audio has no samples")
        samples = resample(samples, rate, handle.sample_rate)
        options: dict[str, Any] = {"temperature": 0.0}
        if language:
            options["language"] = language
        accepted = inspect.signature(handle.model.generate).parameters
        options = {k: v for k, v in options.items() if k in accepted or "kwargs" in accepted}
        with self._call_lock:
            result = handle.model.generate(samples, **options)
        segments = tuple(
            {"start": float(s.get("start", 0.0)), "end": float(s.get("end", 0.0)), "text": str(s.get("text", ""))}
            for s in (getattr(result, "segments", None) or [])
            if isinstance(s, dict)
        )
        return Transcription(
            text=str(getattr(result, "text", "")).strip(),
            language=getattr(result, "language", None) or language,
            segments=segments,
            duration=len(samples) / handle.sample_rate,
        )

    # ------------------------------------------------------------------ other modalities

    def generate(self, model: LoadedModel, request: GenerationRequest):
        raise InvalidRequest(f"{model.model_id} is an audio model; text generation needs a text model")

    def embed(self, model: LoadedModel, texts: Sequence[str]) -> list[list[float]]:
        raise NotSupported(f"{model.model_id} is an audio model; embeddings need an embeddings model")

    @staticmethod
    def _handle(model: LoadedModel, kind: str) -> AudioModelHandle:
        handle = model.handle
        if not isinstance(handle, AudioModelHandle):
            raise InvalidRequest(f"{model.model_id} is not loaded as an audio model")
        if handle.kind != kind:
            wanted = "speech synthesis (TTS)" if kind == "tts" else "transcription (STT)"
            raise InvalidRequest(f"{model.model_id} is a {handle.kind.upper()} model; it cannot do {wanted}")
        return handle


__all__ = ["MlxAudioRuntime", "audio_kind", "read_audio", "wav_bytes"]
