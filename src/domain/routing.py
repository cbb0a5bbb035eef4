"""Backend mappings: route a requested model name to a backend.

Regex patterns are vetted when saved so that a rule cannot hang the server through
catastrophic backtracking.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Iterable

from domain.enums import BackendType, PatternType
from domain.errors import InvalidPattern

MAX_PATTERN_LENGTH = 200
MAX_MODEL_NAME_LENGTH = 256
# A quantified group that itself contains a quantifier, e.g. (a+)+ or (\w*)*: the classic ReDoS shape.
_NESTED_QUANTIFIER = re.compile(r"\((?:[^()\\]|\\.)*[*+}](?:[^()\\]|\\.)*\)\s*(?:[*+]|\{\d*,?\d*\})")
_BACKREFERENCE = re.compile(r"\\[1-9]|\(\?P=")
_ALTERNATION_UNDER_QUANTIFIER = re.compile(r"\((?:[^()\\]|\\.)*\|(?:[^()\\]|\\.)*\)\s*(?:[*+]|\{\d*,?\d*\})")


def validate_pattern(pattern_type: PatternType, pattern: str) -> str:
    pattern_type = PatternType(pattern_type)
    if not isinstance(pattern, str) or not pattern:
        raise InvalidPattern("pattern must be a non-empty string")
    if len(pattern) > MAX_PATTERN_LENGTH:
        raise InvalidPattern(f"pattern longer than {MAX_PATTERN_LENGTH} characters")
    if pattern_type is PatternType.REGEX:
        if _NESTED_QUANTIFIER.search(pattern):
            raise InvalidPattern("nested quantifiers such as (a+)+ are not allowed")
        if _ALTERNATION_UNDER_QUANTIFIER.search(pattern):
            raise InvalidPattern("a quantified alternation such as (a|ab)* is not allowed")
        if _BACKREFERENCE.search(pattern):
            raise InvalidPattern("backreferences are not allowed")
        try:
            re.compile(pattern)
        except re.error as exc:
            raise InvalidPattern(f"invalid regex: {exc}") from exc
    return pattern


@dataclass(frozen=True)
class BackendMapping:
    model_pattern: str
    pattern_type: PatternType
    backend_type: BackendType
    backend_model: str | None = None
    fallback_backend: BackendType | None = None
    priority: int = 0
    enabled: bool = True
    id: int | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "pattern_type", PatternType(self.pattern_type))
        object.__setattr__(self, "backend_type", BackendType(self.backend_type))
        if self.fallback_backend is not None:
            object.__setattr__(self, "fallback_backend", BackendType(self.fallback_backend))
        validate_pattern(self.pattern_type, self.model_pattern)

    def matches(self, model: str) -> bool:
        if self.pattern_type is PatternType.EXACT:
            return model == self.model_pattern
        if self.pattern_type is PatternType.PREFIX:
            return model.startswith(self.model_pattern)
        # Bound the subject too: vetted patterns on short input cannot backtrack for long.
        if len(model) > MAX_MODEL_NAME_LENGTH:
            return False
        return re.fullmatch(self.model_pattern, model) is not None


@dataclass(frozen=True)
class RouteDecision:
    backend_type: BackendType
    backend_model: str
    fallback_backend: BackendType | None
    mapping_id: int | None


def route(model: str, mappings: Iterable[BackendMapping], default: BackendType = BackendType.LOCAL) -> RouteDecision:
    """Highest-priority enabled mapping that matches wins; otherwise the default backend."""
    ordered = sorted(
        (m for m in mappings if m.enabled), key=lambda m: -m.priority
    )
    for mapping in ordered:
        if mapping.matches(model):
            return RouteDecision(
                mapping.backend_type, mapping.backend_model or model, mapping.fallback_backend, mapping.id
            )
    return RouteDecision(default, model, None, None)
