"""The one JSON body parser of the HTTP API: hostile JSON is a 4xx here, never a 500 further in.

`json.loads` accepts things nothing behind it can handle:
- `"\\ud800"`: a lone surrogate is a valid JSON escape but not a Unicode scalar value; SQLite,
  tokenizers and UTF-8 encoders fail on it deep inside a request (400 here);
- 50,000 nested arrays: a RecursionError in the decoder or in any recursive consumer (400: at most
  MAX_DEPTH levels);
- a 5,000-digit integer: `int()` refuses beyond 4,300 digits with a ValueError (422, a wrong value);
- NaN / Infinity: not JSON at all (400).
"""

from __future__ import annotations

import json
import re
from typing import Any

MAX_DEPTH = 64
_SURROGATE = re.compile("[\ud800-\udfff]")


class BodyRefused(Exception):
    """The body cannot be used: `status` and `kind` (the audit row's error type) say why."""

    def __init__(self, status: int, kind: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.kind = kind


class _BadInteger(Exception):
    def __init__(self, digits: int) -> None:
        self.digits = digits


def _parse_int(text: str) -> int:
    try:
        return int(text)
    except ValueError:  # beyond sys.get_int_max_str_digits()
        raise _BadInteger(len(text.lstrip("-"))) from None


def _parse_constant(name: str):
    raise BodyRefused(400, "invalid_json", f"request body is not valid JSON: {name} is not a JSON value")


def load_json(raw: bytes) -> Any:
    """The decoded body; BodyRefused for anything a well-behaved JSON client would never send."""
    try:
        data = json.loads(raw, parse_int=_parse_int, parse_constant=_parse_constant)
    except _BadInteger as exc:
        raise BodyRefused(422, "invalid_integer", f"an integer with {exc.digits} digits is too large") from None
    except RecursionError:
        raise BodyRefused(400, "nesting_too_deep", f"JSON nested deeper than {MAX_DEPTH} levels") from None
    except UnicodeDecodeError as exc:
        raise BodyRefused(400, "invalid_json", f"request body is not valid UTF-8: {exc.reason}") from None
    except json.JSONDecodeError as exc:
        raise BodyRefused(400, "invalid_json", f"request body is not valid JSON: {exc}") from None
    _check(data)
    return data


def _check(data: Any) -> None:
    """Depth and Unicode of every value, iteratively (a recursive walk would itself overflow)."""
    stack: list[tuple[Any, int, str]] = [(data, 1, "$")]
    while stack:
        value, depth, path = stack.pop()
        if isinstance(value, str):
            _check_text(value, path)
        elif isinstance(value, (dict, list)):
            if depth > MAX_DEPTH:
                raise BodyRefused(400, "nesting_too_deep", f"JSON nested deeper than {MAX_DEPTH} levels at {path}")
            if isinstance(value, dict):
                for key, item in value.items():
                    _check_text(key, path)
                    stack.append((item, depth + 1, f"{path}.{key[:40]}"))
            else:
                stack.extend((item, depth + 1, f"{path}[{index}]") for index, item in enumerate(value))


def _check_text(text: str, path: str) -> None:
    if not text.isascii() and _SURROGATE.search(text):
        raise BodyRefused(400, "invalid_unicode",
                          f"string at {path.encode('ascii', 'backslashreplace').decode()} is not valid Unicode "
                          "(a lone surrogate such as \\ud800)")
