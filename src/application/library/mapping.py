"""App mapping use cases: preview, apply and clean the links from the library into apps' folders.

Links live in a per-model subfolder of each rule's target (`<root>/<target>/<model>/<file>`).
Every link mlxm makes is recorded; only recorded links (or dangling symlinks) are ever
removed. Apply records its links and tags the models (`linked:<app>`, which the library index
covers) in one unit of work; when that fails, the links it made are removed again.
"""

from __future__ import annotations

import os
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Callable

from application.errors import InvalidRequest, NotFound
from application.ports import Clock
from application.library.ports import LibraryUnitOfWork, Linker, MappingConfigStore
from domain.library.mapping import (
    AppMapping,
    ConflictPolicy,
    InvalidMappingConfig,
    LinkAction,
    LinkMethod,
    LinkRecord,
    PlannedLink,
    TargetState,
    alternate_folders,
    classify,
    dedupe_targets,
    model_files,
    model_folder_name,
    summarise,
)
from domain.library.models import Model

LINKED_TAG_PREFIX = "linked:"


def linked_tag(app: str) -> str:
    return f"{LINKED_TAG_PREFIX}{app}"


@dataclass(frozen=True)
class LinkPlan:
    app: str
    root: str
    entries: list[PlannedLink]
    problem: str | None = None  # the root cannot hold links (a file is in the way): apply will refuse

    @property
    def summary(self) -> dict[str, int]:
        return summarise(self.entries)


@dataclass
class ApplyReport:
    app: str
    root: str
    policy: ConflictPolicy
    created: list[tuple[PlannedLink, str]] = field(default_factory=list)  # (entry, method)
    replaced: list[tuple[PlannedLink, str]] = field(default_factory=list)
    existing: list[PlannedLink] = field(default_factory=list)
    skipped: list[tuple[PlannedLink, str]] = field(default_factory=list)  # (entry, reason)
    renamed: dict[str, str] = field(default_factory=dict)  # "<model>@<target>" -> new folder


@dataclass
class CleanReport:
    app: str
    removed: list[str] = field(default_factory=list)  # broken links deleted from disk
    forgotten: list[str] = field(default_factory=list)  # records of links that are gone or no longer ours


def _expand_root(root: str) -> str:
    return os.path.normpath(os.path.expanduser(root))


def _target_path(root: str, rule_target: str, folder: str, relative: str) -> str:
    parts = [root] + ([] if rule_target == "." else [rule_target]) + [folder, relative]
    return os.path.normpath(os.path.join(*parts))


def _target_dir(root: str, rule_target: str) -> str:
    return root if rule_target == "." else os.path.normpath(os.path.join(root, rule_target))


class MappingService:
    def __init__(
        self,
        uow_factory: Callable[[], LibraryUnitOfWork],
        configs: MappingConfigStore,
        linker: Linker,
        clock: Clock,
    ) -> None:
        self._uow_factory = uow_factory
        self._configs = configs
        self._linker = linker
        self._clock = clock

    # -- queries ---------------------------------------------------------------
    def survey_apps(self) -> tuple[list[AppMapping], list[InvalidMappingConfig]]:
        """The usable app configs, and what is wrong with each broken one (one broken file hides no other)."""
        return self._configs.survey()

    def mapping(self, app: str) -> AppMapping:
        mapping = self._configs.get(app)
        if mapping is None:
            known = ", ".join(m.app for m in self._safe_list()) or "none"
            raise NotFound(f"no mapping config for app {app!r} (known: {known}); add mapping-configs/{app}.json")
        return mapping

    def _safe_list(self) -> list[AppMapping]:
        try:
            return self._configs.survey()[0]
        except Exception:  # noqa: BLE001 - only used to decorate an error message
            return []

    def preview(self, app: str) -> LinkPlan:
        """For each target path: create, exists (ours), conflict (someone else's) or broken."""
        mapping = self.mapping(app)
        root = _expand_root(mapping.root)
        with self._uow_factory() as uow:
            return LinkPlan(mapping.app, root, self._plan(uow, mapping), self._linker.folder_problem(root))

    def _plan(self, uow: LibraryUnitOfWork, mapping: AppMapping) -> list[PlannedLink]:
        root = _expand_root(mapping.root)
        records = uow.links.list(app=mapping.app)
        recorded = {r.target_path: r for r in records}
        folders = {(r.model_id, r.rule_target): r.folder for r in records}
        entries: list[PlannedLink] = []
        for model in uow.models.list():
            if not model.is_installed:
                continue
            for rule_target in mapping.targets_for(model):
                folder = folders.get((model.model_id, rule_target), model_folder_name(model.model_id))
                entries.extend(self._entries(mapping.app, root, model, rule_target, folder, recorded))
        return dedupe_targets(entries)

    def _entries(self, app, root, model: Model, rule_target, folder, recorded) -> list[PlannedLink]:
        files = model_files(model) or self._linker.list_files(model.local_path)
        result = []
        for relative in files:
            source = os.path.join(model.local_path, relative)
            target = _target_path(root, rule_target, folder, relative)
            record = recorded.get(target)
            state = self._linker.inspect(target, source, record.method if record else None,
                                         record.fingerprint if record else None)
            result.append(PlannedLink(app, model.model_id, rule_target, relative, source, target,
                                      classify(state), record is not None))
        return result

    # -- commands --------------------------------------------------------------
    def apply(self, app: str, on_conflict: ConflictPolicy | str = ConflictPolicy.SKIP) -> ApplyReport:
        """Create the missing links (symlink, else hardlink, else copy) and record every one."""
        policy = ConflictPolicy(on_conflict)
        mapping = self.mapping(app)
        root = _expand_root(mapping.root)
        problem = self._linker.folder_problem(root)
        if problem:
            raise InvalidRequest(f"cannot link into app {mapping.app!r}: its root {root} is unusable ({problem})")
        report = ApplyReport(mapping.app, root, policy)
        made: list[str] = []
        asides: list[tuple[str, str]] = []
        with self._uow_factory() as uow:
            recorded = {r.target_path: r for r in uow.links.list(app=mapping.app)}
            models = {m.model_id: m for m in uow.models.list()}
            groups: dict[tuple[str, str], list[PlannedLink]] = defaultdict(list)
            for entry in self._plan(uow, mapping):
                groups[(entry.model_id, entry.rule_target)].append(entry)
            try:
                for (model_id, rule_target), entries in groups.items():
                    if policy is ConflictPolicy.RENAME and any(self._blocked(e) for e in entries):
                        entries = self._relocate(mapping.app, root, models[model_id], rule_target, entries,
                                                 recorded, report)
                    for entry in entries:
                        self._apply_entry(uow, entry, policy, report, made, asides)
                self._retag(uow, mapping.app, models)
                uow.commit()
            except BaseException:
                # The database keeps nothing of this run: take the files back too.
                for target in reversed(made):
                    self._linker.remove(target)
                for aside, target in reversed(asides):
                    self._linker.restore(aside, target)
                raise
        for aside, _ in asides:
            self._linker.remove(aside)  # the overwritten file, only once the new link is recorded
        return report

    @staticmethod
    def _blocked(entry: PlannedLink) -> bool:
        return entry.action is LinkAction.CONFLICT or (entry.action is LinkAction.BROKEN and not entry.recorded)

    def _relocate(self, app, root, model: Model, rule_target, entries, recorded, report) -> list[PlannedLink]:
        """The rename policy: move the whole model to the first `<folder>.N` without conflicts."""
        base = model_folder_name(model.model_id)
        for folder in alternate_folders(base):
            candidate = self._entries(app, root, model, rule_target, folder, recorded)
            if not any(self._blocked(e) for e in candidate):
                report.renamed[f"{model.model_id}@{rule_target}"] = folder
                return candidate
        return entries  # no free folder: the conflicts are skipped below

    def _apply_entry(self, uow, entry: PlannedLink, policy, report: ApplyReport, made, asides) -> None:
        if entry.action is LinkAction.EXISTS:
            report.existing.append(entry)
            if not entry.recorded:
                # Our file already there without a record (e.g. a lost database): adopt it.
                self._record(uow, entry, self._method_of(entry))
            return
        replace = entry.action is LinkAction.BROKEN and (entry.recorded or policy is not ConflictPolicy.SKIP)
        replace = replace or (entry.action is LinkAction.CONFLICT and policy is ConflictPolicy.OVERWRITE)
        if entry.action is not LinkAction.CREATE and not replace:
            reason = "someone else's file is there" if entry.action is LinkAction.CONFLICT else "dangling symlink"
            report.skipped.append((entry, reason))
            return
        if replace and self._linker.is_dir(entry.target_path):
            report.skipped.append((entry, "a directory is in the way"))
            return
        try:
            if replace:
                asides.append((self._linker.move_aside(entry.target_path), entry.target_path))
            method = self._linker.link(entry.source_path, entry.target_path)
        except OSError as exc:
            # A file where a folder should be, no permission...: the user's setup, not a server fault.
            raise InvalidRequest(f"cannot link {entry.target_path}: {exc.strerror or exc}") from None
        made.append(entry.target_path)
        self._record(uow, entry, method)
        (report.replaced if replace else report.created).append((entry, method.value))

    def _method_of(self, entry: PlannedLink) -> LinkMethod:
        return LinkMethod.SYMLINK if self._linker.readlink(entry.target_path) is not None else LinkMethod.HARDLINK

    def _record(self, uow, entry: PlannedLink, method: LinkMethod) -> None:
        # target = <root>/<rule target>/<folder>/<relative path>: the folder is what precedes the relative path.
        folder_path = entry.target_path[: len(entry.target_path) - len(entry.relative_path)].rstrip(os.sep)
        uow.links.add(LinkRecord(
            app=entry.app,
            model_id=entry.model_id,
            rule_target=entry.rule_target,
            folder=os.path.basename(folder_path),
            source_path=entry.source_path,
            target_path=entry.target_path,
            method=method,
            created_at=self._clock.now(),
            fingerprint=self._linker.fingerprint(entry.target_path) if method is LinkMethod.COPY else None,
        ))

    def _retag(self, uow: LibraryUnitOfWork, app: str, models: dict[str, Model]) -> None:
        """`linked:<app>` on exactly the models that have links into the app."""
        linked = {r.model_id for r in uow.links.list(app=app)}
        tag = linked_tag(app)
        for model_id, model in models.items():
            has = tag in model.tags
            if (model_id in linked) != has:
                from application.library.overlay_writes import inferred_value, record_inferred_in

                beneath = inferred_value(uow, model, "tags")
                record_inferred_in(uow, model, tags=[t for t in beneath if t != tag] + ([tag] if model_id in linked else []))
                uow.models.add(model)

    def clean(self, app: str) -> CleanReport:
        """Remove the app's broken links (dangling symlinks) and forget links that are gone."""
        mapping = self.mapping(app)
        root = _expand_root(mapping.root)
        report = CleanReport(mapping.app)
        with self._uow_factory() as uow:
            records = uow.links.list(app=mapping.app)
            folders = set()
            for record in records:
                folders.add(os.path.join(_target_dir(root, record.rule_target), record.folder))
                state = self._linker.inspect(record.target_path, record.source_path, record.method, record.fingerprint)
                if state is TargetState.DANGLING:
                    self._linker.remove(record.target_path)
                    report.removed.append(record.target_path)
                    uow.links.remove(record.target_path)
                elif state in (TargetState.MISSING, TargetState.OTHER):
                    report.forgotten.append(record.target_path)
                    uow.links.remove(record.target_path)
            for entry in self._plan(uow, mapping):
                if entry.action is LinkAction.BROKEN and entry.target_path not in report.removed:
                    self._linker.remove(entry.target_path)
                    report.removed.append(entry.target_path)
                    uow.links.remove(entry.target_path)
            for folder in sorted(folders):
                for path in self._linker.dangling_links(folder):
                    if path not in report.removed:
                        self._linker.remove(path)
                        report.removed.append(path)
            for path in report.removed + report.forgotten:
                self._linker.prune_empty_dirs(os.path.dirname(path), root)
            self._retag(uow, mapping.app, {m.model_id: m for m in uow.models.list()})
            uow.commit()
        return report


# -- the model delete path ------------------------------------------------------------


@dataclass(frozen=True)
class LinkRemoval:
    """Links of a model being deleted: decided before its files move, removed after commit."""

    ours: tuple[LinkRecord, ...]
    foreign: tuple[LinkRecord, ...]


def forget_model_links(uow: LibraryUnitOfWork, linker: Linker, model_id: str) -> LinkRemoval:
    """Inside the delete's unit of work: drop the model's link records and decide which files are ours.

    Call before the model's folder moves; `remove_link_files` after the commit. A target that
    someone replaced since is left alone.
    """
    ours, foreign = [], []
    for record in uow.links.list(model_id=model_id):
        state = linker.inspect(record.target_path, record.source_path, record.method, record.fingerprint)
        mine = state is TargetState.OURS or (
            state is TargetState.DANGLING and linker.readlink(record.target_path) == os.path.abspath(record.source_path)
        )
        (ours if mine else foreign).append(record)
        uow.links.remove(record.target_path)
    return LinkRemoval(tuple(ours), tuple(foreign))


def remove_link_files(linker: Linker, removal: LinkRemoval) -> list[str]:
    """Delete the link files decided as ours, then their per-model folders when empty."""
    removed = []
    for record in removal.ours:
        try:
            linker.remove(record.target_path)
        except OSError:
            continue
        removed.append(record.target_path)
        target_dir = os.path.dirname(record.target_path)
        stop_at = target_dir
        # Climb to the rule's target folder: `<target>/<folder>/<relative dirs...>`.
        marker = os.sep + record.folder + os.sep
        index = record.target_path.rfind(marker)
        if index >= 0:
            stop_at = record.target_path[:index]
        linker.prune_empty_dirs(target_dir, stop_at)
    return removed
