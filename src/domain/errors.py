"""Domain errors. Entrypoints map them to HTTP status codes and exit codes in one place."""

from __future__ import annotations


class DomainError(Exception):
    """Base class of every rule the domain enforces."""


class InvalidCatalog(DomainError):
    """The catalog breaks an invariant; `offending` names the IDs involved."""

    def __init__(self, message: str, offending: list[str] | tuple[str, ...] = ()) -> None:
        self.offending = tuple(offending)
        super().__init__(f"{message}: {', '.join(self.offending)}" if self.offending else message)


class InvalidCanonicalId(DomainError):
    def __init__(self, value: str) -> None:
        self.value = value
        super().__init__(
            f"invalid canonical id {value!r}: expected lower-case, versioned like 'qwen3-4b-instruct-4bit-v1'"
        )


class UnknownModel(DomainError):
    """A name that is neither a canonical ID, an alias nor a known repo id."""

    def __init__(self, name: str, suggestions: list[str] | tuple[str, ...] = ()) -> None:
        self.name = name
        self.suggestions = tuple(suggestions)
        hint = f"; did you mean: {', '.join(self.suggestions)}?" if self.suggestions else ""
        super().__init__(f"unknown model {name!r}{hint}")


class InvalidParameter(DomainError):
    """A value object field is out of range or of the wrong kind."""

    def __init__(self, field: str, message: str) -> None:
        self.field = field
        super().__init__(f"{field}: {message}")


class ProfileTypeMismatch(DomainError):
    """Defaults that do not fit the profile's model type (e.g. a voice on a text model)."""

    def __init__(self, field: str, message: str) -> None:
        self.field = field
        super().__init__(f"{field}: {message}")


class IllegalTransition(DomainError):
    def __init__(self, current: object, target: object) -> None:
        self.current = current
        self.target = target
        super().__init__(f"illegal download transition {current} -> {target}")


class InvalidPattern(DomainError):
    """A backend-mapping pattern that is unsafe or malformed."""


class NoSourceAvailable(DomainError):
    """Every source of a model failed or was skipped; `failures` lists (source, reason)."""

    def __init__(self, model_id: str, failures: list[tuple[str, str]]) -> None:
        self.model_id = model_id
        self.failures = list(failures)
        detail = "; ".join(f"{src}: {reason}" for src, reason in self.failures) or "no enabled source"
        super().__init__(f"could not fetch {model_id}: {detail}")
