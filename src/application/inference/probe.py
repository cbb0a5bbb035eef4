"""Capability probe: what a model can do, written as the capability subclass of its type.

The probe gathers facts from the model folder (config.json, tokenizer and chat template,
through the `ModelInspector` port) and, for text models, runs a short greedy generation
through the pool and the runtime. Pure functions below turn facts into capabilities, so the
rules are testable without a model.

- text: family, context length, tool-call support and format, thinking tags
- vision: the same from the text side, video from the config, multi-image from a real
  two-image generation
- audio: TTS or STT from the config, confirmed by a real synthesis / transcription
- embeddings: dimensions, max sequence length, normalisation from a real embedding

The result carries `probed_at` and `probe_version` and is stored with the model.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from application.errors import InvalidRequest
from application.inference.pool import ModelPool
from application.inference.probe_runs import ProbeRuns
from application.ports import Clock
from application.inference.ports import ModelFacts, ModelInspector
from application.ports import UnitOfWork
from application.inference.ports import ChatMessage, GenerationRequest, ModelRuntime
from domain.library.capabilities import (
    AudioCapabilities,
    EmbeddingCapabilities,
    ModelCapabilities,
    TextGenCapabilities,
    VisionCapabilities,
)
from domain.enums import ModelType
from domain.profiles.params import InferenceParams

PROBE_VERSION = 1
PROBE_PROMPT = "Say hello."
PROBE_MAX_TOKENS = 8

# (marker in the chat template or vocabulary, tool format / parser id), most specific first.
TOOL_FORMATS: tuple[tuple[str, str], ...] = (
    ("<minimax:tool_call>", "minimax_m2"),
    ("<|tool_call>", "gemma4"),
    ("<start_function_call>", "function_gemma"),
    ("<longcat_tool_call>", "longcat"),
    ("[TOOL_CALLS]", "mistral"),
    ("<|python_tag|>", "llama3"),
    ("<tool_call>", "hermes"),  # Qwen, SmolLM3, Hermes: JSON inside <tool_call> tags
    ("<|tool_calls_section_begin|>", "kimi_k2"),
    ("<function_call>", "function_call"),
)
THINKING_TAGS: tuple[tuple[str, str], ...] = (
    ("<think>", "think_tags"),
    ("<longcat_think>", "longcat_think"),
    ("<|think:start|>", "think_start_end"),
    ("<|open|>think<|sep|>", "xtml_think"),
    ("<|channel>thought", "gemma4_channel"),
    ("<seed:think>", "seed_think"),
)
CONTEXT_KEYS = ("max_position_embeddings", "max_sequence_length", "seq_length", "n_positions", "max_seq_len", "n_ctx")


def context_length(config: dict) -> int | None:
    for source in (config, config.get("text_config") or {}):
        for key in CONTEXT_KEYS:
            value = source.get(key)
            if isinstance(value, int) and value > 0:
                return value
    return None


def family(config: dict) -> str | None:
    model_type = config.get("model_type") or (config.get("text_config") or {}).get("model_type")
    return str(model_type).lower() if model_type else None


def tool_support(facts: ModelFacts) -> tuple[bool, str | None]:
    """(supports native tools, tool format): the tokenizer's own parser (mlx-lm's inference, which the
    runtime parses with) when it found one; else guessed from the chat template and the vocabulary."""
    if facts.tool_parser_id:
        return True, facts.tool_parser_id
    template = facts.chat_template or ""
    haystack = template + "\n" + "\n".join(facts.special_tokens)
    for marker, name in TOOL_FORMATS:
        if marker in haystack:
            return True, name
    # A template that renders a `tools` argument supports tools even without a known marker.
    if "tools" in template and ("{%" in template or "{{" in template):
        return True, "json"
    return False, None


def thinking_support(facts: ModelFacts, sample_output: str | None = None) -> tuple[bool, str | None]:
    if facts.thinking_markers:  # the tokenizer's markers, which the runtime splits reasoning with
        start = facts.thinking_markers[0]
        return True, next((parser for tag, parser in THINKING_TAGS if tag == start), start)
    haystack = "\n".join([facts.chat_template or "", *facts.special_tokens, sample_output or ""])
    for tag, parser in THINKING_TAGS:
        if tag in haystack:
            return True, parser
    if "enable_thinking" in (facts.chat_template or ""):
        return True, "think_tags"
    return False, None


def text_capabilities(facts: ModelFacts, sample_output: str | None) -> TextGenCapabilities:
    tools, tool_format = tool_support(facts)
    thinking, thinking_parser = thinking_support(facts, sample_output)
    return TextGenCapabilities(
        model_family=family(facts.config),
        supports_native_tools=tools,
        tool_format=tool_format,
        tool_parser_id=tool_format,
        supports_thinking=thinking,
        thinking_parser_id=thinking_parser,
        practical_max_tokens=context_length(facts.config),
    )


def vision_capabilities(facts: ModelFacts) -> VisionCapabilities:
    config = facts.config
    tools, tool_format = tool_support(facts)
    thinking, thinking_parser = thinking_support(facts)
    has_video = any(key in config for key in ("video_token_id", "video_token_index")) or "video" in (
        facts.chat_template or ""
    )
    multi_image = has_video or "image_token_index" in config or "image_token_id" in config or "mm_tokens_per_image" in config
    return VisionCapabilities(
        model_family=family(config),
        supports_native_tools=tools,
        tool_parser_id=tool_format,
        supports_thinking=thinking,
        thinking_parser_id=thinking_parser,
        supports_multi_image=bool(multi_image),
        supports_video=bool(has_video),
    )


def audio_capabilities(facts: ModelFacts) -> AudioCapabilities:
    kind = facts.audio_kind
    return AudioCapabilities(model_family=family(facts.config), supports_tts=kind == "tts", supports_stt=kind == "stt")


def embedding_capabilities(facts: ModelFacts) -> EmbeddingCapabilities:
    config = facts.config
    dims = config.get("hidden_size") or config.get("dim") or config.get("d_model")
    return EmbeddingCapabilities(
        model_family=family(config),
        embedding_dimensions=dims if isinstance(dims, int) else None,
        max_sequence_length=context_length(config),
        is_normalized=facts.normalizes_embeddings,
    )


@dataclass
class ProbeResult:
    model_id: str
    capabilities: ModelCapabilities
    sample_output: str | None = None
    warnings: list[str] = field(default_factory=list)


class ProbeService:
    """Probe one installed model and store its capabilities (`mlxm probe NAME`, `/api/models/{id}/probe`)."""

    def __init__(
        self,
        uow_factory: Callable[[], UnitOfWork],
        inspector: ModelInspector,
        pool: ModelPool,
        runtime: ModelRuntime,
        clock: Clock,
        resolve: Callable[[str], object] | None = None,
    ) -> None:
        self._uow_factory = uow_factory
        self._inspector = inspector
        self._pool = pool
        self._runtime = runtime
        self._clock = clock
        # Name resolution shared with inference (profile, alias, repo id); defaults to model lookup.
        self._resolve = resolve

    def probe(self, name: str, *, generate: bool = True) -> ProbeResult:
        model = self._find(name)
        if not model.is_installed:
            raise InvalidRequest(f"{name!r} is not installed; nothing to probe")
        model_type = ModelType(model.model_type) if model.model_type else ModelType.TEXT_GEN
        path = Path(model.local_path)
        facts = self._inspector.inspect(path, model_type)
        warnings: list[str] = []
        if not facts.config:
            warnings.append("config.json is missing or unreadable")
        sample = None
        if model_type is ModelType.TEXT_GEN:
            if generate:
                sample, error = self._sample(model.model_id, path, model_type)
                if error:
                    warnings.append(f"test generation failed: {error}")
            if not facts.chat_template:
                warnings.append("no chat template: chat requests fall back to a plain transcript")
            capabilities: ModelCapabilities = text_capabilities(facts, sample)
        elif model_type is ModelType.VISION:
            capabilities = vision_capabilities(facts)
            if generate:  # the real model decides multi-image (two images in one request)
                multi, error = ProbeRuns(self._pool, self._runtime).vision_multi_image(model.model_id, path)
                if multi is not None:
                    capabilities.supports_multi_image = multi
                if error:
                    warnings.append(f"two-image test generation failed: {error}")
        elif model_type is ModelType.AUDIO:
            capabilities = audio_capabilities(facts)
            if facts.audio_kind is None:
                warnings.append("could not tell TTS from STT")
            elif generate:  # the direction the files suggest must really run
                tts, stt, error = ProbeRuns(self._pool, self._runtime).audio(model.model_id, path, facts.audio_kind)
                capabilities.supports_tts, capabilities.supports_stt = tts, stt
                if error:
                    warnings.append(f"test {facts.audio_kind} failed: {error}")
        else:
            capabilities = embedding_capabilities(facts)
            if generate:  # dimensions, unit length and the enforced max length from a real embedding
                run = ProbeRuns(self._pool, self._runtime).embedding(model.model_id, path)
                if run.error:
                    warnings.append(f"test embedding failed: {run.error}")
                else:
                    capabilities.embedding_dimensions = run.dimensions
                    capabilities.is_normalized = run.normalized
                    capabilities.max_sequence_length = run.max_sequence_length or capabilities.max_sequence_length
        capabilities.probed_at = self._clock.now()
        capabilities.probe_version = PROBE_VERSION
        with self._uow_factory() as uow:
            stored = uow.models.get(model.model_id)
            if stored is None:
                raise InvalidRequest(f"{name!r} disappeared while probing")
            stored.capabilities = capabilities
            from application.library.overlay_writes import inferred_value, record_inferred_in

            if not inferred_value(uow, stored, "family") and capabilities.model_family:
                # Beneath a family the user set (mlxm edit --family), which stays in effect.
                record_inferred_in(uow, stored, family=capabilities.model_family)
            uow.models.add(stored)
            uow.commit()
        return ProbeResult(model.model_id, capabilities, sample, warnings)

    def _find(self, name: str):
        if self._resolve is not None:
            target = self._resolve(name)
            return getattr(target, "model", target)
        from application.errors import NotFound

        with self._uow_factory() as uow:
            model = uow.models.find(name)
        if model is None:
            raise NotFound(f"unknown model {name!r}")
        return model

    def _sample(self, model_id: str, path: Path, model_type: ModelType) -> tuple[str | None, str | None]:
        """A short greedy chat generation: proves the model runs, and shows thinking tags."""
        request = GenerationRequest(
            params=InferenceParams(temperature=0.0, max_tokens=PROBE_MAX_TOKENS),
            messages=(ChatMessage("user", PROBE_PROMPT),),
        )
        try:
            with self._pool.acquire(model_id, path, model_type) as lease:
                chunks = self._runtime.generate(lease.model, request)
                try:
                    text = "".join(chunk.text for chunk in chunks)
                finally:
                    close = getattr(chunks, "close", None)
                    if close is not None:
                        close()
            return text, None
        except Exception as exc:  # noqa: BLE001 - a failed test generation is a probe finding
            return None, f"{type(exc).__name__}: {exc}"
