"""The dependency-requirements contract: which packages a model needs, per binding.

A `DependencyProfile` is a named, versioned set of exactly pinned requirements (for example
`mlx-lm` v1: `mlx==0.32.4; sys_platform == "darwin"`, `mlx[cpu]==0.32.4; sys_platform ==
"linux"`, `mlx-lm==0.32.2`). A `DependencyBinding` attaches a profile to a model for a
platform selector and a backend key. Resolving a model validates every binding that applies
and reports a state per binding; the overall state is the worst one.
"""

from __future__ import annotations

import fnmatch
import re
from dataclasses import dataclass
from enum import Enum
from typing import Callable, Collection, Iterable, Sequence

from domain.errors import DomainError

DEPENDENCY_CONTRACT_VERSION = 1

ENVIRONMENT_KINDS = frozenset({"python-venv", "conda", "system"})


class ValidationState(str, Enum):
    """Ordered best to worst; `worst()` picks the top-level state."""

    RESOLVED = "resolved"
    UNKNOWN_PROFILE = "unknown_profile"
    INVALID_PROFILE = "invalid_profile"
    PROFILE_CONFLICT = "profile_conflict"

    @property
    def rank(self) -> int:
        return _STATE_ORDER.index(self)

    def __str__(self) -> str:  # pragma: no cover - trivial
        return self.value


_STATE_ORDER = [
    ValidationState.RESOLVED,
    ValidationState.UNKNOWN_PROFILE,
    ValidationState.INVALID_PROFILE,
    ValidationState.PROFILE_CONFLICT,
]


def worst(states: Iterable[ValidationState]) -> ValidationState:
    """The worst state, or `resolved` when there is none (a model without bindings)."""
    return max(states, key=lambda s: s.rank, default=ValidationState.RESOLVED)


class InvalidDependencyInput(DomainError):
    """A binding or profile that cannot even be stored (empty id, unknown environment kind...)."""

    def __init__(self, field: str, message: str) -> None:
        self.field = field
        super().__init__(f"{field}: {message}")


# --------------------------------------------------------------------------
# value objects
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class Requirement:
    """One package: `name[extras]` at an exact `pin` (`==1.2.3`), with optional PEP 508 markers."""

    name: str
    pin: str
    extras: tuple[str, ...] = ()
    markers: str | None = None
    python_requires: str | None = None

    @property
    def specifier(self) -> str:
        extras = f"[{','.join(self.extras)}]" if self.extras else ""
        markers = f"; {self.markers}" if self.markers else ""
        return f"{self.name}{extras}{self.pin}{markers}"


@dataclass(frozen=True)
class DependencyProfile:
    profile_id: str
    version: int
    environment_kind: str
    requirements: tuple[Requirement, ...]
    description: str = ""


@dataclass(frozen=True)
class DependencyBinding:
    """A profile attached to a model. `profile_version=None` means the newest version."""

    binding_id: str
    model_id: str
    profile_id: str
    profile_version: int | None = None
    environment_kind: str = "python-venv"
    platform_selector: str = "*"
    backend_key: str = "*"

    def __post_init__(self) -> None:
        for name in ("binding_id", "model_id", "profile_id"):
            if not str(getattr(self, name) or "").strip():
                raise InvalidDependencyInput(name, "must not be empty")
        if self.environment_kind not in ENVIRONMENT_KINDS:
            raise InvalidDependencyInput(
                "environment_kind", f"{self.environment_kind!r} is not one of {sorted(ENVIRONMENT_KINDS)}"
            )
        if self.profile_version is not None and self.profile_version < 1:
            raise InvalidDependencyInput("profile_version", "must be >= 1")

    def applies_to(self, platform: "PlatformContext", backend_key: str | None) -> bool:
        backend_ok = backend_key is None or self.backend_key in {"*", backend_key}
        return backend_ok and platform.matches(self.platform_selector)


@dataclass(frozen=True)
class PlatformContext:
    """Where the consumer will run: `system` (linux/darwin/win32), `machine`, Python version.

    Unknown parts stay None: markers that need them evaluate to "unknown", not to false.
    """

    system: str | None = None
    machine: str | None = None
    python_version: str | None = None

    @classmethod
    def parse(cls, value: str | None, python_version: str | None = None) -> "PlatformContext":
        """`linux`, `darwin-arm64`, `linux-x86_64` (empty: unknown platform)."""
        if not value:
            return cls(None, None, python_version)
        system, _, machine = value.strip().lower().partition("-")
        system = {"macos": "darwin", "mac": "darwin", "osx": "darwin", "windows": "win32"}.get(system, system)
        return cls(system or None, machine or None, python_version)

    @property
    def label(self) -> str:
        return "-".join(p for p in (self.system or "*", self.machine) if p)

    def matches(self, selector: str) -> bool:
        """`*`, `linux`, `darwin-arm64`, `linux-*` (fnmatch on `system-machine`). Unknown parts match."""
        selector = (selector or "*").strip().lower()
        if selector == "*":
            return True
        sel_system, _, sel_machine = selector.partition("-")
        if self.system is not None and not fnmatch.fnmatchcase(self.system, sel_system):
            return False
        if sel_machine and self.machine is not None and not fnmatch.fnmatchcase(self.machine, sel_machine):
            return False
        return True

    def marker_environment(self) -> dict[str, str | None]:
        system_names = {"linux": "Linux", "darwin": "Darwin", "win32": "Windows"}
        version = self.python_version
        short = ".".join(version.split(".")[:2]) if version else None
        return {
            "sys_platform": self.system,
            "platform_system": system_names.get(self.system or "", self.system),
            "platform_machine": self.machine,
            "os_name": None if self.system is None else ("nt" if self.system == "win32" else "posix"),
            "python_version": short,
            "python_full_version": version,
            "implementation_name": None,
            "platform_python_implementation": None,
            "platform_release": None,
            "platform_version": None,
            "extra": None,
        }


# --------------------------------------------------------------------------
# validation
# --------------------------------------------------------------------------

_NAME = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9._-]*[A-Za-z0-9])?$")
_EXACT_PIN = re.compile(r"^===?\s*[0-9]+(\.[0-9]+)*((a|b|rc)[0-9]+)?(\.post[0-9]+)?(\.dev[0-9]+)?(\+[a-z0-9.]+)?$")
_VERSION_CLAUSE = re.compile(r"^\s*(~=|==|!=|<=|>=|<|>|===)\s*[0-9]+(\.[0-9*]+)*[a-z0-9.+]*\s*$")


def canonical_name(name: str) -> str:
    """PEP 503 normalisation: `MLX_LM` and `mlx-lm` are the same package."""
    return re.sub(r"[-_.]+", "-", name).lower()


@dataclass(frozen=True)
class ValidationError:
    code: str
    scope: str  # binding | profile | requirement | model
    binding_id: str | None
    field: str | None
    message: str


def validate_profile(profile: DependencyProfile, binding_id: str | None = None) -> list[ValidationError]:
    """Every way a profile can be unusable; an empty list means it is valid."""
    errors: list[ValidationError] = []

    def add(code: str, scope: str, field: str | None, message: str) -> None:
        errors.append(ValidationError(code, scope, binding_id, field, message))

    if profile.environment_kind not in ENVIRONMENT_KINDS:
        add("invalid_environment_kind", "profile", "environment_kind",
            f"{profile.environment_kind!r} is not one of {sorted(ENVIRONMENT_KINDS)}")
    if not profile.requirements:
        add("empty_profile", "profile", "requirements", f"profile {profile.profile_id} v{profile.version} pins nothing")
    seen: dict[tuple[str, str], str] = {}
    for index, req in enumerate(profile.requirements):
        where = f"requirements[{index}]"
        if not _NAME.fullmatch(req.name or ""):
            add("invalid_name", "requirement", f"{where}.name", f"{req.name!r} is not a valid package name")
        if not _EXACT_PIN.fullmatch((req.pin or "").strip()):
            add("invalid_pin", "requirement", f"{where}.pin",
                f"{req.name}: {req.pin!r} is not an exact pin like '==1.2.3'")
        if any(not _NAME.fullmatch(extra) for extra in req.extras):
            add("invalid_extra", "requirement", f"{where}.extras", f"{req.name}: invalid extras {list(req.extras)}")
        if req.markers:
            try:
                parse_marker(req.markers)
            except InvalidMarker as exc:
                add("invalid_marker", "requirement", f"{where}.markers", f"{req.name}: {exc}")
        if req.python_requires and not all(
            _VERSION_CLAUSE.fullmatch(clause) for clause in req.python_requires.split(",")
        ):
            add("invalid_python_requires", "requirement", f"{where}.python_requires",
                f"{req.name}: {req.python_requires!r} is not a version specifier")
        key = (canonical_name(req.name or ""), (req.markers or "").strip())
        if key in seen and seen[key] != req.pin:
            add("duplicate_requirement", "requirement", f"{where}.pin",
                f"{req.name} is pinned twice in the profile ({seen[key]} and {req.pin})")
        seen.setdefault(key, req.pin)
    return errors


# --------------------------------------------------------------------------
# resolution
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class ResolvedRequirement:
    requirement: Requirement
    applies: bool | None  # the markers on the requested platform; None when unknown


@dataclass(frozen=True)
class BindingResolution:
    binding: DependencyBinding
    profile: DependencyProfile | None
    requirements: tuple[ResolvedRequirement, ...]
    validation_state: ValidationState
    validation_errors: tuple[ValidationError, ...] = ()


@dataclass(frozen=True)
class DependencyResolution:
    model_id: str
    platform: PlatformContext
    backend_key: str | None
    groups: tuple[BindingResolution, ...]
    validation_state: ValidationState
    validation_errors: tuple[ValidationError, ...] = ()
    contract_version: int = DEPENDENCY_CONTRACT_VERSION


ProfileLookup = Callable[[str, int | None], DependencyProfile | None]


def resolve_requirements(
    model_id: str,
    bindings: Sequence[DependencyBinding],
    find_profile: ProfileLookup,
    platform: PlatformContext,
    backend_key: str | None = None,
    bound_ids: Collection[str] = (),
) -> DependencyResolution:
    """Validate each binding of `model_id` that applies to `platform`/`backend_key`.

    `bound_ids` are further ids the model's bindings may be stored under (its catalog id).

    - unknown_profile: the binding names a profile (or version) that does not exist;
    - invalid_profile: the profile breaks a rule of `validate_profile`;
    - profile_conflict: two bindings pin one package to different versions where both apply,
      or ask for different environment kinds.
    """
    applicable = sorted(
        (b for b in bindings if (b.model_id == model_id or b.model_id in bound_ids) and b.applies_to(platform, backend_key)),
        key=lambda b: b.binding_id,
    )
    drafts: list[dict] = []
    for binding in applicable:
        profile = find_profile(binding.profile_id, binding.profile_version)
        errors: list[ValidationError] = []
        state = ValidationState.RESOLVED
        resolved: tuple[ResolvedRequirement, ...] = ()
        if profile is None:
            state = ValidationState.UNKNOWN_PROFILE
            wanted = f"{binding.profile_id}" + (f" v{binding.profile_version}" if binding.profile_version else "")
            errors.append(ValidationError("unknown_profile", "binding", binding.binding_id, "profile_id",
                                          f"no dependency profile {wanted}"))
        else:
            errors.extend(validate_profile(profile, binding.binding_id))
            if profile.environment_kind != binding.environment_kind:
                errors.append(ValidationError(
                    "environment_kind_mismatch", "binding", binding.binding_id, "environment_kind",
                    f"binding wants {binding.environment_kind}, profile {profile.profile_id} is {profile.environment_kind}",
                ))
            if errors:
                state = ValidationState.INVALID_PROFILE
            resolved = tuple(ResolvedRequirement(r, _applies(r, platform)) for r in profile.requirements)
        drafts.append({"binding": binding, "profile": profile, "requirements": resolved,
                       "state": state, "errors": errors})

    _mark_conflicts(drafts)
    groups = tuple(
        BindingResolution(d["binding"], d["profile"], d["requirements"], d["state"], tuple(d["errors"]))
        for d in drafts
    )
    all_errors = tuple(e for g in groups for e in g.validation_errors)
    return DependencyResolution(
        model_id=model_id,
        platform=platform,
        backend_key=backend_key,
        groups=groups,
        validation_state=worst(g.validation_state for g in groups),
        validation_errors=all_errors,
    )


def _applies(requirement: Requirement, platform: PlatformContext) -> bool | None:
    if not requirement.markers:
        return True
    try:
        return evaluate_marker(parse_marker(requirement.markers), platform.marker_environment())
    except InvalidMarker:
        return None


def _mark_conflicts(drafts: list[dict]) -> None:
    """Pins of one package that differ across bindings, where both may apply, conflict."""
    usable = [d for d in drafts if d["profile"] is not None]
    pins: dict[str, list[tuple[dict, Requirement]]] = {}
    for draft in usable:
        for item in draft["requirements"]:
            if item.applies is False:
                continue
            pins.setdefault(canonical_name(item.requirement.name), []).append((draft, item.requirement))
    for name, entries in sorted(pins.items()):
        distinct = {_pin_version(req.pin) for _, req in entries}
        owners = {id(d) for d, _ in entries}
        if len(distinct) > 1 and len(owners) > 1:
            detail = ", ".join(sorted(f"{d['binding'].binding_id}: {req.pin}" for d, req in entries))
            for draft in {id(d): d for d, _ in entries}.values():
                draft["errors"].append(ValidationError(
                    "conflicting_pin", "model", draft["binding"].binding_id, "requirements",
                    f"{name} is pinned differently by the model's bindings ({detail})",
                ))
                draft["state"] = ValidationState.PROFILE_CONFLICT
    kinds = {d["binding"].environment_kind for d in drafts}
    if len(kinds) > 1:
        for draft in drafts:
            draft["errors"].append(ValidationError(
                "conflicting_environment_kind", "model", draft["binding"].binding_id, "environment_kind",
                f"the model's bindings ask for different environments: {sorted(kinds)}",
            ))
            draft["state"] = ValidationState.PROFILE_CONFLICT


def _pin_version(pin: str) -> str:
    return pin.strip().lstrip("=").strip()


# --------------------------------------------------------------------------
# PEP 508 environment markers (the subset pip understands, without `packaging`)
# --------------------------------------------------------------------------


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

