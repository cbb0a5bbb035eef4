"""The model catalog: immutable canonical IDs, aliases, ordered sources.

Invariants are checked when a `Catalog` is constructed, so any catalog the rest of the
system holds is known to be consistent.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass
from typing import Callable, Iterable, Mapping

from domain.enums import ModelType, SourceKind
from domain.errors import InvalidCanonicalId, InvalidCatalog, UnknownModel

CANONICAL_ID_PATTERN = re.compile(r"^[a-z0-9][a-z0-9.-]*-v[0-9]+$")
# Each part 1-96 characters, as the hub (and huggingface_hub's validate_repo_id) allows: a longer id names
# no repository, and as a staging file name it would fail the pull with ENAMETOOLONG.
_REPO_ID_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,95}/[A-Za-z0-9][A-Za-z0-9._-]{0,95}$")


def validate_canonical_id(value: str) -> str:
    if not isinstance(value, str) or not CANONICAL_ID_PATTERN.fullmatch(value):
        raise InvalidCanonicalId(value)
    return value


def is_repo_id(value: str) -> bool:
    """`org/name`, the shape of a Hugging Face repository id."""
    return bool(_REPO_ID_PATTERN.fullmatch(value))


def split_repo_revision(value: str) -> tuple[str, str | None]:
    """`org/name@rev` -> (`org/name`, `rev`); the revision is optional."""
    if "@" in value:
        repo, _, revision = value.partition("@")
        return repo, (revision or None)
    return value, None


@dataclass(frozen=True)
class ModelSource:
    kind: SourceKind
    value: str
    priority: int = 100
    enabled: bool = True
    allow_fallback: bool = True

    def __post_init__(self) -> None:
        object.__setattr__(self, "kind", SourceKind(self.kind))
        if not self.value:
            raise InvalidCatalog("a source needs a value")

    @property
    def label(self) -> str:
        return f"{self.kind.value}:{self.value}"


@dataclass(frozen=True)
class KnownFile:
    path: str
    size: int | None = None
    sha256: str | None = None


@dataclass(frozen=True)
class CatalogModel:
    id: str
    display_name: str
    model_type: ModelType
    family: str
    sources: tuple[ModelSource, ...]
    aliases: tuple[str, ...] = ()
    files: tuple[KnownFile, ...] = ()
    revision: str | None = None
    size_bytes: int | None = None
    license: str | None = None
    description: str = ""
    tags: tuple[str, ...] = ()
    supersedes: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        validate_canonical_id(self.id)
        object.__setattr__(self, "model_type", ModelType(self.model_type))
        object.__setattr__(self, "sources", tuple(self.sources))
        object.__setattr__(self, "aliases", tuple(self.aliases))
        object.__setattr__(self, "files", tuple(self.files))
        object.__setattr__(self, "tags", tuple(self.tags))
        object.__setattr__(self, "supersedes", tuple(self.supersedes))

    @property
    def repo_ids(self) -> tuple[str, ...]:
        return tuple(s.value for s in self.sources if s.kind is SourceKind.HUGGINGFACE_REPO)

    @property
    def primary_repo_id(self) -> str | None:
        for source in failover_plan(self.sources):
            if source.kind is SourceKind.HUGGINGFACE_REPO:
                return source.value
        return self.repo_ids[0] if self.repo_ids else None


def failover_plan(sources: Iterable[ModelSource]) -> list[ModelSource]:
    """Enabled sources, lowest priority number first; ties keep catalog order."""
    indexed = [(s.priority, i, s) for i, s in enumerate(sources) if s.enabled]
    return [s for _, _, s in sorted(indexed, key=lambda t: (t[0], t[1]))]


def run_failover(
    sources: Iterable[ModelSource],
    attempt: Callable[[ModelSource], object],
    is_fatal: Callable[[Exception], bool] = lambda exc: False,
) -> tuple[object, list[tuple[ModelSource, Exception]]]:
    """Try each source of the plan in order until one succeeds.

    A failing source whose `allow_fallback` is false ends the chain, as does an error
    that `is_fatal` recognises. Returns the first success and the failures before it;
    raises `ChainExhausted` with every failure when nothing succeeded.
    """
    failures: list[tuple[ModelSource, Exception]] = []
    for source in failover_plan(sources):
        try:
            return attempt(source), failures
        except Exception as exc:  # noqa: BLE001 - each source's error is recorded, not lost
            failures.append((source, exc))
            if is_fatal(exc) or not source.allow_fallback:
                break
    raise ChainExhausted(failures)


class ChainExhausted(Exception):
    def __init__(self, failures: list[tuple[ModelSource, Exception]]) -> None:
        self.failures = failures
        super().__init__("; ".join(f"{s.label}: {e}" for s, e in failures) or "no enabled source")


class Catalog:
    """A consistent set of catalog models with alias and repo-id resolution."""

    def __init__(self, models: Iterable[CatalogModel], default_model_id: str, version: int = 1) -> None:
        self._models: dict[str, CatalogModel] = {}
        self.version = version
        duplicates: list[str] = []
        for model in models:
            if model.id in self._models:
                duplicates.append(model.id)
            self._models[model.id] = model
        if duplicates:
            raise InvalidCatalog("duplicate canonical ids", sorted(set(duplicates)))

        self._aliases: dict[str, str] = {}
        self_aliases = [m.id for m in self._models.values() if any(a.lower() == m.id for a in m.aliases)]
        if self_aliases:
            raise InvalidCatalog("a model lists its own id as an alias", self_aliases)
        collisions: list[str] = []
        for model in self._models.values():
            for alias in model.aliases:
                key = alias.lower()
                if key in self._models or key in self._aliases:
                    collisions.append(alias)
                    continue
                self._aliases[key] = model.id
        if collisions:
            raise InvalidCatalog("aliases collide with another alias or canonical id", collisions)

        no_source = [m.id for m in self._models.values() if not failover_plan(m.sources)]
        if no_source:
            raise InvalidCatalog("models without an enabled source", no_source)

        missing_supersedes = [
            f"{m.id}->{old}" for m in self._models.values() for old in m.supersedes if old not in self._models
        ]
        if missing_supersedes:
            raise InvalidCatalog("superseded ids that do not exist", missing_supersedes)

        if default_model_id not in self._models:
            raise InvalidCatalog("the default model does not exist", [default_model_id])
        self.default_model_id = default_model_id

        self._repo_ids: dict[str, str] = {}
        for model in self._models.values():
            for repo in model.repo_ids:
                self._repo_ids.setdefault(repo.lower(), model.id)

    # -- collection behaviour -------------------------------------------------
    def __iter__(self):
        return iter(self._models.values())

    def __len__(self) -> int:
        return len(self._models)

    def __contains__(self, model_id: object) -> bool:
        return model_id in self._models

    @property
    def models(self) -> list[CatalogModel]:
        return list(self._models.values())

    @property
    def aliases(self) -> Mapping[str, str]:
        return dict(self._aliases)

    @property
    def default(self) -> CatalogModel:
        return self._models[self.default_model_id]

    def get(self, model_id: str) -> CatalogModel | None:
        return self._models.get(model_id)

    # -- resolution -----------------------------------------------------------
    def find(self, name: str) -> CatalogModel | None:
        """Canonical ID, alias (case-insensitive) or HF repo id; None when unknown."""
        if not name:
            return None
        if name in self._models:
            return self._models[name]
        key = name.strip().lower()
        if key in self._models:
            return self._models[key]
        if key in self._aliases:
            return self._models[self._aliases[key]]
        repo, _ = split_repo_revision(key)
        if repo in self._repo_ids:
            return self._models[self._repo_ids[repo]]
        return None

    def resolve(self, name: str) -> CatalogModel:
        model = self.find(name)
        if model is None:
            raise UnknownModel(name, self.suggestions(name))
        return model

    def suggestions(self, name: str, limit: int = 3) -> list[str]:
        """Closest known names, canonical IDs and aliases alike."""
        candidates = list(self._models) + list(self._aliases)
        key = (name or "").lower()
        close = difflib.get_close_matches(key, candidates, n=limit, cutoff=0.5)
        if len(close) < limit:
            close += [c for c in candidates if key and key in c and c not in close][: limit - len(close)]
        return close

    def superseded_by(self, model_id: str) -> list[CatalogModel]:
        """Catalog models that declare themselves newer revisions of `model_id`."""
        return [m for m in self._models.values() if model_id in m.supersedes]


@dataclass(frozen=True)
class SelectionResult:
    model_id: str
    changed: bool
    reason: str = ""


def normalise_selection(
    catalog: Catalog,
    selection: str | None,
    installed: Iterable[str] = (),
    sizes: Mapping[str, int] | None = None,
) -> SelectionResult:
    """Turn a persisted selection into a canonical ID; `changed` means write it back.

    An alias becomes its canonical ID. An unknown or empty selection becomes the best
    installed catalog model (the default first, then the smallest), else the default.
    """
    if selection and selection in catalog:
        return SelectionResult(selection, False)
    found = catalog.find(selection) if selection else None
    if found is not None:
        return SelectionResult(found.id, True, f"alias {selection!r} -> {found.id}")

    installed_ids = [i for i in dict.fromkeys(installed) if i in catalog]
    sizes = sizes or {}
    if catalog.default_model_id in installed_ids:
        choice = catalog.default_model_id
    elif installed_ids:
        def size_of(model_id: str) -> int:
            known = sizes.get(model_id)
            if known is None:
                known = catalog.get(model_id).size_bytes  # type: ignore[union-attr]
            return known if known is not None else 2**62

        choice = min(installed_ids, key=lambda i: (size_of(i), i))
    else:
        choice = catalog.default_model_id
    why = "empty selection" if not selection else f"unknown selection {selection!r}"
    return SelectionResult(choice, True, why)


def catalog_from_dict(data: Mapping) -> Catalog:
    """Build a `Catalog` from the embedded JSON shape (used by every provider)."""
    models = []
    for entry in data.get("models", []):
        models.append(
            CatalogModel(
                id=entry["id"],
                display_name=entry.get("display_name", entry["id"]),
                model_type=ModelType(entry["type"]),
                family=entry.get("family", ""),
                sources=tuple(
                    ModelSource(
                        kind=SourceKind(s["kind"]),
                        value=s["value"],
                        priority=int(s.get("priority", 100)),
                        enabled=bool(s.get("enabled", True)),
                        allow_fallback=bool(s.get("allow_fallback", True)),
                    )
                    for s in entry.get("sources", [])
                ),
                aliases=tuple(entry.get("aliases", [])),
                files=tuple(
                    KnownFile(path=f["path"], size=f.get("size"), sha256=f.get("sha256"))
                    for f in entry.get("files", [])
                ),
                revision=entry.get("revision"),
                size_bytes=entry.get("size_bytes"),
                license=entry.get("license"),
                description=entry.get("description", ""),
                tags=tuple(entry.get("tags", [])),
                supersedes=tuple(entry.get("supersedes", [])),
            )
        )
    return Catalog(models, default_model_id=data["default_model"], version=int(data.get("version", 1)))


def catalog_model_to_dict(model: CatalogModel) -> dict:
    return {
        "id": model.id,
        "display_name": model.display_name,
        "type": model.model_type.value,
        "family": model.family,
        "aliases": list(model.aliases),
        "sources": [
            {
                "kind": s.kind.value,
                "value": s.value,
                "priority": s.priority,
                "enabled": s.enabled,
                "allow_fallback": s.allow_fallback,
            }
            for s in model.sources
        ],
        "files": [{"path": f.path, "size": f.size, "sha256": f.sha256} for f in model.files],
        "revision": model.revision,
        "size_bytes": model.size_bytes,
        "license": model.license,
        "description": model.description,
        "tags": list(model.tags),
        "supersedes": list(model.supersedes),
    }
