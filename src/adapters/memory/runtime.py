"""An in-memory `ModelRuntime` for unit tests of the core and for frontends' tests.

It behaves like a runtime, deterministically and instantly: generation echoes words of the
prompt (so tests can tell outputs apart), honours `max_tokens` and stop strings, and records
every request it saw, so a test can check exactly which resolved parameters reached the
runtime. Loads can be gated with an event to exercise races in the pool.
"""

from __future__ import annotations

import hashlib
import io
import math
import struct
import threading
import wave
from pathlib import Path
from typing import Iterator

from application.errors import InvalidRequest, Unavailable
from application.inference.ports import (
    EmbeddingRequest,
    EmbeddingResult,
    GenerationChunk,
    GenerationRequest,
    LoadedModel,
    PromptCacheStats,
    TokenLogprob,
    Transcription,
)
from domain.enums import ModelType
from domain.profiles.params import AudioDefaults

FAKE_SAMPLE_RATE = 16_000
FAKE_EMBEDDING_DIMS = 8
FAKE_CACHE_BYTES_PER_TOKEN = 100  # what one cached prompt token (a word) "costs" in the fake prompt cache
FAKE_MAX_SEQUENCE_LENGTH = 512


class FakeModelRuntime:
    def __init__(self, sizes: dict[str, int] | None = None, default_size: int = 1000) -> None:
        self.sizes = dict(sizes or {})
        self.default_size = default_size
        self.loads: list[str] = []
        self.unloads: list[str] = []
        self.requests: list[GenerationRequest] = []
        self.speech_requests: list[tuple[str, AudioDefaults]] = []
        self.generated_tokens = 0
        self.cancelled_streams = 0  # streams closed by their consumer before they ended
        self.load_gate: threading.Event | None = None  # set by a test to hold loads open
        self.loading = threading.Event()  # set once a load has begun
        self.fail_loads: set[str] = set()
        # The fake prompt cache: per model, the word lists of earlier prompts (most recent last),
        # bounded like the real one. A request reports the longest shared prefix as cached.
        self.prompt_cache_entries = 10
        self.prompt_cache_bytes = 2 << 30  # bounds like MLX_SERVER_PROMPT_CACHE_SIZE / _BYTES (either 0: no cache)
        self.prompt_caches: dict[str, list[list[str]]] = {}
        self.warmed: list[tuple[str, GenerationRequest]] = []
        self._lock = threading.Lock()

    # ------------------------------------------------------------------ lifecycle

    def load(self, model_id: str, path: Path, model_type: ModelType) -> LoadedModel:
        self.loading.set()
        if self.load_gate is not None:
            self.load_gate.wait(timeout=10)
        if model_id in self.fail_loads:
            raise RuntimeError(f"cannot load {model_id}")
        with self._lock:
            self.loads.append(model_id)
        size = self.sizes.get(model_id, self.default_size)
        return LoadedModel(model_id, ModelType(model_type), Path(path), size, handle={"alive": True})

    def unload(self, model: LoadedModel) -> None:
        with self._lock:
            self.unloads.append(model.model_id)
            self.prompt_caches.pop(model.model_id, None)
        model.handle["alive"] = False

    # ------------------------------------------------------------------ prompt cache

    def cache_bytes(self, model: LoadedModel) -> int:
        with self._lock:
            entries = self.prompt_caches.get(model.model_id, [])
            return sum(len(e) for e in entries) * FAKE_CACHE_BYTES_PER_TOKEN

    def free_cache(self, model: LoadedModel) -> int:
        freed = self.cache_bytes(model)
        with self._lock:
            self.prompt_caches.pop(model.model_id, None)
        return freed

    def cache_stats(self, model: LoadedModel) -> PromptCacheStats | None:
        if (self.prompt_cache_entries <= 0 or self.prompt_cache_bytes <= 0 or not model.handle["alive"]
                or model.model_type not in (ModelType.TEXT_GEN, ModelType.VISION)):
            return None  # as the real runtimes: no cache when off, unloaded, or for audio / embeddings
        with self._lock:
            entries = self.prompt_caches.get(model.model_id, [])
            size = sum(len(e) for e in entries) * FAKE_CACHE_BYTES_PER_TOKEN
            return PromptCacheStats(size, len(entries), self.prompt_cache_entries, self.prompt_cache_bytes)

    def warm(self, model: LoadedModel, request: GenerationRequest) -> int:
        words = self._prompt_text(request).split()
        with self._lock:
            self.warmed.append((model.model_id, request))
        self._remember(model, words)
        return len(words)

    def _cached_prefix(self, model: LoadedModel, words: list[str]) -> int:
        best = 0
        with self._lock:
            for entry in self.prompt_caches.get(model.model_id, []):
                n = 0
                for a, b in zip(entry, words):
                    if a != b:
                        break
                    n += 1
                best = max(best, n)
        return min(best, max(len(words) - 1, 0))  # the last prompt token is always computed

    def _remember(self, model: LoadedModel, words: list[str]) -> None:
        if not words or self.prompt_cache_entries <= 0 or self.prompt_cache_bytes <= 0:
            return
        with self._lock:
            entries = self.prompt_caches.setdefault(model.model_id, [])
            if words in entries:
                entries.remove(words)
            entries.append(words)
            del entries[: max(0, len(entries) - self.prompt_cache_entries)]
            while entries and sum(len(e) for e in entries) * FAKE_CACHE_BYTES_PER_TOKEN > self.prompt_cache_bytes:
                del entries[0]  # least recently used first, as the real caches evict

    @staticmethod
    def _prompt_text(request: GenerationRequest) -> str:
        if request.messages:
            return "\n".join(f"{m.role}: {m.content}" for m in request.messages)
        return request.prompt or ""

    # ------------------------------------------------------------------ generation

    def generate(self, model: LoadedModel, request: GenerationRequest) -> Iterator[GenerationChunk]:
        self._require(model, ModelType.TEXT_GEN, ModelType.VISION)
        self._require_alive(model)
        with self._lock:
            self.requests.append(request)
        if request.tools and request.tool_choice != "none":  # as a real model without a known tool format
            raise InvalidRequest(f"{model.model_id}: this model has no known tool-call format")
        prompt = self._prompt_text(request)
        source = request.messages[-1].content if request.messages else prompt
        words = source.split() or ["..."]
        max_tokens = request.params.max_tokens or 16
        prompt_words = prompt.split()
        cached = self._cached_prefix(model, prompt_words)
        self._remember(model, prompt_words)
        want_logprobs = bool(request.params.logprobs or request.params.top_logprobs)
        return self._stream(model, words, max_tokens, len(prompt_words), request.params.stop or (), cached,
                            max(1, request.n), request.params.top_logprobs or 0 if want_logprobs else None)

    def count_tokens(self, model: LoadedModel, request: GenerationRequest) -> int:
        """Words of the transcript `generate` reports as its prompt tokens."""
        self._require(model, ModelType.TEXT_GEN, ModelType.VISION)
        self._require_alive(model)
        if request.messages:
            return len("\n".join(f"{m.role}: {m.content}" for m in request.messages).split())
        return len((request.prompt or "").split())

    def _stream(self, model, words, max_tokens, prompt_tokens, stop, cached=0, n=1, top=None) -> Iterator[GenerationChunk]:
        text = [""] * n
        done = [False] * n
        try:
            for step in range(1, max_tokens + 1):
                for index in range(n):  # the choices interleave, as a batch produces them
                    if done[index]:
                        continue
                    self._require_alive(model)
                    # Choice i starts i words further on, so choices differ.
                    word = words[(step - 1 + index) % len(words)]
                    piece = ("" if step == 1 else " ") + word
                    with self._lock:
                        self.generated_tokens += 1
                    logprobs = None
                    if top is not None:
                        alternatives = tuple(TokenLogprob(w, -1.0 - k) for k, w in enumerate(words[:top]))
                        logprobs = (TokenLogprob(piece, -0.5, tuple(piece.encode()), alternatives),)
                    hit = next((s for s in stop if s in text[index] + piece), None)
                    if hit is not None:
                        before = (text[index] + piece).split(hit, 1)[0][len(text[index]):]
                        done[index] = True
                        yield GenerationChunk(before, prompt_tokens, step, "stop", cached_tokens=cached, logprobs=logprobs,
                                              index=index)
                        continue
                    text[index] += piece
                    finish = "length" if step == max_tokens else None
                    yield GenerationChunk(piece, prompt_tokens, step, finish, cached_tokens=cached, logprobs=logprobs,
                                          index=index)
                if all(done):
                    return
        except GeneratorExit:  # the consumer closed the stream: what a real runtime sees as a cancel
            with self._lock:
                self.cancelled_streams += 1
            raise

    # ------------------------------------------------------------------ audio / embeddings

    def synthesize(self, model: LoadedModel, text: str, audio: AudioDefaults) -> bytes:
        self._require(model, ModelType.AUDIO)
        self.speech_requests.append((text, audio))
        rate = audio.sample_rate or FAKE_SAMPLE_RATE
        frames = int(rate * 0.01 * max(1, len(text)) / (audio.speed or 1.0))
        samples = b"".join(
            struct.pack("<h", int(8000 * math.sin(2 * math.pi * 440 * i / rate))) for i in range(frames)
        )
        buffer = io.BytesIO()
        with wave.open(buffer, "wb") as out:
            out.setnchannels(1)
            out.setsampwidth(2)
            out.setframerate(rate)
            out.writeframes(samples)
        return buffer.getvalue()

    def transcribe(self, model: LoadedModel, audio: bytes, language: str | None) -> Transcription:
        self._require(model, ModelType.AUDIO)
        try:
            with wave.open(io.BytesIO(audio), "rb") as source:
                duration = source.getnframes() / source.getframerate()
        except (wave.Error, EOFError) as exc:
            raise InvalidRequest(f"audio is not a readable WAV file: {exc}") from exc
        text = f"{duration:.2f} seconds of audio"
        segments = ({"start": 0.0, "end": duration, "text": text},)
        return Transcription(text=text, language=language or "en", segments=segments, duration=duration)

    def embed(self, model: LoadedModel, request: EmbeddingRequest) -> EmbeddingResult:
        """Unit vectors from a hash of each input; a word (or token id) counts as a token."""
        self._require(model, ModelType.EMBEDDINGS)
        self._require_alive(model)
        dims = request.dimensions or FAKE_EMBEDDING_DIMS
        if dims > FAKE_EMBEDDING_DIMS:
            raise InvalidRequest(f"dimensions: {model.model_id} has {FAKE_EMBEDDING_DIMS} dimensions")
        vectors, tokens = [], 0
        for item in request.inputs:
            tokens += len(item.split()) if isinstance(item, str) else len(item)
            digest = hashlib.sha256(str(item).encode()).digest()
            raw = [b - 127.5 for b in digest[:dims]]
            norm = math.sqrt(sum(v * v for v in raw)) or 1.0
            vectors.append([v / norm for v in raw])
        return EmbeddingResult(vectors, tokens, FAKE_MAX_SEQUENCE_LENGTH)

    @staticmethod
    def _require_alive(model: LoadedModel) -> None:
        if not model.handle["alive"]:
            raise Unavailable(f"{model.model_id} was unloaded")

    @staticmethod
    def _require(model: LoadedModel, *types: ModelType) -> None:
        if model.model_type not in types:
            raise InvalidRequest(f"{model.model_id} is a {model.model_type.value} model")
