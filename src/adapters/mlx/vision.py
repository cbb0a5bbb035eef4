"""`MlxVisionRuntime`: vision-language models on mlx-vlm, streamed, cancellable, served fairly.

- Loads with `mlx_vlm.load` (model + processor); messages go through mlx-vlm's
  `apply_chat_template` with one `{"type": "image"}` marker per image, in the turn that sent it
  (images of earlier turns stay in their turn), and the decoded images in the same order.
- Text-only requests to a vision model use the same loaded model (no second copy via mlx-lm).
- Concurrency: continuous batching on mlx-vlm's `BatchGenerator`, one engine thread per loaded
  model (`adapters.mlx.vision_engine`); image and text-only requests share it.
- Sampling reuses the text runtime's sampler (temperature 0 = greedy argmax; a `seed` gives a
  private random key) and logits processors; stop strings are matched on the decoded text;
  structured output uses the text models' llguidance constraint; prompts that do not fit the
  context are a 400 before any work; tool calls and reasoning are split out of the text exactly as for
  text models (`adapters.mlx.chat_output`, with mlx-lm's tokenizer wrapper loaded over the same
  tokenizer files: it knows the template's tool-call format). Log probabilities are taken per request;
  n > 1 runs n rows.
- Closing the stream cancels the request at its next step.
- Prompt cache: mlx-vlm's own prefix cache (APC) per loaded model (`adapters.mlx.vision_cache`), keyed
  by the images too; bounded like the text models' cache, counted and freed by the pool the same way.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any, Iterator

from adapters.mlx.chat_output import (
    check_tools,
    template_kwargs,
    template_messages,
    wants_tool_calls,
    with_tool_constraint,
)
from adapters.mlx.common import free_buffer_cache, read_config, weights_nbytes
from adapters.mlx import generation_parts as parts
from adapters.mlx.sampling import build_sampler
from adapters.mlx.text import DEFAULT_MAX_TOKENS, fit_max_tokens
from adapters.mlx.transformers_quiet import transformers_quiet
from adapters.mlx.vision_cache import VisionPromptCache
from adapters.mlx.vision_engine import VisionEngine, VisionJob, VisionStream
from application.errors import InvalidRequest
from application.inference.ports import (
    GenerationChunk,
    GenerationRequest,
    GrammarCompiler,
    ImageInput,
    LoadedModel,
    NotSupported,
    TokenLogprob,
    Transcription,
)
from domain.enums import ModelType
from domain.profiles.params import AudioDefaults

MAX_IMAGE_PIXELS = 64 * 1024 * 1024  # a decompression bomb is a 400, not an out-of-memory


@dataclass
class VisionModelHandle:
    model: Any
    processor: Any
    engine: VisionEngine
    config: dict
    # mlx-lm's tokenizer wrapper over the same tokenizer files: it knows the chat template's tool-call
    # format (tool parser) and thinking markers, which the text models' chat protocol code reads.
    # None when mlx-lm cannot load this model's tokenizer (then tools are a 400).
    chat_tokenizer: Any = None
    token_texts: dict = field(default_factory=dict)  # id -> decoded text, for logprobs
    prompt_cache: VisionPromptCache | None = None


def load_chat_tokenizer(path: Path, processor: Any) -> Any:
    from mlx_lm.tokenizer_utils import load as load_tokenizer

    hf = getattr(processor, "tokenizer", processor)
    criteria = getattr(hf, "stopping_criteria", None)
    eos = sorted(getattr(criteria, "eos_token_ids", None) or []) or None
    try:
        with transformers_quiet():  # it reads the config through transformers again (same warnings)
            return load_tokenizer(Path(path), eos_token_ids=eos)
    except Exception:  # noqa: BLE001 - no tokenizer files mlx-lm reads: tools and reasoning splitting are off
        return None


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


def token_logprob(handle: VisionModelHandle):
    """(token, logprob, top) -> `TokenLogprob`, with the token's text and bytes as text models give them."""
    from adapters.mlx.text_stream import _byte_decoder

    tokenizer = getattr(handle.processor, "tokenizer", handle.processor)
    texts = handle.token_texts

    def text(token: int) -> str:
        if token not in texts:
            texts[token] = tokenizer.decode([token])
        return texts[token]

    def raw(token: int) -> tuple[int, ...]:
        decoded = text(token)
        if "\ufffd" in decoded:  # part of a UTF-8 sequence: the token's own bytes, from the byte-level alphabet
            piece, table = tokenizer.convert_ids_to_tokens(token), _byte_decoder()
            if isinstance(piece, str) and piece and all(ch in table for ch in piece):
                return tuple(table[ch] for ch in piece)
        return tuple(decoded.encode("utf-8", "surrogatepass"))

    def make(token: int, chosen: float, top) -> TokenLogprob:
        return TokenLogprob(text(token), chosen, raw(token), tuple(TokenLogprob(text(i), lp, raw(i)) for i, lp in top))

    return make


class MlxVisionRuntime(parts.GenerationRuntime):
    """The `ModelRuntime` port for vision models via mlx-vlm."""

    def __init__(self, *, max_batch_size: int = 8, max_prompt_tokens: int = 0,
                 grammar: GrammarCompiler | None = None, prompt_cache_entries: int = 10,
                 prompt_cache_bytes: int = 2 << 30) -> None:
        super().__init__(max_prompt_tokens=max_prompt_tokens, grammar=grammar,
                         prompt_cache_entries=prompt_cache_entries, prompt_cache_bytes=prompt_cache_bytes)
        self.max_batch_size = max_batch_size  # 1: one request at a time, in order

    def load(self, model_id: str, path: Path, model_type: ModelType) -> LoadedModel:
        path = Path(path)
        parts.check_model_folder(model_id, path)
        with self._load_lock, transformers_quiet():  # e.g. a config's special token outside the vocabulary
            try:
                from mlx_vlm import load

                model, processor = load(str(path))
            except FileNotFoundError as exc:
                raise InvalidRequest(f"{model_id}: the model folder {path} is incomplete: {exc}") from exc
            except (ValueError, ImportError, KeyError, OSError, AttributeError) as exc:
                raise NotSupported(f"{model_id}: mlx-vlm cannot load this vision model: {exc}") from exc
        cache = None
        if self.prompt_cache_on:
            cache = VisionPromptCache(self.prompt_cache_entries, self.prompt_cache_bytes)
        handle = VisionModelHandle(model, processor, VisionEngine(model, processor, self.max_batch_size, cache),
                                   read_config(path), load_chat_tokenizer(path, processor), prompt_cache=cache)
        return LoadedModel(model_id, ModelType(model_type), path, weights_nbytes(model), handle=handle)

    def unload(self, model: LoadedModel) -> None:
        handle: VisionModelHandle | None = model.handle
        if handle is not None:
            handle.engine.close()
            if handle.prompt_cache is not None:
                handle.prompt_cache.clear()
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

        images, messages = [], template_messages(request.messages)
        for message, rendered in zip(request.messages, messages):
            if message.images:
                rendered["content"] = ([{"type": "image"} for _ in message.images]
                                       + [{"type": "text", "text": message.content}])
                images.extend(decode_image(image, len(images)) for image in message.images)
        try:
            # mlx-vlm passes `enable_thinking` to templates that never read it: transformers warns per request.
            with transformers_quiet():
                prompt = apply_chat_template(handle.processor, handle.model.config, messages,
                                             num_images=len(images), **template_kwargs(request))
        except Exception as exc:  # jinja errors: an unsupported role, say
            raise InvalidRequest(f"{model.model_id}: chat template rejected the messages: {exc}") from exc
        return prompt, images

    def inputs(self, model: LoadedModel, request: GenerationRequest) -> dict:
        """The processor's tensors for the request (token ids with each image expanded into its tokens,
        pixel values, grids), made on the caller's thread as mlx-vlm's server does; the engine thread
        only runs the model."""
        from mlx_vlm.utils import prepare_inputs, should_add_special_tokens

        handle = self._handle(model)
        prompt, images = self.prompt(model, request)
        config = handle.model.config
        try:
            return prepare_inputs(handle.processor, images=images or None, prompts=prompt,
                                  image_token_index=getattr(config, "image_token_index", None),
                                  add_special_tokens=should_add_special_tokens(config.model_type, handle.processor))
        except (ValueError, TypeError) as exc:  # an image the processor cannot take (size, mode)
            raise InvalidRequest(f"{model.model_id}: the model's processor rejected the input: {exc}") from exc

    def generate(self, model: LoadedModel, request: GenerationRequest) -> Iterator[GenerationChunk]:
        handle = self._handle(model)
        params = request.params
        chat = handle.chat_tokenizer if request.messages else None
        if wants_tool_calls(request):
            if chat is None:
                raise NotSupported(f"tools: {model.model_id}: mlx-lm cannot read this vision model's tokenizer, so its "
                                   "tool-call format is unknown; send the request without `tools`")
            check_tools(model.model_id, chat, request)
        top_logprobs = parts.top_logprobs_of(params)
        n = parts.choice_count(request)
        inputs = self.inputs(model, request)
        tokens = inputs["input_ids"].reshape(-1).tolist()
        prompt_tokens = len(tokens)
        if chat is not None:  # tool_choice "required" / a named function: a grammar of the model's tool-call format
            request = with_tool_constraint(model.model_id, chat, request, tokens)
        max_tokens = fit_max_tokens(model.model_id, handle.config, request, prompt_tokens,
                                    params.max_tokens or DEFAULT_MAX_TOKENS, self.max_prompt_tokens)
        jobs = []
        for index in range(n):  # n choices: n rows of the batch (a seed gives choice i seed + i)
            processors = parts.logits_processors(params, request, lambda: self._compile(handle, request))
            jobs.append(VisionJob(inputs, max_tokens, sampler=build_sampler(params, index),
                                  logits_processors=processors, index=index, top_logprobs=top_logprobs))
        stream = VisionStream(handle.engine, jobs, tuple(params.stop or ()), token_logprob(handle))
        return parts.split_chat_output(stream, chat, request, tokens)

    def count_tokens(self, model: LoadedModel, request: GenerationRequest) -> int:
        """The prompt's tokens as the model sees them: the processor expands each image into its tokens."""
        return int(self.inputs(model, request)["input_ids"].size)

    def _compile(self, handle: "VisionModelHandle", request: GenerationRequest):
        """Structured output: the same llguidance constraint as text models, on the VLM's tokenizer."""
        hf = getattr(handle.processor, "tokenizer", handle.processor)
        # The grammar may end on any token the engine stops at (mlx-vlm's stopping criteria), not only
        # the tokenizer's own `eos_token_id`.
        criteria = getattr(hf, "stopping_criteria", None)
        eos = sorted(getattr(criteria, "eos_token_ids", None) or [hf.eos_token_id])
        tokenizer = SimpleNamespace(_tokenizer=hf, eos_token_ids=eos)
        return self._grammar_compiler().compile(request.constraint, tokenizer,
                                                parts.config_vocab_size(handle.config) or len(hf))

    @staticmethod
    def _handle(model: LoadedModel) -> VisionModelHandle:
        return parts.loaded_handle(model, VisionModelHandle, "vision")

    def synthesize(self, model: LoadedModel, text: str, audio: AudioDefaults) -> bytes:
        raise InvalidRequest(f"{model.model_id} is a vision model; speech needs an audio (TTS) model")

    def transcribe(self, model: LoadedModel, audio: bytes, language: str | None) -> Transcription:
        raise InvalidRequest(f"{model.model_id} is a vision model; transcription needs an audio (STT) model")

    def embed(self, model: LoadedModel, request) -> Any:
        raise InvalidRequest(f"{model.model_id} is a vision model; embeddings need an embeddings model")
