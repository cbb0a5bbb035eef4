"""Inference value objects and the resolution cascade: request > profile > system.

`None` means "unset". `0`, `False` and `""` are values: a request's temperature 0 wins
over a profile's 0.7 (peers that write `temperature or 1.0` get this wrong).
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from typing import Any, Mapping, TypeVar

from domain.errors import InvalidParameter
from domain.profiles.constraints import OutputConstraint

T = TypeVar("T")


def _check_range(name: str, value: Any, low: float, high: float, *, integer: bool = False) -> None:
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise InvalidParameter(name, f"must be a number, got {type(value).__name__}")
    if integer and not isinstance(value, int):
        raise InvalidParameter(name, "must be an integer")
    if not (low <= value <= high):
        raise InvalidParameter(name, f"must be between {low:g} and {high:g}, got {value!r}")


def _check_type(name: str, value: Any, kind: type | tuple[type, ...]) -> None:
    if value is not None and (not isinstance(value, kind) or (kind is not bool and isinstance(value, bool))):
        expected = kind.__name__ if isinstance(kind, type) else "/".join(k.__name__ for k in kind)
        raise InvalidParameter(name, f"must be {expected}, got {type(value).__name__}")


@dataclass(frozen=True)
class InferenceParams:
    temperature: float | None = None
    max_tokens: int | None = None
    top_p: float | None = None
    top_k: int | None = None
    min_p: float | None = None
    repetition_penalty: float | None = None
    seed: int | None = None
    stop: tuple[str, ...] | None = None
    presence_penalty: float | None = None
    frequency_penalty: float | None = None
    logprobs: bool | None = None
    top_logprobs: int | None = None  # alternatives per token (OpenAI allows 0-20); implies logprobs

    def __post_init__(self) -> None:
        _check_range("temperature", self.temperature, 0.0, 2.0)
        _check_range("max_tokens", self.max_tokens, 1, 128_000, integer=True)
        _check_range("top_p", self.top_p, 0.0, 1.0)
        _check_range("top_k", self.top_k, 0, 100_000, integer=True)
        _check_range("min_p", self.min_p, 0.0, 1.0)
        _check_range("repetition_penalty", self.repetition_penalty, 0.0, 10.0)
        _check_range("seed", self.seed, 0, 2**63 - 1, integer=True)
        _check_range("presence_penalty", self.presence_penalty, -2.0, 2.0)
        _check_range("frequency_penalty", self.frequency_penalty, -2.0, 2.0)
        _check_type("logprobs", self.logprobs, bool)
        _check_range("top_logprobs", self.top_logprobs, 0, 20, integer=True)
        if self.stop is not None:
            stop = (self.stop,) if isinstance(self.stop, str) else tuple(self.stop)
            if len(stop) > 16 or not all(isinstance(s, str) and s for s in stop):
                raise InvalidParameter("stop", "must be up to 16 non-empty strings")
            object.__setattr__(self, "stop", stop)


@dataclass(frozen=True)
class InferenceContext:
    context_length: int | None = None
    system_prompt: str | None = None
    enable_tool_injection: bool | None = None
    enable_thinking: bool | None = None  # the chat template's `enable_thinking` (None: the model's default)
    # Structured output for every request of the profile that brings none (OpenAI's response_format shape
    # is accepted here and kept as an OutputConstraint).
    response_format: OutputConstraint | None = None

    def __post_init__(self) -> None:
        _check_range("context_length", self.context_length, 1, 10_000_000, integer=True)
        _check_type("system_prompt", self.system_prompt, str)
        _check_type("enable_tool_injection", self.enable_tool_injection, bool)
        _check_type("enable_thinking", self.enable_thinking, bool)
        if isinstance(self.response_format, dict) and "kind" in self.response_format:  # stored form
            object.__setattr__(self, "response_format", OutputConstraint(**self.response_format))
        else:
            object.__setattr__(self, "response_format", OutputConstraint.from_response_format(self.response_format))


@dataclass(frozen=True)
class AudioDefaults:
    voice: str | None = None
    speed: float | None = None
    sample_rate: int | None = None
    stt_language: str | None = None

    def __post_init__(self) -> None:
        _check_type("voice", self.voice, str)
        _check_range("speed", self.speed, 0.25, 4.0)
        _check_range("sample_rate", self.sample_rate, 8_000, 192_000, integer=True)
        _check_type("stt_language", self.stt_language, str)


def is_empty(value: object) -> bool:
    """True when no field of a value object is set."""
    return all(getattr(value, f.name) is None for f in fields(value))  # type: ignore[arg-type]


def set_fields(value: object) -> list[str]:
    return [f.name for f in fields(value) if getattr(value, f.name) is not None]  # type: ignore[arg-type]


def cascade(*layers: T | None) -> T:
    """Merge value objects field by field; the first layer with a non-None value wins.

    Call as `cascade(request, profile, system)`. Only `None` counts as unset.
    """
    present = [layer for layer in layers if layer is not None]
    if not present:
        raise ValueError("cascade needs at least one layer")
    result = present[-1]
    values = {}
    for f in fields(result):  # type: ignore[arg-type]
        for layer in present:
            value = getattr(layer, f.name)
            if value is not None:
                values[f.name] = value
                break
    return replace(result, **values)  # type: ignore[type-var]


def params_from_mapping(cls: type[T], data: Mapping[str, Any] | None) -> T:
    """Build a value object from a mapping, ignoring keys it does not have."""
    if not data:
        return cls()
    names = {f.name for f in fields(cls)}  # type: ignore[arg-type]
    return cls(**{k: v for k, v in data.items() if k in names})


SYSTEM_INFERENCE_DEFAULTS = InferenceParams(temperature=0.7, max_tokens=4096, top_p=1.0)
