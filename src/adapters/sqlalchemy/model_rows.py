"""Statements and row layouts of the library's model rows (Core selects; the repository maps rows to `Model`)."""

from __future__ import annotations

from sqlalchemy import BigInteger, Text, bindparam, cast, func, literal, null, select, union_all

from adapters.sqlalchemy.search_index import CAPABILITY_FLAGS
from adapters.sqlalchemy.tables import (
    AudioCapabilityRecord,
    CapabilityRecord,
    EmbeddingCapabilityRecord,
    ModelAliasRecord,
    ModelFileRecord,
    ModelRecord,
    ModelTagRecord,
    TextGenCapabilityRecord,
    VisionCapabilityRecord,
)
from domain.library.capabilities import ModelCapabilities, capabilities_for
from domain.enums import DownloadStatus, ModelType


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


_CHILD_VALUE_TYPES = (Text(), BigInteger(), Text(), Text(), Text())  # v0..v4 as the files part has them


def _children_select(owners):
    """Aliases, tags and files of the owners in ONE statement (a page load is then two queries)."""

    def part(kind: str, table, *values):
        # Typed NULLs: PostgreSQL types a UNION column from its first branch (a bare NULL is text).
        padded = list(values) + [cast(null(), _CHILD_VALUE_TYPES[i]) for i in range(len(values), 5)]
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
    "display_name", "capability_type", "probed_at", "probe_version", "model_family",
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
