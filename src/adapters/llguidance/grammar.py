"""`GrammarCompiler` over llguidance (Microsoft's Rust engine behind Guidance, also used by mlx-vlm).

Why llguidance rather than xgrammar: it is already installed as a dependency of mlx-vlm, computes
each step's mask lazily in about a millisecond without a per-schema precompilation pass, takes
JSON Schema, Lark (with special tokens as `<|name|>` or `<[id]>`) and regex in one engine, and ships
an arm64 macOS wheel; xgrammar's MLX support would be a second native dependency for the same job.
"""

from __future__ import annotations

import json
import threading
import weakref
from typing import Any

from application.errors import InvalidRequest
from domain.profiles.constraints import OutputConstraint

# JSON whitespace between tokens, bounded: unbounded flexible whitespace lets a model (a random one
# certainly) pad forever and never close the object within max_tokens.
_JSON_OPTIONS = {"whitespace_pattern": r"[\x20\x0A\x09]{0,12}"}


class LlguidanceConstraint:
    def __init__(self, matcher: Any) -> None:
        self._matcher = matcher

    def allowed(self) -> bytes:
        return self._matcher.compute_bitmask()

    def consume(self, token: int) -> None:
        self._matcher.consume_token(int(token))

    @property
    def done(self) -> bool:
        return self._matcher.is_stopped()


class LlguidanceGrammarCompiler:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        # One LLTokenizer per loaded tokenizer (building it takes ~1 s for a large vocabulary).
        self._tokenizers: "weakref.WeakKeyDictionary[Any, Any]" = weakref.WeakKeyDictionary()

    def compile(self, constraint: OutputConstraint, tokenizer: Any, vocab_size: int) -> LlguidanceConstraint:
        import llguidance

        grammar = self.grammar(constraint)
        ll_tokenizer = self._ll_tokenizer(tokenizer, vocab_size)
        self._validate(constraint, grammar, ll_tokenizer)
        matcher = llguidance.LLMatcher(ll_tokenizer, grammar, log_level=0)
        if matcher.is_error():
            raise InvalidRequest(f"response_format: the {constraint.kind} constraint cannot be compiled: "
                                 f"{matcher.get_error()}")
        return LlguidanceConstraint(matcher)

    def check(self, constraint: OutputConstraint) -> None:
        # The same grammar and validation as `compile`, without a tokenizer (llguidance allows None):
        # what fails here fails for every model.
        self._validate(constraint, self.grammar(constraint), None)

    @staticmethod
    def _validate(constraint: OutputConstraint, grammar: str, ll_tokenizer: Any) -> None:
        import llguidance

        error = llguidance.LLMatcher.validate_grammar(grammar, ll_tokenizer)
        if error:
            raise InvalidRequest(f"response_format: the {constraint.kind} constraint cannot be compiled: {error}")

    @staticmethod
    def grammar(constraint: OutputConstraint) -> str:
        from llguidance import LLMatcher

        if constraint.kind == "json_object":
            return LLMatcher.grammar_from_json_schema({"type": "object"}, defaults=_JSON_OPTIONS)
        if constraint.kind == "json_schema":
            try:
                schema = json.loads(constraint.spec)
            except ValueError as exc:
                raise InvalidRequest(f"response_format: the JSON schema is not valid JSON: {exc}") from exc
            if not isinstance(schema, dict):
                raise InvalidRequest("response_format: the JSON schema must be an object")
            try:
                return LLMatcher.grammar_from_json_schema(schema, defaults=_JSON_OPTIONS)
            except ValueError as exc:
                raise InvalidRequest(f"response_format: the JSON schema cannot be used: {exc}") from exc
        if constraint.kind == "regex":
            return LLMatcher.grammar_from_regex(constraint.spec)
        return LLMatcher.grammar_from_lark(constraint.spec)

    def _ll_tokenizer(self, tokenizer: Any, vocab_size: int) -> Any:
        import llguidance.hf

        hf = getattr(tokenizer, "_tokenizer", tokenizer)  # mlx-lm's TokenizerWrapper wraps the HF one
        with self._lock:
            cached = self._tokenizers.get(hf)
            if cached is not None and cached[0] == vocab_size:
                return cached[1]
        eos = sorted(getattr(tokenizer, "eos_token_ids", None) or []) or None
        try:
            ll_tokenizer = llguidance.hf.from_tokenizer(hf, n_vocab=vocab_size, eos_token=eos)
        except ValueError as exc:  # a slow (non-Rust) tokenizer
            raise InvalidRequest(f"response_format: constrained decoding needs a fast tokenizer: {exc}") from exc
        with self._lock:
            self._tokenizers[hf] = (vocab_size, ll_tokenizer)
        return ll_tokenizer
