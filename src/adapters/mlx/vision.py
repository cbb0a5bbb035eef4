"""`MlxVisionRuntime`: vision-language models on mlx-vlm, streamed, cancellable, served fairly.

- Loads with `mlx_vlm.load` (model + processor); messages go through mlx-vlm's
  `apply_chat_template` with one `{"type": "image"}` marker per image, in the turn that sent it
  (images of earlier turns stay in their turn), and the decoded images in the same order.
- Text-only requests to a vision model use the same loaded model (no second copy via mlx-lm).
- Concurrency: one engine thread per loaded model owns every MLX call; requests wait in FIFO
  order and run one at a time (`max_active` 1). Interleaving requests token by token was tried and
  gives wrong answers: mlx-vlm models keep decode state on the model object (Qwen2-VL's M-RoPE
  deltas), which a second request's prefill overwrites. mlx-vlm's `BatchGenerator` handles that
  state, but its image path (per-request input embeddings) is not wired here yet.
- Sampling reuses the text runtime's sampler (temperature 0 = greedy argmax; a `seed` gives a
  private random key) and logits processors; stop strings are matched on the decoded text.
- Closing the stream cancels the request at its next turn.
"""

from __future__ import annotations

import io
import queue
import threading
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

from adapters.mlx.common import free_buffer_cache, read_config, weights_nbytes
from adapters.mlx.engine import EngineClosed, on_engine_thread, run_on_engine_thread
from adapters.mlx.text import DEFAULT_MAX_TOKENS, build_logits_processors, build_sampler
from application.errors import InvalidRequest, Unavailable
from application.inference.ports import (
    GenerationChunk,
    GenerationRequest,
    ImageInput,
    LoadedModel,
    NotSupported,
    Transcription,
)
from domain.enums import ModelType
from domain.profiles.params import AudioDefaults

CLOSE_ACK_SECONDS = 5.0
MAX_IMAGE_PIXELS = 64 * 1024 * 1024  # a decompression bomb is a 400, not an out-of-memory


@dataclass(eq=False)
class VisionJob:
    prompt: str
    images: list
    kwargs: dict
    events: queue.SimpleQueue = field(default_factory=queue.SimpleQueue)
    finished: threading.Event = field(default_factory=threading.Event)
    cancelled: bool = False
    steps: int = 0  # tokens computed, read by tests of cancellation
    generator: Any = None


class VisionEngine:
    """Round-robin decoding of up to `max_active` jobs on one engine thread (see module doc)."""

    def __init__(self, model: Any, processor: Any, max_active: int = 8) -> None:
        self._model = model
        self._processor = processor
        self.max_active = max(1, int(max_active))
        self._cond = threading.Condition()
        self._pending: deque[VisionJob] = deque()
        self._active: list[VisionJob] = []
        self._closed = False
        self._started = False
        self.stopped = threading.Event()
        self.max_seen_active = 0  # most jobs decoded together, read by tests

    def submit(self, job: VisionJob) -> None:
        with self._cond:
            if self._closed:
                raise EngineClosed("the model was unloaded")
            self._pending.append(job)
            if not self._started:
                self._started = True
                run_on_engine_thread(self._run)
            self._cond.notify()

    def cancel(self, job: VisionJob) -> None:
        with self._cond:
            job.cancelled = True
            self._cond.notify()

    def close(self, timeout: float = 30.0) -> None:
        with self._cond:
            self._closed = True
            started = self._started
            self._cond.notify()
        if started and not on_engine_thread():
            self.stopped.wait(timeout)

    def _run(self) -> None:
        try:
            while True:
                with self._cond:
                    while not self._closed and not self._pending and not self._active:
                        self._cond.wait()
                    if self._closed:
                        break
                    while self._pending and len(self._active) < self.max_active:
                        self._active.append(self._pending.popleft())
                    jobs = list(self._active)
                    self.max_seen_active = max(self.max_seen_active, len(jobs))
                for job in jobs:
                    self._step(job)
        finally:
            with self._cond:
                leftovers = list(self._active) + list(self._pending)
                self._active.clear()
                self._pending.clear()
            for job in leftovers:
                self._finish(job, EngineClosed("the model was unloaded"))
            self.stopped.set()

    def _step(self, job: VisionJob) -> None:
        if job.cancelled:
            self._finish(job, None)
            return
        try:
            if job.generator is None:
                from mlx_vlm import stream_generate

                job.generator = stream_generate(self._model, self._processor, job.prompt,
                                                image=job.images or None, **job.kwargs)
            result = next(job.generator)
        except StopIteration:
            self._finish(job, None)
            return
        except Exception as exc:  # noqa: BLE001 - reported to this job only; the others go on
            self._finish(job, exc)
            return
        job.steps += 1
        job.events.put(result)
        if result.finish_reason is not None:
            self._finish(job, None)

    def _finish(self, job: VisionJob, error: BaseException | None) -> None:
        with self._cond:
            if job in self._active:
                self._active.remove(job)
        if job.generator is not None:
            try:
                job.generator.close()
            except Exception:  # noqa: BLE001 - closing a half-run generator
                pass
            job.generator = None
        if not job.finished.is_set():
            job.events.put(error if error is not None else StopIteration())
            job.finished.set()


@dataclass
class VisionModelHandle:
    model: Any
    processor: Any
    engine: VisionEngine
    config: dict


def decode_image(image: ImageInput, index: int):
    """Encoded bytes -> an RGB PIL image; anything undecodable is the client's mistake (400)."""
    from PIL import Image

    if not image.data:
        raise InvalidRequest(f"image {index}: no image data (remote URLs must be fetched first)")
    Image.MAX_IMAGE_PIXELS = MAX_IMAGE_PIXELS
    try:
        with Image.open(io.BytesIO(image.data)) as opened:
            opened.load()
            return opened.convert("RGB")
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise InvalidRequest(f"image {index}: too many pixels ({exc})") from exc
    except Exception as exc:  # noqa: BLE001 - PIL raises many types for bad input
        raise InvalidRequest(f"image {index}: not a readable image ({exc.__class__.__name__})") from exc


class MlxVisionRuntime:
    """The `ModelRuntime` port for vision models via mlx-vlm."""

    def __init__(self, *, max_active: int = 1) -> None:
        self.max_active = max_active  # >1 interleaves requests: only for models without per-model decode state
        self._load_lock = threading.Lock()

    def load(self, model_id: str, path: Path, model_type: ModelType) -> LoadedModel:
        path = Path(path)
        if not (path / "config.json").is_file():
            raise InvalidRequest(f"{model_id}: {path} has no config.json; is the model fully installed?")
        with self._load_lock:
            try:
                from mlx_vlm import load

                model, processor = load(str(path))
            except FileNotFoundError as exc:
                raise InvalidRequest(f"{model_id}: the model folder {path} is incomplete: {exc}") from exc
            except (ValueError, ImportError, KeyError, OSError, AttributeError) as exc:
                raise NotSupported(f"{model_id}: mlx-vlm cannot load this vision model: {exc}") from exc
        handle = VisionModelHandle(model, processor, VisionEngine(model, processor, self.max_active), read_config(path))
        return LoadedModel(model_id, ModelType(model_type), path, weights_nbytes(model), handle=handle)

    def unload(self, model: LoadedModel) -> None:
        handle: VisionModelHandle | None = model.handle
        if handle is not None:
            handle.engine.close()
        model.handle = None
        del handle
        free_buffer_cache()

    def prompt(self, model: LoadedModel, request: GenerationRequest) -> tuple[str, list]:
        """The templated prompt and the decoded images, in prompt order."""
        handle = self._handle(model)
        if not request.messages:
            if request.prompt is None:
                raise InvalidRequest("a generation request needs messages or a prompt")
            return request.prompt, []
        from mlx_vlm.prompt_utils import apply_chat_template

        images, messages = [], []
        for message in request.messages:
            if message.images:
                content: Any = [{"type": "image"} for _ in message.images] + [{"type": "text", "text": message.content}]
                images.extend(decode_image(image, len(images)) for image in message.images)
            else:
                content = message.content
            messages.append({"role": message.role, "content": content})
        try:
            extra = {} if request.enable_thinking is None else {"enable_thinking": request.enable_thinking}
            prompt = apply_chat_template(handle.processor, handle.model.config, messages, num_images=len(images), **extra)
        except Exception as exc:  # jinja errors: an unsupported role, say
            raise InvalidRequest(f"{model.model_id}: chat template rejected the messages: {exc}") from exc
        return prompt, images

    def generate(self, model: LoadedModel, request: GenerationRequest) -> Iterator[GenerationChunk]:
        handle = self._handle(model)
        if request.tools:  # mlx-vlm has no tool-call parsing wired here: a 400, never silently ignored
            raise NotSupported(f"tools: {model.model_id} is a vision model; tool calling is served for text models only")
        prompt, images = self.prompt(model, request)
        params = request.params
        import mlx.core as mx

        sampler = build_sampler(params) or (lambda logprobs: mx.argmax(logprobs, axis=-1))
        kwargs = {"max_tokens": params.max_tokens or DEFAULT_MAX_TOKENS, "sampler": sampler,
                  "logits_processors": build_logits_processors(params) or None}
        return VisionStream(handle.engine, VisionJob(prompt, images, kwargs), tuple(params.stop or ()))

    def count_tokens(self, model: LoadedModel, request: GenerationRequest) -> int:
        """The prompt's tokens as the model sees them: the processor expands each image into its tokens."""
        handle = self._handle(model)
        prompt, images = self.prompt(model, request)
        if images:
            inputs = handle.processor(text=[prompt], images=images)
            return int(inputs["input_ids"].shape[-1])
        tokenizer = getattr(handle.processor, "tokenizer", handle.processor)
        return len(tokenizer.encode(prompt, add_special_tokens=False))

    @staticmethod
    def _handle(model: LoadedModel) -> VisionModelHandle:
        if model.handle is None:
            raise Unavailable(f"{model.model_id} was unloaded")
        if not isinstance(model.handle, VisionModelHandle):
            raise InvalidRequest(f"{model.model_id} is not loaded as a vision model")
        return model.handle

    def synthesize(self, model: LoadedModel, text: str, audio: AudioDefaults) -> bytes:
        raise InvalidRequest(f"{model.model_id} is a vision model; speech needs an audio (TTS) model")

    def transcribe(self, model: LoadedModel, audio: bytes, language: str | None) -> Transcription:
        raise InvalidRequest(f"{model.model_id} is a vision model; transcription needs an audio (STT) model")

    def embed(self, model: LoadedModel, request) -> Any:
        raise InvalidRequest(f"{model.model_id} is a vision model; embeddings need an embeddings model")


class VisionStream:
    """Iterator of `GenerationChunk`s for one job; submitted on first `next()`, `close()` cancels."""

    def __init__(self, engine: VisionEngine, job: VisionJob, stop: tuple[str, ...]) -> None:
        self._engine = engine
        self.job = job
        self._stop = stop
        self._holdback = max((len(s) for s in stop), default=1) - 1
        self._pending = ""
        self._submitted = False
        self._done = False

    def __iter__(self) -> "VisionStream":
        return self

    def __next__(self) -> GenerationChunk:
        if self._done:
            raise StopIteration
        if not self._submitted:
            self._engine.submit(self.job)
            self._submitted = True
        event = self.job.events.get()
        if isinstance(event, StopIteration):
            self._done = True
            if self._pending:
                text, self._pending = self._pending, ""
                return GenerationChunk(text, 0, 0, "stop")
            raise StopIteration
        if isinstance(event, BaseException):
            self._done = True
            raise event
        finish = event.finish_reason
        # mlx-vlm counts the EOS token that ended generation; it is not part of the answer.
        completion = event.generation_tokens - (1 if finish == "stop" else 0)
        self._pending += event.text
        if self._stop:
            hits = [i for i in (self._pending.find(s) for s in self._stop) if i >= 0]
            if hits:
                text, self._pending = self._pending[: min(hits)], ""
                self.close()
                return GenerationChunk(text, event.prompt_tokens, completion, "stop")
        if finish is not None:
            text, self._pending = self._pending, ""
            self._done = True
            return GenerationChunk(text, event.prompt_tokens, completion, finish)
        cut = max(len(self._pending) - self._holdback, 0)
        text, self._pending = self._pending[:cut], self._pending[cut:]
        return GenerationChunk(text, event.prompt_tokens, completion, None)

    def close(self) -> None:
        self._done = True
        if self._submitted:
            self._engine.cancel(self.job)
            if not on_engine_thread():
                self.job.finished.wait(timeout=CLOSE_ACK_SECONDS)

    def __del__(self) -> None:
        try:
            self._done = True
            if self._submitted:
                self._engine.cancel(self.job)
        except Exception:  # noqa: BLE001 - interpreter shutdown
            pass
