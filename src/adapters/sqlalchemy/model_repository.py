"""The library's model repository (library context): models with capabilities, aliases, tags and files."""

from __future__ import annotations

import json
from dataclasses import fields

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from adapters.sqlalchemy.model_rows import (
    CAPABILITY_RECORDS,
    CAPABILITY_COLUMNS,
    _MODELS,
    _CAPABILITIES,
    _ALIASES,
    _SUBCLASS_TABLES,
    _MODEL_TYPE_BY_VALUE,
    _STATUS_BY_VALUE,
    _MODEL_ROWS,
    _MAX_ID_PARAMETERS,
    _children_select,
    _ROWS_BY_IDS,
    _CHILDREN_BY_IDS,
    _ROWS_BY_JSON_IDS,
    _CHILDREN_BY_JSON_IDS,
    _MODEL_POSITIONS,
    _capabilities_from_row,
)
from adapters.sqlalchemy.search_index import LibrarySearchIndex, facet_token
from adapters.sqlalchemy.tables import ModelAliasRecord, ModelFileRecord, ModelRecord, ModelTagRecord
from adapters.sqlalchemy.tracking import _flush, _sync_children, _Tracker, _unique
from application.library.ports import ModelQuery
from application.ports import Page
from domain.library.capabilities import ModelCapabilities
from domain.enums import DownloadStatus, ModelType
from domain.library.models import Model, ModelFile


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
             source, description, downloaded_at, last_used_at, managed, review_reasons, display_name, capability_type,
             _probed_at, _probe_version, _model_family) = [row[i] for i in positions]
            model = Model(
                model_id=model_id, repo_id=repo_id, canonical_id=canonical_id,
                model_type=_MODEL_TYPE_BY_VALUE[model_type] if model_type else None, family=family,
                local_path=local_path, size_bytes=size_bytes, status=_STATUS_BY_VALUE[status],
                revision=revision, source=source, aliases=aliases.get(pk, []), tags=tags.get(pk, []),
                description=description or "", downloaded_at=downloaded_at, last_used_at=last_used_at,
                managed=bool(managed),
                capabilities=_capabilities_from_row(row) if capability_type is not None else None,
                files=files.get(pk, []), review_reasons=list(review_reasons or []), display_name=display_name, id=pk,
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
        record.display_name = model.display_name
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
