"""The probe's runs of the real model, per type: what the model does, not only what its files say.

- vision: a greedy generation with two images in one message (multi-image works or not);
- embeddings: one embedding (its dimensions, whether it is unit-length, the max sequence length
  the runtime enforces);
- audio: a short synthesis (TTS) or a transcription of a short silence (STT).

Each returns its findings and an error text (a failed run is a probe finding, not a crash).
"""

from __future__ import annotations

import math
import struct
import zlib
from dataclasses import dataclass
from pathlib import Path

from application.inference.pool import ModelPool
from application.inference.ports import (
    ChatMessage,
    EmbeddingRequest,
    GenerationRequest,
    ImageInput,
    ModelRuntime,
)
from domain.enums import ModelType
from domain.profiles.params import AudioDefaults, InferenceParams

PROBE_IMAGE_SIDE = 32


def tiny_png(rgb: tuple[int, int, int], side: int = PROBE_IMAGE_SIDE) -> bytes:
    """A solid-colour PNG built with the standard library (the core has no imaging dependency)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    row = b"\x00" + bytes(rgb) * side
    header = struct.pack(">IIBBBBB", side, side, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(row * side)) + chunk(b"IEND", b"")


def silence_wav(seconds: float = 1.0, rate: int = 16_000) -> bytes:
    """16-bit mono PCM silence as a WAV file, header written by hand (no file API in the core)."""
    data = b"\x00\x00" * int(rate * seconds)
    header = struct.pack("<4sI4s4sIHHIIHH4sI", b"RIFF", 36 + len(data), b"WAVE", b"fmt ", 16, 1, 1, rate,
                         rate * 2, 2, 16, b"data", len(data))
    return header + data


@dataclass
class EmbeddingRun:
    dimensions: int | None = None
    normalized: bool | None = None
    max_sequence_length: int | None = None
    error: str | None = None


class ProbeRuns:
    def __init__(self, pool: ModelPool, runtime: ModelRuntime) -> None:
        self._pool = pool
        self._runtime = runtime

    def vision_multi_image(self, model_id: str, path: Path) -> tuple[bool | None, str | None]:
        """True when a two-image request runs; None (unknown) when even loading failed."""
        images = (ImageInput(tiny_png((220, 30, 30))), ImageInput(tiny_png((30, 30, 220))))
        request = GenerationRequest(params=InferenceParams(temperature=0.0, max_tokens=2),
                                    messages=(ChatMessage("user", "Compare the two images.", images=images),))
        try:
            with self._pool.acquire(model_id, path, ModelType.VISION) as lease:
                chunks = self._runtime.generate(lease.model, request)
                try:
                    for _ in chunks:
                        pass
                finally:
                    close = getattr(chunks, "close", None)
                    if close is not None:
                        close()
            return True, None
        except Exception as exc:  # noqa: BLE001 - a model that cannot take two images is a finding
            return (None if "load" in str(exc).lower() else False), f"{type(exc).__name__}: {exc}"

    def embedding(self, model_id: str, path: Path) -> EmbeddingRun:
        try:
            with self._pool.acquire(model_id, path, ModelType.EMBEDDINGS) as lease:
                result = self._runtime.embed(lease.model, EmbeddingRequest(("The quick brown fox.",)))
        except Exception as exc:  # noqa: BLE001
            return EmbeddingRun(error=f"{type(exc).__name__}: {exc}")
        vector = result.vectors[0]
        norm = math.sqrt(sum(v * v for v in vector))
        return EmbeddingRun(len(vector), abs(norm - 1.0) < 1e-3, result.max_sequence_length)

    def audio(self, model_id: str, path: Path, kind: str | None) -> tuple[bool, bool, str | None]:
        """(tts works, stt works) for the kind the files suggest; the other direction is False."""
        try:
            with self._pool.acquire(model_id, path, ModelType.AUDIO) as lease:
                if kind == "tts":
                    wav = self._runtime.synthesize(lease.model, "Hello.", AudioDefaults())
                    return bool(wav), False, None if wav else "synthesis returned no audio"
                if kind == "stt":
                    self._runtime.transcribe(lease.model, silence_wav(), "en")
                    return False, True, None
        except Exception as exc:  # noqa: BLE001
            return False, False, f"{type(exc).__name__}: {exc}"
        return False, False, "could not tell TTS from STT"
