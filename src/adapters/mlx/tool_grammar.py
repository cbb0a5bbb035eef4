"""`tool_choice: "required"` or a named function, enforced: a Lark grammar of the model's own tool-call format.

The grammar (llguidance's Lark dialect, run by the engine's constrained decoding) only admits one or
more complete tool calls, in the format the model's tokenizer declares, whose JSON matches one of the
offered tools (name as a constant, arguments as the tool's `parameters` schema); a named choice admits
only that function. mlx-lm's parser then reads the calls as for any other answer. Formats without a
grammar here are refused with a 400 naming the format, rather than hoping the model complies.

A marker that is a single token of the vocabulary is referenced by id (`<[id]>`), so the model emits
the very token it was trained on (Qwen's `<tool_call>` is one token), not the same text spelled in
pieces.
"""

from __future__ import annotations

import json
from typing import Any, Sequence

from application.errors import InvalidRequest

# Bounded whitespace between calls: unbounded whitespace lets a model pad until max_tokens.
_WS = r'/[ \t\n]{0,4}/'


def _marker(tokenizer: Any, text: str, token_ids: Sequence[int] | None) -> str:
    if token_ids is not None and len(token_ids) == 1:
        return f"<[{int(token_ids[0])}]>"
    return json.dumps(text)


def _function(tool: dict) -> dict:
    return tool.get("function") if isinstance(tool.get("function"), dict) else tool


def _call_schema(tools: Sequence[dict], only: str | None) -> dict:
    variants = []
    for tool in tools:
        function = _function(tool)
        if only is not None and function.get("name") != only:
            continue
        parameters = function.get("parameters") or {"type": "object"}
        variants.append({
            "type": "object",
            "properties": {"name": {"const": function["name"]}, "arguments": parameters},
            "required": ["name", "arguments"],
            "additionalProperties": False,
        })
    if not variants:
        raise InvalidRequest(f"tool_choice: no tool named {only!r}")
    schema = variants[0] if len(variants) == 1 else {"anyOf": variants}
    # Compact JSON (llguidance's option): free whitespace lets a model pad until max_tokens.
    return {**schema, "x-guidance": {"whitespace_flexible": False}}


def tool_call_grammar(tokenizer: Any, parser_id: str | None, tools: Sequence[dict], only: str | None,
                      model_id: str, thinking_first: bool = False, parallel: bool = True) -> str:
    """A Lark grammar admitting only tool calls in this model's format."""
    if parser_id != "json_tools":
        raise InvalidRequest(
            f"{model_id}: tool_choice \"required\" or a named function needs constrained decoding of the model's "
            f"tool-call format, and the {parser_id or 'unknown'!r} format has no grammar here; use \"auto\"")
    start = _marker(tokenizer, tokenizer.tool_call_start, tokenizer.tool_call_start_tokens)
    end = _marker(tokenizer, tokenizer.tool_call_end, tokenizer.tool_call_end_tokens)
    schema = json.dumps(_call_schema(tools, only), separators=(",", ":"))
    calls = "call (ws call)*" if parallel else "call"
    lines = []
    if thinking_first and getattr(tokenizer, "has_thinking", False):
        # The prompt opened a thinking block: let the model finish it, then it must call.
        think_end = _marker(tokenizer, tokenizer.think_end, tokenizer.think_end_tokens)
        lines.append(f"start: thought ws {calls}")
        lines.append(f"thought: /(?s:.*)/ {think_end}")
    else:
        lines.append(f"start: {calls}")
    lines.append(f"call: {start} ws body ws {end}")
    lines.append(f"body: %json {schema}")
    lines.append(f"ws: {_WS}")
    return "\n".join(lines) + "\n"


def parser_id(tokenizer: Any) -> str | None:
    """The mlx-lm tool parser module the tokenizer was loaded with (`json_tools`, `qwen3_coder`, ...)."""
    parser = getattr(tokenizer, "tool_parser", None)
    module = getattr(parser, "__module__", "") or ""
    return module.rsplit(".", 1)[-1] if module.startswith("mlx_lm.tool_parsers.") else None
