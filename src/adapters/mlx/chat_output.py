"""The chat protocol on top of mlx-lm's text stream: tools and thinking in, structured output out.

In: the messages (with assistant tool calls and tool results), the tools and the thinking switch,
rendered by the model's own chat template. Out: the generated text split into content, reasoning
and tool calls, using mlx-lm's own pieces rather than parsers of our own:
- `mlx_lm.generate.make_text_state_machine(tokenizer)` knows the model's thinking and tool-call
  markers (it is what `mlx_lm.server` splits its output with);
- `tokenizer.tool_parser` parses one tool-call block in the model's format (json_tools, qwen3_coder,
  mistral, glm47, kimi, gemma, pythonic, ...; whatever mlx-lm inferred from the chat template).

A block between the markers that the parser rejects comes back as text, markers included: output is
never dropped.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import replace
from typing import Any, Callable, Iterator, Sequence

from adapters.mlx.reasoning_tally import ReasoningTally
from application.errors import InvalidRequest
from application.inference.ports import ChatMessage, GenerationChunk, GenerationRequest, ToolCall

TOOL_STATE = "tool"
REASONING_STATE = "reasoning"


def new_call_id() -> str:
    return f"call_{uuid.uuid4().hex[:24]}"


# ---------------------------------------------------------------------------------- request side

def wants_tool_calls(request: GenerationRequest) -> bool:
    """Tools are offered to the model (and its calls parsed) unless tool_choice is "none"."""
    return bool(request.tools) and request.tool_choice != "none"


def forced_tool(request: GenerationRequest) -> str | None:
    """The function a named `tool_choice` forces, or None."""
    choice = request.tool_choice
    if isinstance(choice, dict):
        function = choice.get("function") if isinstance(choice.get("function"), dict) else choice
        name = function.get("name")
        return name if isinstance(name, str) else None
    return None


def check_tools(model_id: str, tokenizer: Any, request: GenerationRequest) -> None:
    """A request with tools needs a model whose tool-call format mlx-lm knows: else a 400 naming the model."""
    if not wants_tool_calls(request):
        return
    if not getattr(tokenizer, "has_tool_calling", False):
        raise InvalidRequest(
            f"{model_id}: this model has no known tool-call format (mlx-lm found no tool parser for its chat "
            "template), so it cannot be given tools; send the request without `tools`"
        )
    name = forced_tool(request)
    if name is not None and name not in tool_names(request.tools):
        raise InvalidRequest(f"tool_choice: names the function {name!r}, which is not among the request's tools")



def forces_tool_call(request: GenerationRequest) -> bool:
    return wants_tool_calls(request) and (request.tool_choice == "required" or forced_tool(request) is not None)


def tool_names(tools: Sequence[dict]) -> list[str]:
    names = []
    for tool in tools:
        function = tool.get("function") if isinstance(tool.get("function"), dict) else tool
        if isinstance(function.get("name"), str):
            names.append(function["name"])
    return names


def _arguments_for_template(arguments: str) -> Any:
    """Chat templates render arguments with `tojson` (Qwen, Hermes, Llama): they expect an object, as
    `mlx_lm.server` passes them; text that is not JSON passes through unchanged."""
    try:
        return json.loads(arguments)
    except (TypeError, ValueError):
        return arguments


def template_messages(messages: Sequence[ChatMessage]) -> list[dict]:
    """Messages as chat templates read them (OpenAI's shape: `tool_calls`, `tool_call_id`, `reasoning_content`)."""
    rendered = []
    for message in messages:
        item: dict[str, Any] = {"role": message.role, "content": message.content}
        if message.tool_calls:
            item["tool_calls"] = [
                {"id": call.id, "type": "function",
                 "function": {"name": call.name, "arguments": _arguments_for_template(call.arguments)}}
                for call in message.tool_calls
            ]
        if message.tool_call_id is not None:
            item["tool_call_id"] = message.tool_call_id
        if message.name is not None:
            item["name"] = message.name
        if message.reasoning:
            item["reasoning_content"] = message.reasoning
        rendered.append(item)
    return rendered


def template_kwargs(request: GenerationRequest) -> dict:
    kwargs: dict[str, Any] = {}
    if wants_tool_calls(request):
        kwargs["tools"] = [dict(tool) for tool in request.tools]
    if request.enable_thinking is not None:
        kwargs["enable_thinking"] = request.enable_thinking  # mlx-lm renames it for templates that say `thinking`
    return kwargs


def initial_state(tokenizer: Any, prompt: Sequence[int]) -> str:
    """"reasoning" when the prompt ends inside an open thinking block (templates that open `<think>`
    in the generation prompt), as `mlx_lm.server` decides it; "normal" otherwise."""
    if getattr(tokenizer, "has_thinking", False):
        if tokenizer.rfind_think_start(prompt) > tokenizer.rfind_think_end(prompt):
            return REASONING_STATE
    return "normal"


def needs_splitting(tokenizer: Any, request: GenerationRequest) -> bool:
    return bool(getattr(tokenizer, "has_thinking", False)) or (
        wants_tool_calls(request) and getattr(tokenizer, "has_tool_calling", False)
    )


# ---------------------------------------------------------------------------------- output side

class ChatOutputSplitter:
    """Feed decoded text; get (content, reasoning, completed tool calls) back, incrementally.

    Markers split across pieces are held back by the state machine until they are decided.
    """

    def __init__(self, tokenizer: Any, tools: Sequence[dict], parse_tools: bool, start: str = "normal") -> None:
        from mlx_lm.generate import TextStateMachine, make_text_state_machine

        self._machine = TextStateMachine
        self._state = make_text_state_machine(tokenizer).make_state(start)
        self._parser = tokenizer.tool_parser if parse_tools else None
        self._tools = [dict(tool) for tool in tools] or None
        self._start_marker = tokenizer.tool_call_start or ""
        self._end_marker = tokenizer.tool_call_end or ""
        self._current = start
        self._tool_text: list[str] = []
        self.made_calls = False
        # The part of each character fed, in order, once the machine has decided it (True: reasoning):
        # what the reasoning-token count reads (see reasoning_tally). Read with `take_parts`.
        self._parts: list[bool] = []

    def feed(self, text: str) -> tuple[str, str, list[ToolCall]]:
        content: list[str] = []
        reasoning: list[str] = []
        calls: list[ToolCall] = []
        # One character at a time: a character completes at most one marker, so the characters each split
        # decides are the text of the state it started in, then (maybe) one marker, whose length is known.
        for char in text:
            state, held = self._state[0], len(self._state[3])  # mlx-lm's state: (name, node, states, buffer)
            self._state, segments = self._machine.split(self._state, char)
            decided = held + 1 - len(self._state[3])
            self._parts.extend([state == REASONING_STATE] * len(segments[0][1]))
            if len(segments) > 1:  # a marker: thinking if it enters or leaves the block (else content)
                after = segments[1][0]
                self._parts.extend([REASONING_STATE in (state, after)] * (decided - len(segments[0][1])))
            c, r, t = self._route(segments)
            content.append(c), reasoning.append(r), calls.extend(t)
        return "".join(content), "".join(reasoning), calls

    def take_parts(self) -> list[bool]:
        parts, self._parts = self._parts, []
        return parts

    @property
    def in_reasoning(self) -> bool:
        """Whether the output stands in the thinking block."""
        return self._state[0] == REASONING_STATE

    def finish(self) -> tuple[str, str, list[ToolCall]]:
        """End of generation: release held-back text; a tool block still open is parsed as it stands."""
        self._state, rest, name = self._machine.flush(self._state)
        self._parts.extend([name == REASONING_STATE] * len(rest))
        content, reasoning, calls = self._route([(name, rest)])
        if self._current == TOOL_STATE:
            text, parsed = self._close_tool(closed=False)
            content += text
            calls += parsed
            self._current = "normal"
        return content, reasoning, calls

    def _route(self, segments: list[tuple[str | None, str]]) -> tuple[str, str, list[ToolCall]]:
        content: list[str] = []
        reasoning: list[str] = []
        calls: list[ToolCall] = []
        for index, (name, text) in enumerate(segments):
            if index > 0:  # a marker was crossed between the previous segment and this one
                if self._current == TOOL_STATE:
                    leftover, parsed = self._close_tool(closed=True)
                    content.append(leftover)
                    calls.extend(parsed)
                self._current = name or "normal"
            if not text:
                continue
            if self._current == TOOL_STATE:
                self._tool_text.append(text)
            elif self._current == REASONING_STATE:
                reasoning.append(text)
            else:
                content.append(text)
        return "".join(content), "".join(reasoning), calls

    def _close_tool(self, closed: bool) -> tuple[str, list[ToolCall]]:
        """Parse one tool block: (text to return as content, calls)."""
        body = "".join(self._tool_text)
        self._tool_text = []
        calls = self._parse(body)
        if calls:
            self.made_calls = True
            return "", calls
        # Not a call we can read (no parser for this request, or malformed): the model's text, verbatim.
        return self._start_marker + body + (self._end_marker if closed else ""), []

    def _parse(self, body: str) -> list[ToolCall]:
        if self._parser is None or not body.strip():
            return []
        try:
            parsed = self._parser(body, self._tools)
        except Exception:  # noqa: BLE001 - each format's parser raises its own errors on malformed text
            return []
        items = parsed if isinstance(parsed, list) else [parsed]
        calls = []
        for item in items:
            if not isinstance(item, dict) or not isinstance(item.get("name"), str) or not item["name"]:
                return []
            arguments = item.get("arguments", {})
            if not isinstance(arguments, str):
                arguments = json.dumps(arguments, ensure_ascii=False)
            calls.append(ToolCall(id=item.get("id") or new_call_id(), name=item["name"], arguments=arguments))
        return calls


class ChatOutputStream:
    """Wraps a stream of text chunks; each chunk comes out split into content, reasoning and tool calls.

    One chunk out per chunk in (so token counts and progress are unchanged); `finish_reason` becomes
    "tool_calls" when the model stopped after calling tools, as OpenAI reports it. Each chunk carries its
    choice's running count of reasoning tokens (see reasoning_tally): the generated tokens whose text fell in
    a thinking block, counted once their text is decided, so exact on the choice's last chunk.
    """

    def __init__(self, inner: Iterator[GenerationChunk], splitter: ChatOutputSplitter,
                 make_splitter: Callable[[], ChatOutputSplitter] | None = None) -> None:
        self._inner = inner
        self._splitter = splitter
        # n > 1 choices interleave in one stream: each choice index gets its own splitter.
        self._splitters = {0: splitter}
        self._make_splitter = make_splitter
        self._completion: dict[int, int] = {}  # per choice: completion tokens seen so far
        self._tallies: dict[int, ReasoningTally] = {}  # per choice: how many of them were thinking

    def __iter__(self) -> "ChatOutputStream":
        return self

    def __next__(self) -> GenerationChunk:
        chunk = next(self._inner)
        splitter = self._splitters.get(chunk.index)
        if splitter is None:
            splitter = self._splitters[chunk.index] = (self._make_splitter or (lambda: self._splitter))()
        tally = self._tallies.setdefault(chunk.index, ReasoningTally())
        # Chunks are one per token, but the end-of-sequence chunk adds no completion token: count the new ones.
        new_tokens = max(chunk.completion_tokens - self._completion.get(chunk.index, 0), 0)
        self._completion[chunk.index] = chunk.completion_tokens
        tally.add(new_tokens, chunk.text, chunk.held_back)
        content, reasoning, calls = splitter.feed(chunk.text)
        tally.decided(splitter.take_parts())
        finish = chunk.finish_reason
        if finish is not None:
            more_content, more_reasoning, more_calls = splitter.finish()
            content, reasoning, calls = content + more_content, reasoning + more_reasoning, calls + more_calls
            tally.decided(splitter.take_parts())
            tally.finish(splitter.in_reasoning)
            if finish == "stop" and splitter.made_calls:
                finish = "tool_calls"
        return replace(chunk, text=content, reasoning=reasoning, tool_calls=tuple(calls), finish_reason=finish,
                       reasoning_tokens=tally.count)

    def close(self) -> None:
        close = getattr(self._inner, "close", None)
        if close is not None:
            close()

    @property
    def request(self):  # the engine request, read by tests of cancellation
        return getattr(self._inner, "request", None)


def with_tool_constraint(model_id: str, tokenizer: Any, request: GenerationRequest,
                         prompt: Sequence[int]) -> GenerationRequest:
    """`tool_choice` "required" or a named function: the request gains a Lark constraint admitting only
    tool calls in the model's own format (see tool_grammar), so the engine enforces the choice."""
    if not forces_tool_call(request):
        return request
    from adapters.mlx.tool_grammar import parser_id, tool_call_grammar
    from domain.profiles.constraints import OutputConstraint

    if request.constraint is not None:
        raise InvalidRequest("tool_choice: \"required\" or a named function cannot be combined with response_format")
    grammar = tool_call_grammar(tokenizer, parser_id(tokenizer), request.tools, forced_tool(request), model_id,
                                thinking_first=initial_state(tokenizer, prompt) == REASONING_STATE,
                                parallel=request.parallel_tool_calls and forced_tool(request) is None)
    return replace(request, constraint=OutputConstraint("lark", grammar))
