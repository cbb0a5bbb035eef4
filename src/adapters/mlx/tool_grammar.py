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
    return _compact(variants[0] if len(variants) == 1 else {"anyOf": variants})


def _compact(schema: dict) -> dict:
    # Compact JSON (llguidance's option): free whitespace lets a model pad until max_tokens.
    return {**schema, "x-guidance": {"whitespace_flexible": False}}


def _json_tools(tokenizer: Any, tools: Sequence[dict], only: str | None, calls: str) -> list[str]:
    """Hermes / Qwen: `<tool_call>{"name": ..., "arguments": {...}}</tool_call>`, repeated for parallel calls."""
    start = _marker(tokenizer, tokenizer.tool_call_start, tokenizer.tool_call_start_tokens)
    end = _marker(tokenizer, tokenizer.tool_call_end, tokenizer.tool_call_end_tokens)
    schema = json.dumps(_call_schema(tools, only), separators=(",", ":"))
    return [f"calls: {calls}", f"call: {start} ws body ws {end}", f"body: %json {schema}"]


def _mistral(tokenizer: Any, tools: Sequence[dict], only: str | None, calls: str) -> list[str]:
    """Mistral: `[TOOL_CALLS]name[ARGS]{...}`, names and arguments repeated after one start marker."""
    start = _marker(tokenizer, tokenizer.tool_call_start, tokenizer.tool_call_start_tokens)
    args_ids = tuple(tokenizer.encode("[ARGS]", add_special_tokens=False))
    args = _marker(tokenizer, "[ARGS]", args_ids)
    lines, names = [], []
    for index, tool in enumerate(tools):
        function = _function(tool)
        if only is not None and function.get("name") != only:
            continue
        schema = json.dumps(_compact(function.get("parameters") or {"type": "object"}), separators=(",", ":"))
        names.append(f"call{index}")
        lines.append(f"call{index}: {json.dumps(function['name'])} {args} args{index}")
        lines.append(f"args{index}: %json {schema}")
    if not names:
        raise InvalidRequest(f"tool_choice: no tool named {only!r}")
    return [f"calls: {start} {calls}", f"call: {' | '.join(names)}", *lines]


def _xml_value(rule: str, schema: dict) -> list[str]:
    """A Qwen3-Coder parameter value: raw text for strings (mlx-lm's parser converts by the schema's type)."""
    if isinstance(schema.get("enum"), list) and all(isinstance(v, (str, int, float, bool)) for v in schema["enum"]):
        options = " | ".join(json.dumps(v if isinstance(v, str) else json.dumps(v)) for v in schema["enum"])
        return [f"{rule}: {options}"]
    kind = schema.get("type")
    if kind == "integer":
        return [f"{rule}: /-?[0-9]{{1,12}}/"]
    if kind == "number":
        return [f"{rule}: /-?[0-9]{{1,12}}(\\.[0-9]{{1,8}})?/"]
    if kind == "boolean":
        return [f'{rule}: "true" | "false"']
    if kind in ("object", "array"):
        return [f"{rule}: %json {json.dumps(_compact(schema), separators=(',', ':'))}"]
    limit = schema.get("maxLength") if isinstance(schema.get("maxLength"), int) else 256
    return [f"{rule}: /[^<\\n][^<]{{0,{max(limit - 1, 0)}}}/"]  # text up to the closing tag


def _qwen3_coder(tokenizer: Any, tools: Sequence[dict], only: str | None, calls: str) -> list[str]:
    """Qwen3-Coder: `<tool_call>\\n<function=NAME>\\n<parameter=P>\\nVALUE\\n</parameter>\\n</function>\\n</tool_call>`;
    required parameters in the schema's order, then the optional ones, each at most once."""
    start = _marker(tokenizer, tokenizer.tool_call_start, tokenizer.tool_call_start_tokens)
    end = _marker(tokenizer, tokenizer.tool_call_end, tokenizer.tool_call_end_tokens)
    lines, names = [], []
    for index, tool in enumerate(tools):
        function = _function(tool)
        if only is not None and function.get("name") != only:
            continue
        parameters = function.get("parameters") or {}
        properties = parameters.get("properties") or {}
        required = [p for p in parameters.get("required") or [] if p in properties]
        parts = []
        for position, name in enumerate([*required, *(p for p in properties if p not in required)]):
            rule = f"v{index}_{position}"
            lines += _xml_value(rule, properties[name] if isinstance(properties[name], dict) else {})
            part = f'"<parameter={name}>\\n" {rule} "\\n</parameter>\\n"'
            parts.append(part if name in required else f"({part})?")
        names.append(f"call{index}")
        header = json.dumps(f"<function={function['name']}>\n")
        lines.append(f"call{index}: {header} {' '.join(parts)} \"</function>\\n\"")
    if not names:
        raise InvalidRequest(f"tool_choice: no tool named {only!r}")
    return [f"calls: {calls}", f'call: {start} "\\n" function {end}', f"function: {' | '.join(names)}", *lines]


# mlx-lm tool parser id -> the grammar of its format.
FORMATS = {"json_tools": _json_tools, "mistral": _mistral, "qwen3_coder": _qwen3_coder}


def tool_call_grammar(tokenizer: Any, parser_id: str | None, tools: Sequence[dict], only: str | None,
                      model_id: str, thinking_first: bool = False, parallel: bool = True) -> str:
    """A Lark grammar admitting only tool calls in this model's format."""
    build = FORMATS.get(parser_id or "")
    if build is None:
        raise InvalidRequest(
            f"{model_id}: tool_choice \"required\" or a named function needs constrained decoding of the model's "
            f"tool-call format, and the {parser_id or 'unknown'!r} format has no grammar here "
            f"(supported: {', '.join(sorted(FORMATS))}); use \"auto\"")
    lines = []
    if thinking_first and getattr(tokenizer, "has_thinking", False):
        # The prompt opened a thinking block: let the model finish it, then it must call.
        think_end = _marker(tokenizer, tokenizer.think_end, tokenizer.think_end_tokens)
        lines += ["start: thought ws calls", f"thought: /(?s:.*)/ {think_end}"]
    else:
        lines.append("start: calls")
    lines += build(tokenizer, tools, only, "call (ws call)*" if parallel else "call")
    lines.append(f"ws: {_WS}")
    return "\n".join(lines) + "\n"


def parser_id(tokenizer: Any) -> str | None:
    """The mlx-lm tool parser module the tokenizer was loaded with (`json_tools`, `qwen3_coder`, ...)."""
    parser = getattr(tokenizer, "tool_parser", None)
    module = getattr(parser, "__module__", "") or ""
    return module.rsplit(".", 1)[-1] if module.startswith("mlx_lm.tool_parsers.") else None
