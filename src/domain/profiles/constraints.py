"""Constrained decoding: what a request's output must match (a structured-output contract).

`kind` says how `spec` is read:
- `json_object`: any JSON object (`spec` is ignored, usually "").
- `json_schema`: `spec` is a JSON Schema document (as text).
- `lark`: `spec` is a Lark grammar in llguidance's dialect (special tokens as `<|name|>`).
- `regex`: `spec` is a regular expression the whole output must match.

Compiling it for a model's tokenizer is an adapter's job (`GrammarCompiler` port); a spec the
engine cannot compile is the client's mistake (400), named in the error.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from domain.errors import InvalidParameter

CONSTRAINT_KINDS = ("json_object", "json_schema", "lark", "regex")


@dataclass(frozen=True)
class OutputConstraint:
    kind: str
    spec: str = ""

    def __post_init__(self) -> None:
        if self.kind not in CONSTRAINT_KINDS:
            raise InvalidParameter("response_format", f"unknown constraint kind {self.kind!r}; one of {', '.join(CONSTRAINT_KINDS)}")
        if not isinstance(self.spec, str):
            raise InvalidParameter("response_format", "the constraint's spec must be text")
        if self.kind != "json_object" and not self.spec.strip():
            raise InvalidParameter("response_format", f"a {self.kind} constraint needs a non-empty spec")

    @classmethod
    def from_response_format(cls, value: Any, field: str = "response_format") -> "OutputConstraint | None":
        """OpenAI's `response_format` ({"type": "text" | "json_object" | "json_schema", ...}); None for text."""
        if value is None:
            return None
        if isinstance(value, OutputConstraint):
            return value
        if not isinstance(value, dict):
            raise InvalidParameter(field, 'must be an object such as {"type": "json_object"}')
        kind = value.get("type", "text")
        if kind == "text":
            return None
        if kind == "json_object":
            return cls("json_object")
        if kind == "json_schema":
            spec = value.get("json_schema")
            if not isinstance(spec, dict) or not isinstance(spec.get("schema"), dict):
                raise InvalidParameter(field, 'json_schema needs {"json_schema": {"name": ..., "schema": {...}}}')
            # `strict` or not, the schema is enforced: constrained decoding has no cheaper "best effort" mode.
            return cls("json_schema", json.dumps(spec["schema"]))
        raise InvalidParameter(field, f"type {kind!r} is not supported; use text, json_object or json_schema")

    def to_response_format(self) -> dict[str, Any]:
        """The OpenAI shape back (json_schema / json_object); lark and regex keep their own kind."""
        if self.kind == "json_object":
            return {"type": "json_object"}
        if self.kind == "json_schema":
            return {"type": "json_schema", "json_schema": {"name": "profile", "schema": json.loads(self.spec)}}
        return {"type": self.kind, "spec": self.spec}

    def to_dict(self) -> dict[str, str]:
        return {"kind": self.kind, "spec": self.spec}
