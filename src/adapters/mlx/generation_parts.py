"""What the text (mlx-lm) and vision (mlx-vlm) runtimes do alike: the settings they share
(`GenerationRuntime`), the folder check before loading, the handle check, the choice count, the per-choice
logits processors, the grammar compiler and the split of tool calls and reasoning out of the text.

What differs stays in each runtime: loading (each library fails with its own exception types), unloading
(the text engine drops its own prompt cache, the vision cache is cleared apart), the prompt (token ids
against a processor's tensors) and the grammar's tokenizer and end tokens.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

from adapters.mlx.chat_output import ChatOutputSplitter, ChatOutputStream, initial_state, needs_splitting
from adapters.mlx.chat_output import wants_tool_calls
from adapters.mlx.handle_cache import HandlePromptCache
from adapters.mlx.sampling import ConstraintProcessor, build_logits_processors
from application.errors import InvalidRequest, Unavailable
from application.inference.ports import GenerationChunk, GenerationRequest, GrammarCompiler, LoadedModel
from domain.profiles.params import InferenceParams

MAX_CHOICES = 16


class GenerationRuntime(HandlePromptCache):
    """The settings the text and vision runtimes both take, and their prompt-cache methods."""

    def __init__(self, *, max_prompt_tokens: int, grammar: GrammarCompiler | None, prompt_cache_entries: int,
                 prompt_cache_bytes: int) -> None:
        self.prompt_cache_entries = prompt_cache_entries  # either 0: no prompt cache
        self.prompt_cache_bytes = prompt_cache_bytes
        self.max_prompt_tokens = max_prompt_tokens  # 0: no limit beyond the context window
        self._grammar = grammar
        self._load_lock = threading.Lock()

    @property
    def prompt_cache_on(self) -> bool:
        return self.prompt_cache_entries > 0 and self.prompt_cache_bytes > 0

    def _grammar_compiler(self) -> GrammarCompiler:
        """The runtime's compiler, or llguidance's, imported only when structured output is first asked for."""
        if self._grammar is None:
            from adapters.llguidance.grammar import LlguidanceGrammarCompiler

            self._grammar = LlguidanceGrammarCompiler()
        return self._grammar


def check_model_folder(model_id: str, path: Path) -> None:
    if not (path / "config.json").is_file():
        raise InvalidRequest(f"{model_id}: {path} has no config.json; is the model fully installed?")


def loaded_handle(model: LoadedModel, handle_type: type, kind: str) -> Any:
    if model.handle is None:  # unloaded under the caller: not the client's mistake
        raise Unavailable(f"{model.model_id} was unloaded")
    if not isinstance(model.handle, handle_type):
        raise InvalidRequest(f"{model.model_id} is not loaded as a {kind} model")
    return model.handle


def choice_count(request: GenerationRequest) -> int:
    n = int(request.n or 1)
    if not 1 <= n <= MAX_CHOICES:
        raise InvalidRequest(f"n: must be between 1 and {MAX_CHOICES}, got {n}")
    return n


def top_logprobs_of(params: InferenceParams) -> int | None:
    """None: no logprobs; else how many alternatives per token (0: the chosen token's only)."""
    return (params.top_logprobs or 0) if (params.logprobs or params.top_logprobs) else None


def logits_processors(params: InferenceParams, request: GenerationRequest, compile: Callable[[], Any]) -> list:
    """One choice's processors: each choice gets its own (a constraint keeps per-sequence state)."""
    processors = build_logits_processors(params)
    if request.constraint is not None:
        processors.append(ConstraintProcessor(compile()))
    return processors


def config_vocab_size(config: dict) -> int:
    """The vocabulary size a config.json gives (a VLM's text_config included), or 0."""
    return int(config.get("vocab_size") or (config.get("text_config") or {}).get("vocab_size") or 0)


def split_chat_output(stream: Iterator[GenerationChunk], tokenizer: Any, request: GenerationRequest,
                      prompt: Sequence[int]) -> Iterator[GenerationChunk]:
    """`stream` with tool calls and reasoning split out of the text, when the request and the model's
    chat format need it; `tokenizer` is mlx-lm's wrapper (None: no splitting)."""
    if tokenizer is None or not request.messages or not needs_splitting(tokenizer, request):
        return stream

    def splitter() -> ChatOutputSplitter:  # one per choice: each has its own markers' state
        return ChatOutputSplitter(tokenizer, request.tools, wants_tool_calls(request), initial_state(tokenizer, prompt))

    return ChatOutputStream(stream, splitter(), make_splitter=splitter)
