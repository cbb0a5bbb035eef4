"""The dependency-requirements contract, its values: which packages a model needs, per binding.

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
from typing import Iterable

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


# The Python version a consumer names (`--python`, `?python=`): markers compare numeric versions only
# (markers._is_version), so `abc` or `3.11rc1` would make every python_version marker "unknown".
PYTHON_VERSION_FORMS = "MAJOR.MINOR or MAJOR.MINOR.MICRO, e.g. 3.11 or 3.11.7"
_PYTHON_VERSION = re.compile(r"[0-9]+\.[0-9]+(\.[0-9]+)?")


def is_python_version(value: str) -> bool:
    return bool(_PYTHON_VERSION.fullmatch(value))


# The platform a consumer names (`--platform`, `?platform=`): `sys_platform` linux/darwin/win32 (`platform_system`
# Linux/Darwin/Windows) and a machine, arm64 or x86_64. Other spellings of the same platform are taken; anything
# else (`beos`, `linux-sparc`) would make every platform marker quietly false.
_SYSTEMS = {"linux": "linux", "darwin": "darwin", "win32": "win32",
            "macos": "darwin", "mac": "darwin", "osx": "darwin", "windows": "win32"}
_MACHINES = {"arm64": "arm64", "x86_64": "x86_64", "aarch64": "arm64", "amd64": "x86_64"}
# What `platform.machine()` (so a `platform_machine` marker) says on that system: arm64 is `aarch64` on Linux and
# `ARM64` on Windows, x86_64 is `AMD64` on Windows; markers are written in those names.
_REPORTED_MACHINES = {("linux", "arm64"): "aarch64", ("win32", "arm64"): "ARM64", ("win32", "x86_64"): "AMD64"}
PLATFORM_FORMS = ("SYSTEM or SYSTEM-MACHINE, SYSTEM one of linux, darwin, win32 (or macos, windows) and "
                  "MACHINE one of arm64, x86_64 (or aarch64, amd64), e.g. darwin-arm64 or linux-x86_64")


def is_platform(value: str) -> bool:
    system, dash, machine = value.strip().lower().partition("-")
    return system in _SYSTEMS and (not dash or machine in _MACHINES)


PLATFORM_SELECTOR_FORMS = ("*, SYSTEM, SYSTEM-MACHINE, SYSTEM-* or *-MACHINE, SYSTEM one of linux, darwin, win32 "
                           "(or macos, windows) and MACHINE one of arm64, x86_64 (or aarch64, amd64), or a wildcard "
                           "matching one of them, e.g. darwin-arm64, linux-* or darwin-arm*")


def _selector_part(part: str, names: dict[str, str]) -> str | None:
    """A known name in the markers' spelling, a wildcard as given when it matches some known name, else None."""
    if part in names:
        return names[part]
    return part if any(fnmatch.fnmatchcase(name, part) for name in names) else None


def platform_selector(value: str) -> str | None:
    """The selector a binding stores for `value` (`macos-aarch64` -> `darwin-arm64`, `lin*` as given); None when
    a part matches no known system or machine (`linx`, `darwin-arm`: a binding that would never apply)."""
    system, dash, machine = value.strip().lower().partition("-")
    system = _selector_part(system, _SYSTEMS)
    machine = _selector_part(machine, _MACHINES) if dash else ""
    if system is None or machine is None:
        return None
    if not dash:
        return system
    return "*" if system == machine == "*" else f"{system}-{machine}"


def _names(value: str, names: dict[str, str]) -> set[str]:
    """Every spelling of `value`'s system or machine (`aarch64` -> arm64, aarch64), lower case."""
    canonical = names.get(value.lower(), value.lower())
    return {canonical} | {alias for alias, name in names.items() if name == canonical}


@dataclass(frozen=True)
class PlatformContext:
    """Where the consumer will run: `system` (linux/darwin/win32), `machine` as Python reports it on that system
    (`aarch64` on Linux, `AMD64` on Windows: what `platform_machine` markers compare), Python version.

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
        system, machine = _SYSTEMS.get(system, system), _MACHINES.get(machine, machine)
        return cls(system or None, _REPORTED_MACHINES.get((system, machine), machine) or None, python_version)

    @property
    def label(self) -> str:
        machine = self.machine and _MACHINES.get(self.machine.lower(), self.machine.lower())
        return "-".join(p for p in (self.system or "*", machine) if p)

    def matches(self, selector: str) -> bool:
        """`*`, `linux`, `darwin-arm64`, `linux-*` (fnmatch on `system-machine`). Unknown parts match. Any
        spelling matches (`macos`, `linux-aarch64`: rows stored before selectors were normalised)."""
        selector = (selector or "*").strip().lower()
        if selector == "*":
            return True
        sel_system, _, sel_machine = selector.partition("-")
        if self.system is not None and not any(
                fnmatch.fnmatchcase(name, sel_system) for name in _names(self.system, _SYSTEMS)):
            return False
        if sel_machine and self.machine is not None and not any(
                fnmatch.fnmatchcase(name, sel_machine) for name in _names(self.machine, _MACHINES)):
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


_NAME = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9._-]*[A-Za-z0-9])?$")


def canonical_name(name: str) -> str:
    """PEP 503 normalisation: `MLX_LM` and `mlx-lm` are the same package."""
    return re.sub(r"[-_.]+", "-", name).lower()
