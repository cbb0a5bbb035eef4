"""Backend mappings: route a requested model name to a backend.

Regex patterns are vetted when saved so that a rule cannot hang the server through
catastrophic backtracking.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Iterable

from domain.enums import BackendType, PatternType
from domain.errors import InvalidParameter, InvalidPattern

MAX_PATTERN_LENGTH = 200
MAX_MODEL_NAME_LENGTH = 256
# A mapping's backend_model and fallback_model are stored as VARCHAR(255): PostgreSQL refuses longer ones
# (a 500 there), SQLite keeps them; both refuse them here.
MAX_TARGET_MODEL_LENGTH = 255
# Backtracking budget: an upper bound on the ways a vetted pattern can split a name of
# MAX_MODEL_NAME_LENGTH characters. `.*-.*` (~66k) passes; three unbounded repeats do not.
MAX_BACKTRACKING_WAYS = 1 << 20
MAX_UNBOUNDED_REPEATS = 2


def _regex_parser():
    # The stdlib's own regex parser (renamed from sre_parse in 3.11); walking its tree is far
    # harder to fool than scanning the pattern text.
    try:
        from re import _constants as constants, _parser as parser
    except ImportError:  # pragma: no cover - Python < 3.11
        import sre_constants as constants  # type: ignore[no-redef]
        import sre_parse as parser  # type: ignore[no-redef]
    return parser, constants


class _RegexVetting:
    """Walks a parsed regex and rejects the shapes that backtrack catastrophically."""

    def __init__(self, constants) -> None:
        self.c = constants
        self.repeats = (constants.MAX_REPEAT, constants.MIN_REPEAT, constants.POSSESSIVE_REPEAT)
        self.unbounded = 0

    def ways(self, items) -> int:
        """Upper bound on the ways `items` (a sequence) can match; raises InvalidPattern."""
        total = 1
        for op, arg in items:
            total = min(total * self._node(op, arg), MAX_BACKTRACKING_WAYS + 1)
        return total

    def _node(self, op, arg) -> int:
        c = self.c
        if op in (c.GROUPREF, c.GROUPREF_EXISTS):
            raise InvalidPattern("backreferences are not allowed")
        if op is c.BRANCH:
            return sum(self.ways(branch) for branch in arg[1])
        if op is c.SUBPATTERN:
            return self.ways(arg[-1])
        if op in (c.ATOMIC_GROUP,):
            return self.ways(arg)
        if op in (c.ASSERT, c.ASSERT_NOT):
            return self.ways(arg[1])
        if op in self.repeats:
            return self._repeat(*arg)
        return 1  # a literal, a class, an anchor: one way

    def _repeat(self, low: int, high: int, body) -> int:
        unbounded = high == self.c.MAXREPEAT
        if high > 1 and self._has_repeat_or_branch(body):
            raise InvalidPattern(
                "a quantifier or an alternation inside a repeated group is not allowed, e.g. (a+)+ or (a|ab)*"
            )
        if unbounded:
            self.unbounded += 1
            if self.unbounded > MAX_UNBOUNDED_REPEATS:
                raise InvalidPattern(
                    f"more than {MAX_UNBOUNDED_REPEATS} unbounded quantifiers (*, +, {{n,}}) are not allowed"
                )
        inner = self.ways(body)  # also vets the body (backreferences, nested groups)
        if high <= 1:
            return inner + (1 if low == 0 else 0)
        top = MAX_MODEL_NAME_LENGTH if unbounded else min(high, MAX_MODEL_NAME_LENGTH)
        return max(top - min(low, top) + 1, 1)

    def _has_repeat_or_branch(self, items) -> bool:
        c = self.c
        for op, arg in items:
            if op in self.repeats or op is c.BRANCH:
                return True
            if op is c.SUBPATTERN and self._has_repeat_or_branch(arg[-1]):
                return True
            if op is c.ATOMIC_GROUP and self._has_repeat_or_branch(arg):
                return True
            if op in (c.ASSERT, c.ASSERT_NOT) and self._has_repeat_or_branch(arg[1]):
                return True
            if op is c.GROUPREF_EXISTS:
                return True
        return False


def _vet_regex(pattern: str) -> None:
    parser, constants = _regex_parser()
    try:
        parsed = parser.parse(pattern)
    except re.error as exc:
        raise InvalidPattern(f"invalid regex: {exc}") from exc
    if _RegexVetting(constants).ways(list(parsed)) > MAX_BACKTRACKING_WAYS:
        raise InvalidPattern("so many optional or repeated parts are not allowed (too many ways to match)")


def validate_pattern(pattern_type: PatternType, pattern: str) -> str:
    pattern_type = PatternType(pattern_type)
    if not isinstance(pattern, str) or not pattern:
        raise InvalidPattern("pattern must be a non-empty string")
    if len(pattern) > MAX_PATTERN_LENGTH:
        raise InvalidPattern(f"pattern longer than {MAX_PATTERN_LENGTH} characters")
    if pattern_type is PatternType.REGEX:
        _vet_regex(pattern)
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
    # Set only for a stored row that fails today's vetting (e.g. a legacy regex): such a mapping is shown
    # and can be fixed or deleted, but is always disabled and never matches. Writes clear it and re-vet.
    problem: str | None = field(default=None, compare=False)
    # The local model or profile the `local` fallback runs (`--fallback local:NAME`); unset: the requested name.
    fallback_model: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "pattern_type", PatternType(self.pattern_type))
        object.__setattr__(self, "backend_type", BackendType(self.backend_type))
        if self.fallback_backend is not None:
            object.__setattr__(self, "fallback_backend", BackendType(self.fallback_backend))
        if self.problem is None:
            validate_pattern(self.pattern_type, self.model_pattern)
            for name in ("backend_model", "fallback_model"):
                value = getattr(self, name)
                if value is not None and len(value) > MAX_TARGET_MODEL_LENGTH:
                    raise InvalidParameter(name, f"at most {MAX_TARGET_MODEL_LENGTH} characters")
        else:
            object.__setattr__(self, "enabled", False)

    def same_rule(self, other: "BackendMapping") -> bool:
        """Every field equal but the id: a second such mapping would add nothing but confusion."""
        return all(getattr(self, name) == getattr(other, name) for name in _RULE_FIELDS)

    def matches(self, model: str) -> bool:
        # An empty name is no model, nor is one of only whitespace (the local side strips it to empty): no
        # mapping routes it (a catch-all like `.*` stays valid for real names, which refusing such patterns at
        # creation would break).
        if self.problem is not None or not model.strip():
            return False
        if self.pattern_type is PatternType.EXACT:
            return model == self.model_pattern
        if self.pattern_type is PatternType.PREFIX:
            return model.startswith(self.model_pattern)
        # Bound the subject too: vetted patterns on short input cannot backtrack for long.
        if len(model) > MAX_MODEL_NAME_LENGTH:
            return False
        return re.fullmatch(self.model_pattern, model) is not None


_RULE_FIELDS = ("model_pattern", "pattern_type", "backend_type", "backend_model", "fallback_backend",
                "fallback_model", "priority", "enabled")


@dataclass(frozen=True)
class RouteDecision:
    backend_type: BackendType
    backend_model: str
    fallback_backend: BackendType | None
    mapping_id: int | None
    fallback_model: str | None = None


def route(model: str, mappings: Iterable[BackendMapping], default: BackendType = BackendType.LOCAL) -> RouteDecision:
    """Highest-priority enabled mapping that matches wins; otherwise the default backend."""
    ordered = sorted(
        (m for m in mappings if m.enabled), key=lambda m: -m.priority
    )
    for mapping in ordered:
        if mapping.matches(model):
            return RouteDecision(
                mapping.backend_type, mapping.backend_model or model, mapping.fallback_backend, mapping.id,
                mapping.fallback_model,
            )
    return RouteDecision(default, model, None, None)
