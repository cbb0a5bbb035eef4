"""App mapping: link library models into other apps' folders, by rules.

An `AppMapping` (one config file per app) has a root folder and rules. A rule selects
models by type, family and tags and names a target folder under the root. Every model gets
its own subfolder in each target, so two models' `model.safetensors` never collide.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from enum import Enum
from typing import Iterable, Iterator, Mapping, Sequence

from domain.enums import ModelType
from domain.errors import DomainError
from domain.library.importing import is_safe_relative_path
from domain.library.models import Model

_APP_NAME = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")


class InvalidMappingConfig(DomainError):
    def __init__(self, app: str, message: str, field: str | None = None) -> None:
        self.app = app
        self.field = field
        super().__init__(f"mapping config {app!r}: {message}")


class LinkAction(str, Enum):
    """What preview says about one target path."""

    CREATE = "create"  # nothing there yet
    EXISTS = "exists"  # already our link to this file
    CONFLICT = "conflict"  # someone else's file (or a link to something else)
    BROKEN = "broken"  # a dangling symlink: never "nothing there"

    def __str__(self) -> str:  # pragma: no cover - trivial
        return self.value


class TargetState(str, Enum):
    """What the filesystem holds at a target path, relative to the file we want to link."""

    MISSING = "missing"  # no entry at all (lexists is false)
    OURS = "ours"  # a symlink to the source, a hardlink of it, or our recorded copy
    DANGLING = "dangling"  # a symlink whose target does not exist
    OTHER = "other"  # any other file, directory or symlink


class ConflictPolicy(str, Enum):
    SKIP = "skip"
    OVERWRITE = "overwrite"  # replace the conflicting file (never a directory)
    RENAME = "rename"  # put the whole model into the next free `<folder>.N` subfolder

    def __str__(self) -> str:  # pragma: no cover - trivial
        return self.value


class LinkMethod(str, Enum):
    SYMLINK = "symlink"
    HARDLINK = "hardlink"
    COPY = "copy"

    def __str__(self) -> str:  # pragma: no cover - trivial
        return self.value


_ACTIONS = {
    TargetState.MISSING: LinkAction.CREATE,
    TargetState.OURS: LinkAction.EXISTS,
    TargetState.DANGLING: LinkAction.BROKEN,
    TargetState.OTHER: LinkAction.CONFLICT,
}


def classify(state: TargetState) -> LinkAction:
    return _ACTIONS[state]


@dataclass(frozen=True)
class MappingRule:
    """Selectors are ANDed; an empty selector matches every model. `exclude_tags` always wins."""

    target: str
    model_types: tuple[ModelType, ...] = ()
    families: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()
    exclude_tags: tuple[str, ...] = ()

    def matches(self, model: Model) -> bool:
        model_tags = {t.lower() for t in model.tags}
        if self.exclude_tags and model_tags & {t.lower() for t in self.exclude_tags}:
            return False
        if self.model_types and model.model_type not in self.model_types:
            return False
        if self.families and (model.family or "").lower() not in {f.lower() for f in self.families}:
            return False
        if self.tags and not model_tags & {t.lower() for t in self.tags}:
            return False
        return True


@dataclass(frozen=True)
class AppMapping:
    app: str
    root: str
    rules: tuple[MappingRule, ...]

    def targets_for(self, model: Model) -> list[str]:
        """The distinct target folders whose rules select `model`, in rule order."""
        targets: list[str] = []
        for rule in self.rules:
            if rule.matches(model) and rule.target not in targets:
                targets.append(rule.target)
        return targets


def validate_app_name(app: str) -> str:
    if not isinstance(app, str) or not _APP_NAME.fullmatch(app):
        raise InvalidMappingConfig(str(app), "the app name must be lower-case letters, digits, '.', '-' or '_'", "app")
    return app


def app_mapping_from_dict(data: Mapping, default_app: str | None = None) -> AppMapping:
    """Build and validate an `AppMapping` from a parsed JSON/TOML config."""
    app = data.get("app", default_app)
    validate_app_name(app)
    if default_app is not None and app != default_app:
        raise InvalidMappingConfig(app, f"the file is named {default_app!r} but declares app {app!r}", "app")
    root = data.get("root")
    if not isinstance(root, str) or not root.strip():
        raise InvalidMappingConfig(app, "'root' (the app's model folder) is required", "root")
    if not (root.strip().startswith("/") or root.strip().startswith("~")):
        raise InvalidMappingConfig(app, f"'root' must be an absolute path (or start with ~), got {root!r}", "root")
    raw_rules = data.get("rules")
    if not isinstance(raw_rules, list) or not raw_rules:
        raise InvalidMappingConfig(app, "'rules' must be a non-empty list", "rules")
    rules = []
    for index, raw in enumerate(raw_rules):
        where = f"rules[{index}]"
        if not isinstance(raw, Mapping):
            raise InvalidMappingConfig(app, f"{where} must be an object", where)
        unknown = set(raw) - {"target", "model_types", "families", "tags", "exclude_tags"}
        if unknown:
            raise InvalidMappingConfig(app, f"{where} has unknown keys {sorted(unknown)}", where)
        target = str(raw.get("target", "")).strip().strip("/")
        if target in {"", "."}:
            target = "."
        elif not is_safe_relative_path(target):
            raise InvalidMappingConfig(app, f"{where}.target {raw.get('target')!r} must stay inside the root", f"{where}.target")
        try:
            model_types = tuple(ModelType.parse(str(v)) for v in _strings(raw.get("model_types"), app, f"{where}.model_types"))
        except ValueError as exc:
            raise InvalidMappingConfig(app, f"{where}.model_types: {exc}", f"{where}.model_types") from None
        rules.append(
            MappingRule(
                target=target,
                model_types=model_types,
                families=tuple(_strings(raw.get("families"), app, f"{where}.families")),
                tags=tuple(_strings(raw.get("tags"), app, f"{where}.tags")),
                exclude_tags=tuple(_strings(raw.get("exclude_tags"), app, f"{where}.exclude_tags")),
            )
        )
    return AppMapping(app=app, root=root.strip(), rules=tuple(rules))


def app_mapping_to_dict(mapping: AppMapping) -> dict:
    return {
        "app": mapping.app,
        "root": mapping.root,
        "rules": [
            {
                "target": rule.target,
                "model_types": [t.value for t in rule.model_types],
                "families": list(rule.families),
                "tags": list(rule.tags),
                "exclude_tags": list(rule.exclude_tags),
            }
            for rule in mapping.rules
        ],
    }


def _strings(value: object, app: str, field: str) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return list(value)
    raise InvalidMappingConfig(app, f"{field} must be a list of strings", field)


def model_folder_name(model_id: str) -> str:
    """A model's subfolder in a target: repo ids like `org/name` become `org--name`."""
    return model_id.replace("/", "--")


def alternate_folders(folder: str, limit: int = 100) -> Iterator[str]:
    """`folder`, then `folder.2`, `folder.3`, ... for the rename policy."""
    yield folder
    for n in range(2, limit + 1):
        yield f"{folder}.{n}"


@dataclass(frozen=True)
class LinkRecord:
    """A link mlxm made: the only targets it may later remove.

    `folder` is the per-model subfolder under the rule target (`tiny`, or `tiny.2` after a rename).
    """

    app: str
    model_id: str
    rule_target: str
    folder: str
    source_path: str
    target_path: str
    method: LinkMethod
    created_at: datetime | None = None
    id: int | None = None
    # A copy's identity when mlxm made it (device, inode, size, mtime): a same-size file the
    # user put there later is not ours. None for symlinks and hardlinks (they prove themselves).
    fingerprint: str | None = None


@dataclass(frozen=True)
class PlannedLink:
    app: str
    model_id: str
    rule_target: str
    relative_path: str
    source_path: str
    target_path: str
    action: LinkAction
    recorded: bool = False


def summarise(plan: Sequence[PlannedLink]) -> dict[str, int]:
    counts = {action.value: 0 for action in LinkAction}
    for entry in plan:
        counts[entry.action.value] += 1
    return counts


def model_files(model: Model) -> list[str]:
    """Relative paths of the model's recorded files, safe ones only, sorted."""
    return sorted({f.path for f in model.files if is_safe_relative_path(f.path)})


def dedupe_targets(entries: Iterable[PlannedLink]) -> list[PlannedLink]:
    seen: set[str] = set()
    result = []
    for entry in entries:
        if entry.target_path not in seen:
            seen.add(entry.target_path)
            result.append(entry)
    return result
