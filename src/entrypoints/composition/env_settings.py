"""`EnvSettings`: settings classes whose fields default to environment variables, validated as pydantic does.

Why not a pydantic model: importing pydantic and building three models with ~60 fields costs every `mlxm`
command ~60 ms before it does anything (issue 19), and the usual environment (unset, or a home folder, a
database URL, a flag) needs none of it. So fields are declared pydantic-style (`Field(...)`,
`@field_validator`) on a plain class, and:

- values in their plain form (an `int` field given `8080`, a `Path` given a path, a `bool` given
  `true`/`off`/..., a `Literal`/enum given one of its values, `None` for an optional field) are converted
  here, with the field's bounds and validators;
- anything else (another spelling, an out-of-range number, a secret, a validator that refuses) goes through
  a pydantic model built from the same declarations, so the result or the `ValidationError` is exactly
  pydantic's. `tests/unit/test_env_settings.py` checks the plain path against pydantic field by field.

Explicit arguments win over the environment; list/dict fields take JSON, as pydantic-settings does.
"""

from __future__ import annotations

import enum
import json
import os
import re
import sys
import typing
from pathlib import Path
from types import NoneType, UnionType
from typing import Any, Callable, ClassVar, Literal

_MISSING: Any = object()
_INT = re.compile(r"-?(?:0|[1-9][0-9]*)")
_FLOAT = re.compile(r"-?[0-9]+(?:\.[0-9]+)?")
# pydantic's words for booleans (any case)
_BOOLS = {"0": False, "off": False, "f": False, "false": False, "n": False, "no": False,
          "1": True, "on": True, "t": True, "true": True, "y": True, "yes": True}
_BOUNDS = {"ge": lambda v, b: v >= b, "gt": lambda v, b: v > b, "le": lambda v, b: v <= b, "lt": lambda v, b: v < b,
           "min_length": lambda v, b: len(v) >= b, "max_length": lambda v, b: len(v) <= b}


class _Secret:
    """Stands for pydantic's SecretStr on the plain path: a secret is always validated by pydantic."""


class _Decline(Exception):
    """The plain path does not decide this value: pydantic does."""


_DOCUMENTATION = frozenset({"description", "title", "examples"})  # pydantic Field arguments that never change a value


class FieldInfo:
    __slots__ = ("default", "default_factory", "constraints", "plain")

    def __init__(self, default: Any, default_factory: Callable[[], Any] | None, constraints: dict[str, Any]) -> None:
        self.default, self.default_factory, self.constraints = default, default_factory, constraints
        # Any other pydantic Field argument (pattern=, strict=, ...) works, but its values go through pydantic.
        self.plain = set(constraints) <= set(_BOUNDS) | _DOCUMENTATION

    def make_default(self) -> Any:
        return self.default_factory() if self.default_factory is not None else self.default


def Field(default: Any = _MISSING, *, default_factory: Callable[[], Any] | None = None, **constraints: Any) -> Any:  # noqa: N802 - pydantic's name
    """pydantic's `Field(default, default_factory=..., **constraints)`; the plain path applies ge, gt, le, lt,
    min_length and max_length (any other argument sends the field's values to pydantic)."""
    return FieldInfo(default, default_factory, constraints)


class _Validator:
    __slots__ = ("fields", "mode", "function")

    def __init__(self, fields: tuple[str, ...], mode: str, function: Callable[[type, Any], Any]) -> None:
        self.fields, self.mode, self.function = fields, mode, function


def field_validator(*fields: str, mode: Literal["before", "after"] = "after"):
    """pydantic's `@field_validator(...)` over a `@classmethod` taking `(cls, value)`."""

    def decorate(method: classmethod) -> _Validator:
        return _Validator(fields, mode, method.__func__)

    return decorate


class EnvSettings:
    """A settings group: every field defaults to the `<env_prefix><FIELD>` environment variable (any case)."""

    env_prefix: ClassVar[str] = ""
    _fields: ClassVar[dict[str, FieldInfo]]
    _validators: ClassVar[list[_Validator]]
    _types: ClassVar[dict[str, Any] | None]
    _model: ClassVar[Any]

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls._fields, cls._validators, cls._types, cls._model = {}, [], None, None
        for base in reversed(cls.__mro__[1:]):
            if issubclass(base, EnvSettings) and base is not EnvSettings:
                cls._fields.update(base._fields)
                cls._validators.extend(base._validators)
        for name, annotation in cls.__dict__.get("__annotations__", {}).items():
            if "ClassVar" in str(annotation) or name.startswith("_"):
                continue
            value = cls.__dict__.get(name, _MISSING)
            cls._fields[name] = value if isinstance(value, FieldInfo) else FieldInfo(value, None, {})
            if name in cls.__dict__:
                delattr(cls, name)  # instances always carry the value
        for attribute, value in list(cls.__dict__.items()):
            if isinstance(value, _Validator):
                cls._validators.append(value)
                setattr(cls, attribute, classmethod(value.function))

    def __init__(self, **values: Any) -> None:
        cls = type(self)
        environ = {key.upper(): value for key, value in os.environ.items()}
        given: dict[str, Any] = {}
        for name in cls._fields:
            key = (cls.env_prefix + name).upper()
            if name in values:
                given[name] = values[name]
            elif key in environ:
                given[name] = _decode(environ[key], cls._field_types()[name])
        try:
            parsed = cls._plain_values(given)
        except _Decline:
            model = cls.pydantic_model()(**given)  # pydantic's answer, or its ValidationError
            parsed = {name: getattr(model, name) for name in cls._fields}
        for name, info in cls._fields.items():
            if name in parsed:
                setattr(self, name, parsed[name])
            elif info.default is _MISSING and info.default_factory is None:
                cls.pydantic_model()(**given)  # a required field is missing: pydantic's error
            else:
                setattr(self, name, info.make_default())  # defaults are not validated (as in pydantic)

    def model_copy(self, *, update: dict[str, Any] | None = None, deep: bool = False):
        """pydantic's `model_copy`: a copy with `update` applied as given (not validated, as in pydantic)."""
        import copy

        duplicate = copy.deepcopy(self) if deep else copy.copy(self)
        for name, value in (update or {}).items():
            setattr(duplicate, name, value)
        return duplicate

    def __repr__(self) -> str:
        shown = ", ".join(f"{name}={getattr(self, name)!r}" for name in type(self)._fields)
        return f"{type(self).__name__}({shown})"

    # -- the plain path ----------------------------------------------------------------------------
    @classmethod
    def _plain_values(cls, given: dict[str, Any]) -> dict[str, Any]:
        types = cls._field_types()
        parsed = {}
        for name, value in given.items():
            before = [v for v in cls._validators if name in v.fields and v.mode == "before"]
            after = [v for v in cls._validators if name in v.fields and v.mode == "after"]
            if len(before) > 1 or len(after) > 1 or not cls._fields[name].plain:
                raise _Decline  # several validators (pydantic's order), or constraints only pydantic applies
            try:
                for validator in before:
                    value = validator.function(cls, value)
                value = _convert(value, types[name])
                for bound, limit in cls._fields[name].constraints.items():
                    if bound in _BOUNDS and value is not None and not _BOUNDS[bound](value, limit):
                        raise _Decline
                for validator in after:
                    value = validator.function(cls, value)
            except (ValueError, TypeError, AssertionError):
                raise _Decline from None  # pydantic reports it
            parsed[name] = value
        return parsed

    @classmethod
    def _field_types(cls) -> dict[str, Any]:
        if cls._types is None:
            cls._types = _resolved_annotations(cls, {"SecretStr": _Secret})
        return cls._types

    # -- pydantic ------------------------------------------------------------------------------------
    @classmethod
    def pydantic_model(cls):
        """The pydantic model with the same fields and validators (built on first need)."""
        if cls._model is None:
            import pydantic

            types = _resolved_annotations(cls, {"SecretStr": pydantic.SecretStr})
            definitions = {}
            for name, info in cls._fields.items():
                arguments = dict(info.constraints)
                if info.default_factory is not None:
                    arguments["default_factory"] = info.default_factory
                elif info.default is not _MISSING:
                    arguments["default"] = info.default
                definitions[name] = (types[name], pydantic.Field(**arguments))
            validators = {
                f"_validator_{index}": pydantic.field_validator(*v.fields, mode=v.mode)(classmethod(v.function))
                for index, v in enumerate(cls._validators)
            }
            cls._model = pydantic.create_model(
                cls.__name__, __config__=pydantic.ConfigDict(extra="ignore"), __validators__=validators,
                __module__=cls.__module__, **definitions,
            )
        return cls._model


def _resolved_annotations(cls: type, names: dict[str, Any]) -> dict[str, Any]:
    hints: dict[str, Any] = {}
    for klass in reversed(cls.__mro__):
        module = sys.modules.get(klass.__module__)
        namespace = {**vars(module), **names} if module is not None else dict(names)
        for name, annotation in klass.__dict__.get("__annotations__", {}).items():
            if isinstance(annotation, str):
                annotation = eval(annotation, namespace)  # noqa: S307 - our own class's annotation text
            hints[name] = annotation
    return {name: hints[name] for name in cls._fields}


def _convert(value: Any, annotation: Any) -> Any:
    """`value` as a field of type `annotation`, when its form is the plain one; else _Decline."""
    origin = typing.get_origin(annotation)
    if origin in (UnionType, typing.Union):
        options = typing.get_args(annotation)
        if value is None and NoneType in options:
            return None
        others = [option for option in options if option is not NoneType]
        if len(others) != 1:
            raise _Decline
        return _convert(value, others[0])
    if origin is Literal:
        if type(value) is str and value in typing.get_args(annotation):
            return value
        raise _Decline
    if origin is list:
        (item,) = typing.get_args(annotation)
        if type(value) is list:
            return [_convert(element, item) for element in value]
        raise _Decline
    if annotation is str and type(value) is str:
        return value
    if annotation is bool:
        if type(value) is bool:
            return value
        if type(value) is str and value.lower() in _BOOLS:
            return _BOOLS[value.lower()]
    if annotation is int:
        if type(value) is int:
            return value
        if type(value) is str and _INT.fullmatch(value):
            return int(value)
    if annotation is float:
        if type(value) in (int, float):
            return float(value)
        if type(value) is str and _FLOAT.fullmatch(value):
            return float(value)
    if annotation is Path:
        if isinstance(value, Path):
            return value
        if type(value) is str:
            return Path(value)
    if isinstance(annotation, type) and issubclass(annotation, enum.Enum):
        if isinstance(value, annotation):
            return value
        if type(value) is str:
            for member in annotation:
                if member.value == value:
                    return member
    raise _Decline


def _decode(raw: str, annotation: Any) -> Any:
    """JSON for structured fields (a value that is not JSON goes to the field's own validators as text)."""
    kinds = {typing.get_origin(arg) or arg for arg in (typing.get_args(annotation) or (annotation,))}
    kinds.add(typing.get_origin(annotation) or annotation)
    if kinds & {list, dict, set, tuple, frozenset}:
        try:
            return json.loads(raw)
        except ValueError:
            return raw
    return raw
