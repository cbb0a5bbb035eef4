"""Environment markers (PEP 508 subset) and requirement specs, parsed and evaluated without `packaging` (the domain is stdlib only)."""

from __future__ import annotations

import re
from dataclasses import dataclass

from domain.errors import DomainError
from domain.library.dependency_model import InvalidDependencyInput, Requirement


_EXACT_PIN = re.compile(r"^===?\s*[0-9]+(\.[0-9]+)*((a|b|rc)[0-9]+)?(\.post[0-9]+)?(\.dev[0-9]+)?(\+[a-z0-9.]+)?$")


_VERSION_CLAUSE = re.compile(r"^\s*(~=|==|!=|<=|>=|<|>|===)\s*[0-9]+(\.[0-9*]+)*[a-z0-9.+]*\s*$")


class InvalidMarker(DomainError):
    pass


MARKER_VARIABLES = frozenset(
    {
        "os_name", "sys_platform", "platform_machine", "platform_python_implementation", "platform_release",
        "platform_system", "platform_version", "python_version", "python_full_version",
        "implementation_name", "implementation_version", "extra",
    }
)


_MARKER_TOKEN = re.compile(
    r"\s*(?:(?P<str>'[^']*'|\"[^\"]*\")|(?P<op>===|==|!=|<=|>=|~=|<|>|not\s+in\b|in\b)"
    r"|(?P<bool>and\b|or\b)|(?P<paren>[()])|(?P<var>[A-Za-z_][A-Za-z0-9_.]*))"
)


@dataclass(frozen=True)
class _Compare:
    left: tuple[str, str]  # ("var"|"str", value)
    op: str
    right: tuple[str, str]


@dataclass(frozen=True)
class _BoolOp:
    op: str
    left: object
    right: object


def parse_marker(text: str) -> object:
    """Parse a marker expression into a small tree; raise `InvalidMarker` naming the problem."""
    tokens = _tokenise(text)
    position = [0]

    def peek() -> tuple[str, str] | None:
        return tokens[position[0]] if position[0] < len(tokens) else None

    def take() -> tuple[str, str]:
        token = peek()
        if token is None:
            raise InvalidMarker(f"marker {text!r} ends early")
        position[0] += 1
        return token

    def operand() -> tuple[str, str]:
        kind, value = take()
        if kind == "str":
            return ("str", value[1:-1])
        if kind == "var":
            if value not in MARKER_VARIABLES:
                raise InvalidMarker(f"unknown marker variable {value!r}")
            return ("var", value)
        raise InvalidMarker(f"expected a variable or a quoted string in {text!r}, got {value!r}")

    def atom() -> object:
        token = peek()
        if token == ("paren", "("):
            take()
            node = expression()
            if take() != ("paren", ")"):
                raise InvalidMarker(f"unbalanced parentheses in {text!r}")
            return node
        left = operand()
        kind, op = take()
        if kind != "op":
            raise InvalidMarker(f"expected a comparison operator in {text!r}, got {op!r}")
        right = operand()
        if left[0] == right[0]:
            raise InvalidMarker(f"a comparison needs one variable and one string in {text!r}")
        return _Compare(left, " ".join(op.split()), right)

    def conjunction() -> object:
        node = atom()
        while peek() == ("bool", "and"):
            take()
            node = _BoolOp("and", node, atom())
        return node

    def expression() -> object:
        node = conjunction()
        while peek() == ("bool", "or"):
            take()
            node = _BoolOp("or", node, conjunction())
        return node

    tree = expression()
    if peek() is not None:
        raise InvalidMarker(f"unexpected {peek()[1]!r} in marker {text!r}")
    return tree


def _tokenise(text: str) -> list[tuple[str, str]]:
    tokens: list[tuple[str, str]] = []
    position = 0
    stripped = text.rstrip()
    if not stripped:
        raise InvalidMarker("empty marker")
    while position < len(stripped):
        match = _MARKER_TOKEN.match(stripped, position)
        if match is None or match.end() == position:
            raise InvalidMarker(f"cannot parse marker {text!r} at position {position}")
        kind = match.lastgroup or ""
        value = match.group(kind).strip()
        tokens.append((kind, value))
        position = match.end()
    return tokens


def evaluate_marker(tree: object, environment: dict[str, str | None]) -> bool | None:
    """True/False, or None when a variable the marker needs is unknown."""
    if isinstance(tree, _BoolOp):
        left = evaluate_marker(tree.left, environment)
        right = evaluate_marker(tree.right, environment)
        if tree.op == "and":
            if left is False or right is False:
                return False
            return None if left is None or right is None else True
        if left is True or right is True:
            return True
        return None if left is None or right is None else False
    assert isinstance(tree, _Compare)
    values = []
    for kind, value in (tree.left, tree.right):
        if kind == "var":
            value = environment.get(value)
            if value is None:
                return None
        values.append(value)
    left, right = values
    if tree.op == "in":
        return left in right
    if tree.op == "not in":
        return left not in right
    if tree.op in {"==", "===", "!="} and not (_is_version(left) and _is_version(right)):
        return (left == right) if tree.op != "!=" else (left != right)
    return _compare_versions(left, tree.op, right)


def _is_version(value: str) -> bool:
    return bool(re.fullmatch(r"[0-9]+(\.[0-9]+)*", value))


def _compare_versions(left: str, op: str, right: str) -> bool | None:
    if not (_is_version(left) and _is_version(right)):
        return None
    a = [int(p) for p in left.split(".")]
    b = [int(p) for p in right.split(".")]
    width = max(len(a), len(b))
    a += [0] * (width - len(a))
    b += [0] * (width - len(b))
    if op in {"==", "==="}:
        return a == b
    if op == "!=":
        return a != b
    if op == "<":
        return a < b
    if op == "<=":
        return a <= b
    if op == ">":
        return a > b
    if op == ">=":
        return a >= b
    if op == "~=":
        return a >= b and a[: len(right.split(".")) - 1] == b[: len(right.split(".")) - 1]
    return None


def parse_requirement_spec(spec: str, python_requires: str | None = None) -> Requirement:
    """`mlx[cpu]==0.32.4; sys_platform == "linux"` -> `Requirement` (no validation of the pin)."""
    text, _, markers = spec.partition(";")
    match = re.fullmatch(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)\s*(?:\[([^\]]*)\])?\s*(.*?)\s*", text)
    if match is None:
        raise InvalidDependencyInput("requirement", f"cannot parse {spec!r}")
    name, extras, pin = match.groups()
    return Requirement(
        name=name,
        pin=pin,
        extras=tuple(e.strip() for e in (extras or "").split(",") if e.strip()),
        markers=markers.strip() or None,
        python_requires=python_requires,
    )
