"""SQLAlchemy repositories: collections over one session. They flush, never commit.

Records are mapped to and from the domain dataclasses here. Domain objects handed out are
tracked (with a snapshot): when the unit of work commits, every tracked object that changed
is written back, so "get, mutate, commit" works as it does with the in-memory fakes.
"""

from __future__ import annotations

import json
import logging
from dataclasses import fields, replace
from datetime import datetime, timezone
from typing import Callable, Generic, Iterable, TypeVar

from sqlalchemy import bindparam, delete, func, literal, null, or_, select, union_all
from sqlalchemy.exc import IntegrityError as SqlIntegrityError
from sqlalchemy.orm import Session

from adapters.sqlalchemy.search_index import CAPABILITY_FLAGS, LibrarySearchIndex, facet_token
from adapters.sqlalchemy.tables import (
    AudioCapabilityRecord,
    AudioProfileRecord,
    BackendMappingRecord,
    CapabilityRecord,
    DownloadRecord,
    EmbeddingCapabilityRecord,
    InferenceProfileRecord,
    ModelAliasRecord,
    ModelFileRecord,
    ModelRecord,
    ModelTagRecord,
    ProfileRecord,
    SettingRecord,
    TextGenCapabilityRecord,
    VisionCapabilityRecord,
)
from application.errors import Conflict
from application.ports.repositories import ModelQuery, Page
from domain.capabilities import ModelCapabilities, capabilities_for
from domain.downloads import Download
from domain.enums import BackendType, DownloadStatus, ModelType, PatternType, ProfileType
from domain.errors import DomainError
from domain.models import Model, ModelFile
from domain.params import AudioDefaults, InferenceContext, InferenceParams
from domain.profiles import PROFILE_CLASSES, ExecutionProfile
from domain.routing import BackendMapping

T = TypeVar("T")

CAPABILITY_RECORDS: dict[ModelType, type[CapabilityRecord]] = {
    ModelType.TEXT_GEN: TextGenCapabilityRecord,
    ModelType.VISION: VisionCapabilityRecord,
    ModelType.EMBEDDINGS: EmbeddingCapabilityRecord,
    ModelType.AUDIO: AudioCapabilityRecord,
}

# Capability filter name -> the subclass table columns that carry it (plain Core columns:
# the filter is a join of model_capabilities with the subclass table, nothing polymorphic).
_SUBCLASS_BY_NAME = {record.__tablename__: record.__table__ for record in CAPABILITY_RECORDS.values()}
CAPABILITY_COLUMNS: dict[str, list] = {
    name: [_SUBCLASS_BY_NAME[table].c[flag] for table, flag in flags] for name, flags in CAPABILITY_FLAGS.items()
}

PROFILE_RECORDS: dict[ProfileType, type[ProfileRecord]] = {
    ProfileType.BASE: ProfileRecord,
    ProfileType.INFERENCE: InferenceProfileRecord,
    ProfileType.AUDIO: AudioProfileRecord,
}


def _flush(session: Session) -> None:
    """Flush; a broken constraint (e.g. a duplicate unique name) becomes a `Conflict` users can act on.

    No rollback here: the unit of work owns the transaction and rolls it back as a whole.
    """
    try:
        session.flush()
    except SqlIntegrityError as exc:
        raise Conflict(f"conflicts with stored data: {exc.orig}") from exc


def _now() -> datetime:
    return datetime.now(timezone.utc)


class _Tracker(Generic[T]):
    """Domain objects handed out in this unit of work, keyed by primary key.

    The snapshot is the object's repr: dataclass reprs show every value (nested ones too),
    and taking one costs a fraction of a deepcopy, which matters for pages of search results.
    """

    def __init__(self) -> None:
        self._items: dict[object, tuple[T, str]] = {}

    def track(self, key: object, obj: T) -> T:
        existing = self._items.get(key)
        if existing is not None:
            return existing[0]
        self._items[key] = (obj, repr(obj))
        return obj

    def retrack(self, key: object, obj: T) -> None:
        self._items[key] = (obj, repr(obj))

    def forget(self, key: object) -> None:
        self._items.pop(key, None)

    def changed(self) -> list[T]:
        return [obj for obj, snapshot in list(self._items.values()) if repr(obj) != snapshot]


def _sync_children(current: list, wanted_keys: list, child_key: Callable, build: Callable, update: Callable) -> list:
    """Keep child rows whose key stays, update them, drop the rest, add new ones.

    Rewriting in place avoids delete-then-insert of the same unique key inside one flush.
    """
    by_key = {child_key(child): child for child in current}
    result = []
    for position, key in enumerate(wanted_keys):
        child = by_key.pop(key, None)
        if child is None:
            child = build(key)
        update(child, key, position)
        result.append(child)
    return result


# ------------------------------------------------------------------------------ models


def _unique(values: Iterable[str]) -> list[str]:
    seen: dict[str, None] = {}
    for value in values:
        if value and value not in seen:
            seen[value] = None
    return list(seen)


_MODELS = ModelRecord.__table__
_CAPABILITIES = CapabilityRecord.__table__
_ALIASES = ModelAliasRecord.__table__
_TAGS = ModelTagRecord.__table__
_FILES = ModelFileRecord.__table__
_SUBCLASS_TABLES = {model_type: record.__table__ for model_type, record in CAPABILITY_RECORDS.items()}


# Precomputed once: building enums and column lists per row shows up in search timings.
_MODEL_TYPE_BY_VALUE = {t.value: t for t in ModelType}
_STATUS_BY_VALUE = {s.value: s for s in DownloadStatus}
_CAPABILITY_LABELS = {
    model_type: [(c.name, f"{table.name}__{c.name}") for c in table.columns if c.name != "id"]
    for model_type, table in _SUBCLASS_TABLES.items()
}


def _model_rows_select():
    """models LEFT JOIN its capability row and every subclass table: one row per model."""
    columns = [*_MODELS.columns, _CAPABILITIES.c.capability_type, _CAPABILITIES.c.probed_at,
               _CAPABILITIES.c.probe_version, _CAPABILITIES.c.model_family]
    joined = _MODELS.outerjoin(_CAPABILITIES, _CAPABILITIES.c.model_pk == _MODELS.c.id)
    for model_type, table in _SUBCLASS_TABLES.items():
        joined = joined.outerjoin(table, table.c.id == _CAPABILITIES.c.id)
        columns += [table.c[name].label(label) for name, label in _CAPABILITY_LABELS[model_type]]
    return select(*columns).select_from(joined)


_MODEL_ROWS = _model_rows_select()
_MAX_ID_PARAMETERS = 500


def _children_select(owners):
    """Aliases, tags and files of the owners in ONE statement (a page load is then two queries)."""

    def part(kind: str, table, *values):
        padded = list(values) + [null()] * (5 - len(values))
        return select(literal(kind).label("kind"), table.c.model_pk, table.c.position,
                      *(value.label(f"v{i}") for i, value in enumerate(padded))).where(table.c.model_pk.in_(owners))

    return union_all(
        part("alias", _ALIASES, _ALIASES.c.alias),
        part("tag", _TAGS, _TAGS.c.tag),
        part("file", _FILES, _FILES.c.path, _FILES.c.size, _FILES.c.sha256, _FILES.c.revision, _FILES.c.source),
    ).order_by("model_pk", "position")


# Page loads by id, built once with an expanding parameter (SQLAlchemy reuses the compiled form).
_ROWS_BY_IDS = _MODEL_ROWS.where(_MODELS.c.id.in_(bindparam("ids", expanding=True)))
_CHILDREN_BY_IDS = _children_select(bindparam("ids", expanding=True))
# On SQLite the page's ids travel as one JSON array: the statement text never changes, so
# it is compiled once and the driver's statement cache reuses it (an expanding IN re-renders
# the SQL on every call, ~0.2 ms each on a page of 50).
_JSON_IDS = select(func.json_each(bindparam("ids_json")).table_valued("value").c.value)
_ROWS_BY_JSON_IDS = _MODEL_ROWS.where(_MODELS.c.id.in_(_JSON_IDS))
_CHILDREN_BY_JSON_IDS = _children_select(_JSON_IDS)


# Positions in a `_MODEL_ROWS` row: rows are read by index (attribute access on a Row costs
# about a microsecond each, which was a third of a search's time for a page of 50).
_ROW_POSITION = {column.name: position for position, column in enumerate(_MODEL_ROWS.selected_columns)}
_CAPABILITY_POSITIONS = {
    model_type: [(name, _ROW_POSITION[label]) for name, label in labels]
    for model_type, labels in _CAPABILITY_LABELS.items()
}
_MODEL_POSITIONS = tuple(_ROW_POSITION[name] for name in (
    "id", "model_id", "repo_id", "canonical_id", "model_type", "family", "local_path", "size_bytes", "status",
    "revision", "source", "description", "downloaded_at", "last_used_at", "managed", "review_reasons",
    "capability_type", "probed_at", "probe_version", "model_family",
))


def _capabilities_from_row(row) -> ModelCapabilities | None:
    position = _ROW_POSITION
    capability_type = row[position["capability_type"]]
    if capability_type is None:
        return None
    model_type = _MODEL_TYPE_BY_VALUE[capability_type]
    values = {name: row[index] for name, index in _CAPABILITY_POSITIONS[model_type]}
    return capabilities_for(model_type, probed_at=row[position["probed_at"]],
                            probe_version=row[position["probe_version"]],
                            model_family=row[position["model_family"]], **values)


class SqlAlchemyModelRepository:
    """The library. Every write also rewrites the model's search-index row (same transaction).

    Reads use Core queries (one row per model plus one query per child table) so that a page
    of search results costs a handful of indexed lookups; writes go through the ORM records.
    """

    def __init__(self, session: Session) -> None:
        self._session = session
        self._index = LibrarySearchIndex(session)
        self._tracker: _Tracker[Model] = _Tracker()
        self._ids_as_json = session.get_bind().dialect.name == "sqlite"

    # -- reading
    def _load(self, *conditions, order_by=None) -> list[Model]:
        statement = _MODEL_ROWS.where(*conditions)
        if order_by is not None:
            statement = statement.order_by(order_by)
        return self._build(self._session.execute(statement).all(), conditions)

    def _load_ids(self, ids: list[int]) -> list[Model]:
        """Models with these ids (a page of results), in no particular order."""
        if self._ids_as_json:
            ids_json = json.dumps(ids)
            rows = self._session.execute(_ROWS_BY_JSON_IDS, {"ids_json": ids_json}).all()
            children = self._session.execute(_CHILDREN_BY_JSON_IDS, {"ids_json": ids_json}).all() if rows else []
            return self._build(rows, None, children)
        return self._build(self._session.execute(_ROWS_BY_IDS, {"ids": ids}).all(), None)

    def _build(self, rows, conditions, children=None) -> list[Model]:
        if not rows:
            return []
        ids = [row[0] for row in rows]  # models.id is the first column
        if children is None and (len(ids) <= _MAX_ID_PARAMETERS or conditions is None):
            children = self._session.execute(_CHILDREN_BY_IDS, {"ids": ids}).all()
        elif children is None:  # a long list goes by the same conditions instead (bound-parameter limits)
            children = self._session.execute(_children_select(select(_MODELS.c.id).where(*conditions))).all()
        aliases: dict[int, list] = {}
        tags: dict[int, list] = {}
        files: dict[int, list] = {}
        by_kind = {"alias": aliases, "tag": tags, "file": files}
        for kind, model_pk, _position, v0, v1, v2, v3, v4 in children:
            if kind == "file":
                files.setdefault(model_pk, []).append(ModelFile(v0, v1, v2, v3, v4))
            else:
                by_kind[kind].setdefault(model_pk, []).append(v0)
        positions = _MODEL_POSITIONS
        models = []
        for row in rows:
            (pk, model_id, repo_id, canonical_id, model_type, family, local_path, size_bytes, status, revision,
             source, description, downloaded_at, last_used_at, managed, review_reasons, capability_type,
             _probed_at, _probe_version, _model_family) = [row[i] for i in positions]
            model = Model(
                model_id=model_id, repo_id=repo_id, canonical_id=canonical_id,
                model_type=_MODEL_TYPE_BY_VALUE[model_type] if model_type else None, family=family,
                local_path=local_path, size_bytes=size_bytes, status=_STATUS_BY_VALUE[status],
                revision=revision, source=source, aliases=aliases.get(pk, []), tags=tags.get(pk, []),
                description=description or "", downloaded_at=downloaded_at, last_used_at=last_used_at,
                managed=bool(managed),
                capabilities=_capabilities_from_row(row) if capability_type is not None else None,
                files=files.get(pk, []), review_reasons=list(review_reasons or []), id=pk,
            )
            models.append(self._tracker.track(pk, model))
        return models

    def get(self, model_id: str) -> Model | None:
        found = self._load(_MODELS.c.model_id == model_id)
        return found[0] if found else None

    def find(self, name: str) -> Model | None:
        """By model id, canonical id, repo id or alias; exact spelling first, then any case."""
        exact = self.get(name)
        if exact is not None:
            return exact
        # Exact spellings use the indexes; only a miss pays for the case-insensitive comparison.
        by_alias = select(_ALIASES.c.model_pk).where(_ALIASES.c.alias == name)
        found = self._load(
            or_(_MODELS.c.canonical_id == name, _MODELS.c.repo_id == name, _MODELS.c.id.in_(by_alias)),
            order_by=_MODELS.c.model_id,
        )
        if found:
            return found[0]
        key = name.lower()
        by_alias_key = select(_ALIASES.c.model_pk).where(_ALIASES.c.alias_key == key)
        found = self._load(
            or_(
                func.lower(_MODELS.c.model_id) == key,
                func.lower(_MODELS.c.canonical_id) == key,
                func.lower(_MODELS.c.repo_id) == key,
                _MODELS.c.id.in_(by_alias_key),
            ),
            order_by=_MODELS.c.model_id,
        )
        return found[0] if found else None

    def list(self) -> list[Model]:
        return self._load(order_by=_MODELS.c.model_id)

    def with_capability(self, capability: str, model_type: ModelType | None = None) -> list[Model]:
        """Models whose capabilities say yes to `capability` (e.g. text-gen models with native tools).

        A plain join of `models`, `model_capabilities` and the subclass table(s).
        """
        return self._load(self._capability_filter(capability, model_type), order_by=_MODELS.c.model_id)

    @staticmethod
    def _capability_filter(capability: str, model_type: ModelType | None = None):
        """EXISTS (model_capabilities JOIN <subclass> WHERE <flag> IS true) for the current model."""
        columns = CAPABILITY_COLUMNS.get(capability, [])
        if model_type is not None:
            wanted = _SUBCLASS_TABLES[ModelType(model_type)]
            columns = [c for c in columns if c.table is wanted]
        if not columns:
            return _MODELS.c.id.is_(None)  # an unknown capability matches nothing
        return or_(*(
            select(_CAPABILITIES.c.id)
            .select_from(_CAPABILITIES.join(c.table, c.table.c.id == _CAPABILITIES.c.id))
            .where(_CAPABILITIES.c.model_pk == _MODELS.c.id, c.is_(True))
            .exists()
            for c in columns
        ))

    def search(self, query: ModelQuery) -> Page:
        """Free text plus filters, all applied in SQL before LIMIT/OFFSET (totals and pages are right).

        With search terms and/or filters on SQLite, the FTS index answers alone: the filters are
        facet tokens written with each model (from the same type, status and capability rows, in
        the same transaction). Without FTS the filters are plain SQL over `models` and the
        capabilities join; with neither terms nor filters, a plain page of `models`. Results come in the order models were added (ascending id),
        so the index hands out a page without sorting every match.
        """
        limit, offset = max(query.limit, 0), max(query.offset, 0)
        filters, facets = [], []
        if query.model_type is not None:
            model_type = ModelType(query.model_type).value
            filters.append(_MODELS.c.model_type == model_type)
            facets.append(facet_token("type", model_type))
        if query.status is not None:
            status = DownloadStatus(query.status).value
            filters.append(_MODELS.c.status == status)
            facets.append(facet_token("status", status))
        if query.capability:
            filters.append(self._capability_filter(query.capability))
            facets.append(facet_token("cap", query.capability))
            if query.capability not in CAPABILITY_COLUMNS:
                # Facet tokens fold case and punctuation ("Multi-Image" -> capmultiimage): an
                # unknown name must match nothing here, as it does in SQL and in the fake.
                return Page(items=[], total=0)
        answered = self._index.page(query.text, facets, limit, offset)
        if answered is not None:
            total, page_ids = answered
        else:
            matching, order = select(_MODELS.c.id), _MODELS.c.id
            restricted = self._index.restrict(matching, query.text)
            if restricted is not None:
                matching, order = restricted
            matching = matching.where(*filters)
            total = self._session.scalar(select(func.count()).select_from(matching.subquery())) or 0
            page_ids = self._session.scalars(matching.order_by(order).limit(limit).offset(offset)).all()
        if not page_ids:
            return Page(items=[], total=total)
        by_id = {m.id: m for m in self._load_ids(list(page_ids))}
        return Page(items=[by_id[pk] for pk in page_ids if pk in by_id], total=total)

    # -- writing
    def add(self, model: Model) -> Model:
        record = None
        if model.id is not None:
            record = self._session.get(ModelRecord, model.id)
        if record is None:
            record = self._session.scalars(select(ModelRecord).where(ModelRecord.model_id == model.model_id)).first()
        if record is None:
            record = ModelRecord()
            self._session.add(record)
        self._write(record, model)
        _flush(self._session)
        self._index.index(record)
        model.id = record.id
        self._tracker.retrack(record.id, model)
        return model

    def _write(self, record: ModelRecord, model: Model) -> None:
        record.model_id = model.model_id
        record.repo_id = model.repo_id
        record.canonical_id = model.canonical_id
        record.model_type = ModelType(model.model_type).value if model.model_type else None
        record.family = model.family
        record.local_path = model.local_path
        record.size_bytes = model.size_bytes
        record.status = DownloadStatus(model.status).value
        record.revision = model.revision
        record.source = model.source
        record.description = model.description or ""
        record.managed = model.managed
        record.review_reasons = list(model.review_reasons)
        record.downloaded_at = model.downloaded_at
        record.last_used_at = model.last_used_at
        record.aliases = _sync_children(
            list(record.aliases), _unique(model.aliases), child_key=lambda a: a.alias,
            build=lambda alias: ModelAliasRecord(alias=alias),
            update=lambda child, alias, i: (setattr(child, "alias_key", alias.lower()), setattr(child, "position", i)),
        )
        record.tags = _sync_children(
            list(record.tags), _unique(model.tags), child_key=lambda t: t.tag,
            build=lambda tag: ModelTagRecord(tag=tag),
            update=lambda child, tag, i: setattr(child, "position", i),
        )
        files_by_path = {f.path: f for f in model.files}
        record.files = _sync_children(
            list(record.files), list(files_by_path), child_key=lambda f: f.path,
            build=lambda path: ModelFileRecord(path=path),
            update=lambda child, path, i: self._write_file(child, files_by_path[path], i),
        )
        self._write_capabilities(record, model.capabilities)

    @staticmethod
    def _write_file(record: ModelFileRecord, file: ModelFile, position: int) -> None:
        record.size = file.size
        record.sha256 = file.sha256
        record.revision = file.revision
        record.source = file.source
        record.position = position

    def _write_capabilities(self, record: ModelRecord, capabilities: ModelCapabilities | None) -> None:
        current = record.capabilities
        if capabilities is None:
            record.capabilities = None
            return
        wanted_cls = CAPABILITY_RECORDS[ModelType(capabilities.model_type)]
        if current is not None and type(current) is not wanted_cls:
            # A model's type changed: the subclass row must change; delete first (model_pk is unique).
            record.capabilities = None
            _flush(self._session)
            current = None
        if current is None:
            current = wanted_cls()
            record.capabilities = current
        for f in fields(capabilities):
            if f.name != "model_type":
                setattr(current, f.name, getattr(capabilities, f.name))

    def remove(self, model_id: str) -> None:
        record = self._session.scalars(select(ModelRecord).where(ModelRecord.model_id == model_id)).first()
        if record is None:
            return
        self._index.unindex(record.id)
        self._tracker.forget(record.id)
        self._session.delete(record)
        _flush(self._session)

    def save_changes(self) -> None:
        for model in self._tracker.changed():
            self.add(model)


# ---------------------------------------------------------------------------- profiles


def _profile_from_record(record: ProfileRecord) -> ExecutionProfile:
    profile_type = ProfileType(record.profile_type)
    inference, context, audio = InferenceParams(), InferenceContext(), AudioDefaults()
    if isinstance(record, InferenceProfileRecord):
        inference = InferenceParams(
            temperature=record.temperature, max_tokens=record.max_tokens, top_p=record.top_p, top_k=record.top_k,
            min_p=record.min_p, repetition_penalty=record.repetition_penalty, seed=record.seed,
            stop=tuple(record.stop) if record.stop is not None else None,
        )
        context = InferenceContext(
            context_length=record.context_length, system_prompt=record.system_prompt,
            enable_tool_injection=record.enable_tool_injection, enable_thinking=record.enable_thinking,
        )
    elif isinstance(record, AudioProfileRecord):
        audio = AudioDefaults(
            voice=record.voice, speed=record.speed, sample_rate=record.sample_rate, stt_language=record.stt_language
        )
    return PROFILE_CLASSES[profile_type](
        name=record.name, model_id=record.model_id, description=record.description,
        auto_start=bool(record.auto_start), id=record.id, created_at=record.created_at,
        updated_at=record.updated_at, inference=inference, context=context, audio=audio,
    )


class SqlAlchemyProfileRepository:
    """Profiles load as their subclass (joined-table inheritance, polymorphic on `profile_type`)."""

    def __init__(self, session: Session) -> None:
        self._session = session
        self._tracker: _Tracker[ExecutionProfile] = _Tracker()

    def _to_domain(self, record: ProfileRecord) -> ExecutionProfile:
        return self._tracker.track(record.id, _profile_from_record(record))

    def get(self, name: str) -> ExecutionProfile | None:
        record = self._session.scalars(select(ProfileRecord).where(ProfileRecord.name == name)).first()
        return self._to_domain(record) if record is not None else None

    def list(self) -> list[ExecutionProfile]:
        return [self._to_domain(r) for r in self._session.scalars(select(ProfileRecord).order_by(ProfileRecord.name))]

    def add(self, profile: ExecutionProfile) -> ExecutionProfile:
        record = self._session.get(ProfileRecord, profile.id) if profile.id is not None else None
        if record is None:
            record = self._session.scalars(select(ProfileRecord).where(ProfileRecord.name == profile.name)).first()
        wanted_cls = PROFILE_RECORDS[ProfileType(profile.profile_type)]
        created_at = profile.created_at or (record.created_at if record is not None else None) or _now()
        if record is not None and type(record) is not wanted_cls:
            # The type follows the model's type; a new type means a new subclass row, same id.
            keep_id, launchd = record.id, record.launchd_installed
            self._session.delete(record)
            _flush(self._session)
            record = wanted_cls(id=keep_id, launchd_installed=launchd)
            self._session.add(record)
        elif record is None:
            record = wanted_cls(launchd_installed=False)
            self._session.add(record)
        record.name = profile.name
        record.description = profile.description
        record.model_id = profile.model_id
        record.auto_start = profile.auto_start
        record.created_at = created_at
        record.updated_at = profile.updated_at or _now()
        if isinstance(record, InferenceProfileRecord):
            p, c = profile.inference, profile.context
            record.temperature, record.max_tokens, record.top_p, record.top_k = p.temperature, p.max_tokens, p.top_p, p.top_k
            record.min_p, record.repetition_penalty, record.seed = p.min_p, p.repetition_penalty, p.seed
            record.stop = list(p.stop) if p.stop is not None else None
            record.context_length, record.system_prompt = c.context_length, c.system_prompt
            record.enable_tool_injection = c.enable_tool_injection
            record.enable_thinking = c.enable_thinking
        elif isinstance(record, AudioProfileRecord):
            a = profile.audio
            record.voice, record.speed, record.sample_rate, record.stt_language = a.voice, a.speed, a.sample_rate, a.stt_language
        _flush(self._session)
        profile.id = record.id
        profile.created_at = record.created_at
        profile.updated_at = record.updated_at
        self._tracker.retrack(record.id, profile)
        return profile

    def remove(self, name: str) -> None:
        record = self._session.scalars(select(ProfileRecord).where(ProfileRecord.name == name)).first()
        if record is not None:
            self._tracker.forget(record.id)
            self._session.delete(record)
            _flush(self._session)

    def save_changes(self) -> None:
        for profile in self._tracker.changed():
            self.add(profile)


# --------------------------------------------------------------------------- downloads


def _download_from_record(record: DownloadRecord) -> Download:
    return Download(
        model_id=record.model_id, status=DownloadStatus(record.status), total_bytes=record.total_bytes,
        downloaded_bytes=record.downloaded_bytes or 0, error=record.error, started_at=record.started_at,
        completed_at=record.completed_at, revision=record.revision, source=record.source, id=record.id,
        files=list(record.files or []),
    )


class SqlAlchemyDownloadRepository:
    def __init__(self, session: Session) -> None:
        self._session = session
        self._tracker: _Tracker[Download] = _Tracker()

    def _to_domain(self, record: DownloadRecord) -> Download:
        return self._tracker.track(record.id, _download_from_record(record))

    def add(self, download: Download) -> Download:
        record = self._session.get(DownloadRecord, download.id) if download.id is not None else None
        if record is None:
            record = DownloadRecord(id=download.id)
            self._session.add(record)
        record.model_id = download.model_id
        record.status = DownloadStatus(download.status).value
        record.total_bytes = download.total_bytes
        record.downloaded_bytes = download.downloaded_bytes
        record.error = download.error
        record.started_at = download.started_at or _now()
        record.completed_at = download.completed_at
        record.revision = download.revision
        record.source = download.source
        record.files = list(download.files)
        _flush(self._session)
        download.id = record.id
        download.started_at = record.started_at
        self._tracker.retrack(record.id, download)
        return download

    def get(self, download_id: int) -> Download | None:
        record = self._session.get(DownloadRecord, download_id)
        return self._to_domain(record) if record is not None else None

    def latest_for(self, model_id: str) -> Download | None:
        record = self._session.scalars(
            select(DownloadRecord).where(DownloadRecord.model_id == model_id).order_by(DownloadRecord.id.desc()).limit(1)
        ).first()
        return self._to_domain(record) if record is not None else None

    def list(self, statuses: Iterable[DownloadStatus] | None = None) -> list[Download]:
        statement = select(DownloadRecord).order_by(DownloadRecord.id)
        if statuses is not None:
            statement = statement.where(DownloadRecord.status.in_([DownloadStatus(s).value for s in statuses]))
        return [self._to_domain(r) for r in self._session.scalars(statement)]

    def save_changes(self) -> None:
        for download in self._tracker.changed():
            self.add(download)


# ---------------------------------------------------------------------------- settings


class SqlAlchemySettingsRepository:
    def __init__(self, session: Session) -> None:
        self._session = session

    def get(self, key: str) -> str | None:
        record = self._session.get(SettingRecord, key)
        return record.value if record is not None else None

    def set(self, key: str, value: str) -> None:
        record = self._session.get(SettingRecord, key)
        if record is None:
            record = SettingRecord(key=key)
            self._session.add(record)
        record.value = value
        record.updated_at = _now()
        _flush(self._session)

    def save_changes(self) -> None:
        """Settings are written as they are set."""


# -------------------------------------------------------------------- backend mappings

_mapping_log = logging.getLogger("mlxm.db")


def _mapping_from_record(record: BackendMappingRecord) -> BackendMapping | None:
    """A stored row as a mapping. Rows are vetted on write; one that fails today's rules (a legacy regex)
    loads disabled with its `problem`, and one naming an unknown backend is skipped: either way one bad
    row never blocks routing or the listing (a skipped row can still be deleted by id)."""
    try:
        values = dict(
            model_pattern=record.model_pattern or "", pattern_type=PatternType((record.pattern_type or "").lower()),
            backend_type=BackendType((record.backend_type or "").lower()), backend_model=record.backend_model,
            fallback_backend=BackendType(record.fallback_backend.lower()) if record.fallback_backend else None,
            priority=record.priority or 0, enabled=bool(record.enabled), id=record.id,
        )
    except ValueError as exc:
        _mapping_log.warning("skipping backend mapping %s: %s (delete it by id)", record.id, exc)
        return None
    try:
        return BackendMapping(**values)
    except DomainError as exc:
        _mapping_log.warning("backend mapping %s is disabled: %s", record.id, exc)
        return BackendMapping(**values, problem=str(exc))


class SqlAlchemyBackendMappingRepository:
    def __init__(self, session: Session) -> None:
        self._session = session

    def add(self, mapping: BackendMapping) -> BackendMapping:
        record = self._session.get(BackendMappingRecord, mapping.id) if mapping.id is not None else None
        if record is None:
            record = BackendMappingRecord(id=mapping.id, created_at=_now())
            self._session.add(record)
        record.model_pattern = mapping.model_pattern
        record.pattern_type = PatternType(mapping.pattern_type).value
        record.backend_type = BackendType(mapping.backend_type).value
        record.backend_model = mapping.backend_model
        record.fallback_backend = BackendType(mapping.fallback_backend).value if mapping.fallback_backend else None
        record.priority = mapping.priority
        record.enabled = mapping.enabled
        record.updated_at = _now()
        _flush(self._session)
        return replace(mapping, id=record.id)

    def get(self, mapping_id: int) -> BackendMapping | None:
        record = self._session.get(BackendMappingRecord, mapping_id)
        return _mapping_from_record(record) if record is not None else None

    def list(self) -> list[BackendMapping]:
        records = self._session.scalars(select(BackendMappingRecord).order_by(BackendMappingRecord.id))
        return [m for m in map(_mapping_from_record, records) if m is not None]

    def remove(self, mapping_id: int) -> bool:
        result = self._session.execute(delete(BackendMappingRecord).where(BackendMappingRecord.id == mapping_id))
        return bool(result.rowcount)

    def save_changes(self) -> None:
        """Mappings are immutable values: written by `add`."""
