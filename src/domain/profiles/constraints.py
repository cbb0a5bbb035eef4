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

from dataclasses import dataclass

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
