"""Normalising what frontends hand the inference use cases: chat messages (objects or dicts) and
embedding inputs (texts or token arrays). Split from `service.py` by size; it re-exports both.
"""

from __future__ import annotations

from application.errors import InvalidRequest
from application.inference.ports import ChatMessage


def _message(message: ChatMessage | dict) -> ChatMessage:
    if isinstance(message, ChatMessage):
        return message
    if isinstance(message, dict) and isinstance(message.get("role"), str) and isinstance(message.get("content"), str):
        return ChatMessage(message["role"], message["content"], images=tuple(message.get("images") or ()))
    raise InvalidRequest("each message needs a string role and string content")


def _embedding_inputs(inputs) -> tuple[str | tuple[int, ...], ...]:
    """str | list[str] | list[int] | list[list[int]] -> a tuple of texts or token tuples."""
    def token_array(value) -> bool:
        return isinstance(value, (list, tuple)) and bool(value) and all(
            isinstance(t, int) and not isinstance(t, bool) for t in value)

    if isinstance(inputs, str):
        items: list = [inputs]
    elif token_array(inputs):
        items = [tuple(inputs)]
    elif isinstance(inputs, (list, tuple)) and inputs:
        items = [tuple(i) if isinstance(i, (list, tuple)) else i for i in inputs]
    else:
        raise InvalidRequest("input: give a string, a list of strings, or token arrays")
    for index, item in enumerate(items):
        if isinstance(item, str):
            if not item:
                raise InvalidRequest(f"input[{index}]: empty string")
        elif not token_array(item):
            raise InvalidRequest(f"input[{index}]: each input is a non-empty string or a non-empty list of token ids")
    return tuple(items)
