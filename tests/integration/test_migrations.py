"""Alembic migrations on real SQLite files: fresh, legacy (flat layout) and downgrade."""

from __future__ import annotations

import json
import logging
import sqlite3
from datetime import datetime, timezone
from pathlib import Path

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine

from adapters.sqlalchemy.all_tables import metadata
from adapters.sqlalchemy.migrate import (
    BASELINE_REVISION,
    alembic_config,
    downgrade_database,
    head_revision,
    upgrade_database,
)
from adapters.sqlalchemy.search_index import is_search_index_table
from application.library.ports import ModelQuery
from domain.library.capabilities import (
    AudioCapabilities,
    EmbeddingCapabilities,
    TextGenCapabilities,
    VisionCapabilities,
)
from domain.enums import DownloadStatus, ModelType
from domain.profiles.params import AudioDefaults, InferenceContext, InferenceParams
from domain.profiles.model import AudioProfile, ExecutionProfile, InferenceProfile
from tests.support.database import SqliteUnitOfWorks

UTC = timezone.utc


def _tables(path: Path) -> set[str]:
    with sqlite3.connect(path) as db:
        return {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}


def _columns(path: Path, table: str) -> set[str]:
    with sqlite3.connect(path) as db:
        return {r[1] for r in db.execute(f"PRAGMA table_info({table})")}


def _schema_diff(url: str) -> list:
    def include_name(name, type_, parent_names):
        return not (type_ == "table" and name and is_search_index_table(name))

    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            context = MigrationContext.configure(connection, opts={"compare_type": True, "include_name": include_name})
            return compare_metadata(context, metadata)
    finally:
        engine.dispose()


# ------------------------------------------------------------------------ fresh database


def test_fresh_database_upgrades_to_head_and_matches_the_models(tmp_path):
    url = f"sqlite:///{tmp_path / 'fresh.db'}"
    report = upgrade_database(url)
    assert report.from_revision is None and report.to_revision == head_revision()
    assert not report.legacy and report.backup_path is None
    assert _schema_diff(url) == []
    command.check(alembic_config(url=url))  # `alembic check`: raises when models and migrations disagree
    again = upgrade_database(url)
    assert not again.changed


def test_downgrade_by_one_revision_on_an_empty_database_then_up_again(tmp_path):
    url = f"sqlite:///{tmp_path / 'empty.db'}"
    upgrade_database(url)
    downgrade_database(url, "-1")
    with sqlite3.connect(tmp_path / "empty.db") as db:
        (revision,) = db.execute("SELECT version_num FROM alembic_version").fetchone()
    assert revision != head_revision()
    upgrade_database(url)
    assert _schema_diff(url) == []


def test_the_redesign_downgrades_to_the_flat_baseline_on_an_empty_database(tmp_path):
    path = tmp_path / "empty.db"
    url = f"sqlite:///{path}"
    upgrade_database(url)
    downgrade_database(url, BASELINE_REVISION)
    assert {"models", "server_profiles", "settings"} <= _tables(path)
    assert "execution_profiles" not in _tables(path)
    assert "probed_at" in _columns(path, "models")
    upgrade_database(url)
    assert _schema_diff(url) == []


def test_the_redesign_refuses_to_downgrade_a_database_holding_models(tmp_path):
    url = f"sqlite:///{tmp_path / 'full.db'}"
    upgrade_database(url)
    with sqlite3.connect(tmp_path / "full.db") as db:
        db.execute("INSERT INTO models (model_id, status, description, managed, review_reasons) "
                   "VALUES ('a', 'completed', '', 1, '[]')")
    with pytest.raises(RuntimeError, match="backup"):
        downgrade_database(url, BASELINE_REVISION)
    assert upgrade_database(url).from_revision == head_revision()  # untouched


@pytest.mark.parametrize("insert", [
    "INSERT INTO settings (key, value, updated_at) VALUES ('theme', 'dark', '2026-01-01')",
    "INSERT INTO server_config (id, memory_limit_mode, memory_limit_value, eviction_policy, preload_models) "
    "VALUES (1, 'percent', 80, 'lru', '[]')",
])
def test_the_redesign_refuses_to_downgrade_settings_or_server_config(tmp_path, insert):
    url = f"sqlite:///{tmp_path / 'full.db'}"
    upgrade_database(url)
    with sqlite3.connect(tmp_path / "full.db") as db:
        db.execute(insert)
    with pytest.raises(RuntimeError, match="would lose the rows"):
        downgrade_database(url, BASELINE_REVISION)
    assert upgrade_database(url).from_revision == head_revision()


@pytest.mark.parametrize("insert", [
    "INSERT INTO model_links (app, model_id, rule_target, folder, source_path, target_path, method) "
    "VALUES ('studio', 'tiny', 'llm', 'tiny', '/lib/tiny/a', '/apps/studio/llm/tiny/a', 'symlink')",
    "INSERT INTO dependency_bindings (binding_id, model_id, profile_id, profile_version, environment_kind, "
    "platform_selector, backend_key) VALUES ('tiny:mlx-lm', 'tiny', 'mlx-lm', 1, 'python-venv', '*', '*')",
    "INSERT INTO dependency_profiles (profile_id, version, environment_kind, description) "
    "VALUES ('mine', 1, 'python-venv', 'a user profile')",
])
def test_the_library_pipelines_downgrade_refuses_to_drop_links_or_user_bindings(tmp_path, insert):
    url = f"sqlite:///{tmp_path / 'full.db'}"
    upgrade_database(url)
    with sqlite3.connect(tmp_path / "full.db") as db:
        db.execute(insert)
    with pytest.raises(RuntimeError, match="would lose"):
        downgrade_database(url, "0003_api_keys")
    assert upgrade_database(url).from_revision == head_revision()
    assert {"model_links", "dependency_bindings"} <= _tables(tmp_path / "full.db")


def test_the_library_pipelines_downgrade_drops_only_its_own_seed(tmp_path):
    url = f"sqlite:///{tmp_path / 'seeded.db'}"
    upgrade_database(url)
    downgrade_database(url, "0003_api_keys")
    assert "dependency_bindings" not in _tables(tmp_path / "seeded.db")


def test_a_downgrade_backs_the_database_up_first(tmp_path):
    path = tmp_path / "kept.db"
    url = f"sqlite:///{path}"
    upgrade_database(url)
    with sqlite3.connect(path) as db:
        before = db.execute("SELECT version_num FROM alembic_version").fetchone()[0]
    backup = downgrade_database(url, "-1")
    assert backup is not None and backup.exists() and backup.parent == tmp_path
    with sqlite3.connect(backup) as db:
        assert db.execute("SELECT version_num FROM alembic_version").fetchone()[0] == before


# ----------------------------------------------------------------------- legacy database

LEGACY_DDL = """
CREATE TABLE models (
    id INTEGER NOT NULL PRIMARY KEY, repo_id VARCHAR NOT NULL, model_type VARCHAR, local_path VARCHAR,
    size_bytes INTEGER, downloaded_at DATETIME NOT NULL, last_used_at DATETIME, probed_at DATETIME,
    probe_version INTEGER, practical_max_tokens INTEGER, embedding_dimensions INTEGER, max_sequence_length INTEGER,
    supports_native_tools BOOLEAN, supports_thinking BOOLEAN, supports_multi_image BOOLEAN, supports_video BOOLEAN,
    is_normalized BOOLEAN, supports_tts BOOLEAN, supports_stt BOOLEAN, tool_format VARCHAR, model_family VARCHAR,
    tool_parser_id VARCHAR, thinking_parser_id VARCHAR
);
CREATE UNIQUE INDEX ix_models_repo_id ON models (repo_id);
CREATE TABLE server_profiles (
    id INTEGER NOT NULL PRIMARY KEY, name VARCHAR NOT NULL, description VARCHAR,
    model_id INTEGER REFERENCES models (id), context_length INTEGER, system_prompt VARCHAR, temperature FLOAT,
    max_tokens INTEGER, top_p FLOAT, force_tool_injection BOOLEAN, tts_default_voice VARCHAR,
    tts_default_speed FLOAT, tts_sample_rate INTEGER, stt_default_language VARCHAR, auto_start BOOLEAN NOT NULL,
    launchd_installed BOOLEAN NOT NULL, created_at DATETIME NOT NULL, updated_at DATETIME NOT NULL {leftovers}
);
CREATE INDEX ix_server_profiles_name ON server_profiles (name);
CREATE TABLE settings (key VARCHAR NOT NULL PRIMARY KEY, value VARCHAR NOT NULL, updated_at DATETIME NOT NULL);
CREATE TABLE downloads (
    id INTEGER NOT NULL PRIMARY KEY, model_id VARCHAR NOT NULL, status VARCHAR, total_bytes INTEGER,
    downloaded_bytes INTEGER NOT NULL, error VARCHAR, started_at DATETIME NOT NULL, completed_at DATETIME
);
CREATE INDEX ix_downloads_model_id ON downloads (model_id);
CREATE TABLE users (
    id INTEGER NOT NULL PRIMARY KEY, email VARCHAR NOT NULL UNIQUE, hashed_password VARCHAR NOT NULL,
    is_admin BOOLEAN NOT NULL, status VARCHAR NOT NULL, created_at DATETIME NOT NULL, approved_at DATETIME,
    approved_by INTEGER REFERENCES users (id)
);
CREATE TABLE backend_mappings (
    id INTEGER NOT NULL PRIMARY KEY, model_pattern VARCHAR NOT NULL, pattern_type VARCHAR NOT NULL,
    backend_type VARCHAR NOT NULL, backend_model VARCHAR, fallback_backend VARCHAR, priority INTEGER NOT NULL,
    enabled BOOLEAN NOT NULL, created_at DATETIME NOT NULL, updated_at DATETIME NOT NULL
);
CREATE TABLE cloud_credentials (
    id INTEGER NOT NULL PRIMARY KEY, backend_type VARCHAR NOT NULL, api_type VARCHAR NOT NULL, name VARCHAR NOT NULL,
    encrypted_api_key VARCHAR NOT NULL, base_url VARCHAR, created_at DATETIME NOT NULL, updated_at DATETIME NOT NULL
);
CREATE TABLE server_config (
    id INTEGER NOT NULL PRIMARY KEY, memory_limit_mode VARCHAR NOT NULL, memory_limit_value INTEGER NOT NULL,
    eviction_policy VARCHAR NOT NULL, preload_models VARCHAR NOT NULL, updated_at DATETIME NOT NULL
);
CREATE TABLE audit_logs (
    id INTEGER NOT NULL PRIMARY KEY, request_id VARCHAR NOT NULL, timestamp DATETIME NOT NULL, model VARCHAR NOT NULL,
    backend_type VARCHAR NOT NULL, endpoint VARCHAR NOT NULL, duration_ms INTEGER NOT NULL, status VARCHAR NOT NULL,
    prompt_tokens INTEGER, completion_tokens INTEGER, total_tokens INTEGER, error_type VARCHAR, error_message VARCHAR
);
"""
LEFTOVER_COLUMNS = (", tool_call_parser TEXT, reasoning_parser TEXT, message_converter TEXT, "
                    "port INTEGER, host VARCHAR, model_path VARCHAR")

D0 = "2025-06-01 10:00:00.000000"
D1 = "2025-06-02 11:30:00.000000"
P0 = "2025-06-03 08:15:00.000000"

MODEL_COLUMNS = ("id", "repo_id", "model_type", "local_path", "size_bytes", "downloaded_at", "last_used_at",
                 "probed_at", "probe_version", "practical_max_tokens", "embedding_dimensions", "max_sequence_length",
                 "supports_native_tools", "supports_thinking", "supports_multi_image", "supports_video",
                 "is_normalized", "supports_tts", "supports_stt", "tool_format", "model_family", "tool_parser_id",
                 "thinking_parser_id")
LEGACY_MODELS = [
    # an `lm` model, probed: text-gen capabilities
    dict(id=1, repo_id="mlx-community/Llama-3.2-1B-Instruct-4bit", model_type="lm", local_path="/m/llama",
         size_bytes=700_000_000, downloaded_at=D0, last_used_at=D1, probed_at=P0, probe_version=3,
         practical_max_tokens=8192, supports_native_tools=1, supports_thinking=0, tool_format="llama3",
         model_family="llama", tool_parser_id="llama3"),
    # NULL type, probed: text-gen
    dict(id=2, repo_id="mlx-community/Qwen3-0.6B-4bit", model_type=None, local_path="/m/qwen3",
         size_bytes=350_000_000, downloaded_at=D0, probed_at=P0, probe_version=3, supports_native_tools=1,
         supports_thinking=1, tool_format="hermes", model_family="qwen3", tool_parser_id="hermes",
         thinking_parser_id="think_tags", practical_max_tokens=32768),
    # `multimodal`, probed: vision; it also carries an embeddings value that must be reported
    dict(id=3, repo_id="mlx-community/Qwen2-VL-2B-Instruct-4bit", model_type="multimodal", local_path="/m/vl",
         size_bytes=1_200_000_000, downloaded_at=D0, probed_at=P0, probe_version=2, supports_native_tools=0,
         supports_thinking=0, supports_multi_image=1, supports_video=1, model_family="qwen2_vl",
         tool_parser_id="hermes", embedding_dimensions=512),
    dict(id=4, repo_id="mlx-community/bge-small-en-v1.5", model_type="embeddings", local_path="/m/bge",
         size_bytes=130_000_000, downloaded_at=D0, probed_at=P0, probe_version=1, embedding_dimensions=384,
         max_sequence_length=512, is_normalized=1, model_family="bert"),
    dict(id=5, repo_id="mlx-community/Kokoro-82M-bf16", model_type="audio", local_path="/m/kokoro",
         size_bytes=330_000_000, downloaded_at=D0, probed_at=P0, probe_version=1, supports_tts=1, supports_stt=0,
         model_family="kokoro"),
    # never probed: no capability row; its family is kept on the model
    dict(id=6, repo_id="mlx-community/gemma-3-1b-it-4bit", model_type="text-gen", local_path="/m/gemma",
         size_bytes=600_000_000, downloaded_at=D0, model_family="gemma3"),
    # never probed but a capability value is set: reported
    dict(id=7, repo_id="mlx-community/whisper-tiny", model_type="audio", local_path=None, size_bytes=None,
         downloaded_at=D1, supports_stt=1),
]
PROFILE_COLUMNS = ("id", "name", "description", "model_id", "context_length", "system_prompt", "temperature",
                   "max_tokens", "top_p", "force_tool_injection", "tts_default_voice", "tts_default_speed",
                   "tts_sample_rate", "stt_default_language", "auto_start", "launchd_installed", "created_at",
                   "updated_at")
LEGACY_PROFILES = [
    dict(id=1, name="chat", description="everyday", model_id=1, context_length=8192, system_prompt="Be brief.",
         temperature=0.0, max_tokens=1024, top_p=0.95, force_tool_injection=1, auto_start=1, launchd_installed=1,
         created_at=D0, updated_at=D1),
    dict(id=2, name="voice", model_id=5, tts_default_voice="af_heart", tts_default_speed=1.2, tts_sample_rate=24000,
         stt_default_language="en", temperature=0.7, auto_start=0, launchd_installed=0, created_at=D0,
         updated_at=D0),
    dict(id=3, name="embed", model_id=4, system_prompt="ignored", auto_start=0, launchd_installed=0, created_at=D0,
         updated_at=D0),
    dict(id=4, name="orphan", model_id=None, temperature=1.0, tts_default_voice="bf_emma", auto_start=0,
         launchd_installed=0, created_at=D0, updated_at=D0),
    dict(id=5, name="vision", model_id=3, max_tokens=256, auto_start=0, launchd_installed=0, created_at=D0,
         updated_at=D0),
    dict(id=6, name="chat", description="duplicate name", model_id=2, top_p=0.5, auto_start=0, launchd_installed=0,
         created_at=D0, updated_at=D0),
]
LEFTOVER_VALUES = {1: {"tool_call_parser": "llama3_json", "reasoning_parser": None, "message_converter": None},
                   4: {"port": 8080, "host": "0.0.0.0", "model_path": "/old/path"}}


def build_legacy_database(path: Path, *, leftovers: bool) -> None:
    db = sqlite3.connect(path)
    db.executescript(LEGACY_DDL.replace("{leftovers}", LEFTOVER_COLUMNS if leftovers else ""))
    for row in LEGACY_MODELS:
        db.execute(f"INSERT INTO models ({', '.join(MODEL_COLUMNS)}) VALUES ({', '.join('?' * len(MODEL_COLUMNS))})",
                   [row.get(c) for c in MODEL_COLUMNS])
    for row in LEGACY_PROFILES:
        values = dict(row)
        columns = list(PROFILE_COLUMNS)
        if leftovers:
            extra = LEFTOVER_VALUES.get(row["id"], {})
            columns += list(extra)
            values.update(extra)
        db.execute(f"INSERT INTO server_profiles ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})",
                   [values.get(c) for c in columns])
    db.executescript(f"""
        INSERT INTO settings VALUES ('selected_model', 'mlx-community/Llama-3.2-1B-Instruct-4bit', '{D0}');
        INSERT INTO settings VALUES ('theme', 'dark', '{D1}');
        INSERT INTO downloads VALUES (1, 'mlx-community/Llama-3.2-1B-Instruct-4bit', 'completed', 700000000,
                                      700000000, NULL, '{D0}', '{D1}');
        INSERT INTO downloads VALUES (2, 'mlx-community/Qwen3-4B-4bit', 'DOWNLOADING', 2000000000, 500000000,
                                      NULL, '{D1}', NULL);
        INSERT INTO downloads VALUES (3, 'mlx-community/broken', 'failed', NULL, 0, 'HTTP 404', '{D1}', NULL);
        INSERT INTO users VALUES (1, 'admin@example.com', 'hash-1', 1, 'APPROVED', '{D0}', '{D0}', NULL);
        INSERT INTO users VALUES (2, 'bob@example.com', 'hash-2', 0, 'PENDING', '{D1}', NULL, NULL);
        INSERT INTO users VALUES (3, 'carol@example.com', 'hash-3', 0, 'approved', '{D1}', '{D1}', 1);
        INSERT INTO backend_mappings VALUES (1, 'gpt-', 'PREFIX', 'OPENAI', NULL, 'LOCAL', 10, 1, '{D0}', '{D0}');
        INSERT INTO backend_mappings VALUES (2, 'claude-3', 'exact', 'anthropic', 'claude-3-haiku', NULL, 0, 0,
                                             '{D0}', '{D1}');
        INSERT INTO cloud_credentials VALUES (1, 'OPENAI', 'OPENAI', 'OpenAI', 'ciphertext==', NULL, '{D0}', '{D1}');
        INSERT INTO server_config VALUES (1, 'PERCENT', 75, 'LFU', '["mlx-community/Qwen3-0.6B-4bit"]', '{D0}');
        INSERT INTO audit_logs VALUES (1, 'req-1', '{D1}', 'qwen3', 'local', '/v1/chat/completions', 120, 'success',
                                       10, 20, 30, NULL, NULL);
    """)
    db.commit()
    db.close()


def _dt(text: str) -> datetime:
    return datetime.strptime(text, "%Y-%m-%d %H:%M:%S.%f").replace(tzinfo=UTC)


@pytest.fixture(params=[True, False], ids=["leftover-columns", "no-leftover-columns"])
def upgraded_legacy(request, tmp_path, caplog):
    path = tmp_path / "mlx-manager.db"
    build_legacy_database(path, leftovers=request.param)
    caplog.set_level(logging.WARNING, logger="mlxm")
    report = upgrade_database(f"sqlite:///{path}")
    uows = SqliteUnitOfWorks(f"sqlite:///{path}")
    yield path, report, uows, request.param, caplog
    uows.dispose()


def test_legacy_database_is_recognised_backed_up_and_upgraded(upgraded_legacy):
    path, report, _, leftovers, _ = upgraded_legacy
    assert report.legacy and report.from_revision is None and report.to_revision == head_revision()
    # the backup is the untouched legacy file
    assert report.backup_path is not None and report.backup_path.exists()
    assert "server_profiles" in _tables(report.backup_path)
    with sqlite3.connect(report.backup_path) as db:
        assert db.execute("SELECT COUNT(*) FROM server_profiles").fetchone() == (len(LEGACY_PROFILES),)
    # old table and columns are gone; nothing left over from the copy
    tables = _tables(path)
    assert "server_profiles" not in tables
    assert not any(t.startswith("legacy_") for t in tables)
    assert not {"probed_at", "supports_native_tools", "embedding_dimensions", "model_family"} & _columns(path, "models")
    assert _schema_diff(f"sqlite:///{path}") == []


def test_legacy_models_and_their_capabilities(upgraded_legacy):
    path, _, uows, _, _ = upgraded_legacy
    with uows() as uow:
        models = {m.id: m for m in uow.models.list()}
    assert sorted(models) == [1, 2, 3, 4, 5, 6, 7]
    llama = models[1]
    assert (llama.model_id, llama.repo_id, llama.model_type, llama.local_path, llama.size_bytes) == (
        "mlx-community/Llama-3.2-1B-Instruct-4bit", "mlx-community/Llama-3.2-1B-Instruct-4bit", ModelType.TEXT_GEN,
        "/m/llama", 700_000_000)
    assert (llama.downloaded_at, llama.last_used_at, llama.family, llama.status) == (
        _dt(D0), _dt(D1), "llama", DownloadStatus.COMPLETED)
    assert llama.capabilities == TextGenCapabilities(
        probed_at=_dt(P0), probe_version=3, model_family="llama", supports_native_tools=True,
        supports_thinking=False, tool_format="llama3", practical_max_tokens=8192, tool_parser_id="llama3",
        thinking_parser_id=None)
    assert models[2].model_type is ModelType.TEXT_GEN  # NULL -> text-gen
    assert models[2].capabilities == TextGenCapabilities(
        probed_at=_dt(P0), probe_version=3, model_family="qwen3", supports_native_tools=True, supports_thinking=True,
        tool_format="hermes", practical_max_tokens=32768, tool_parser_id="hermes", thinking_parser_id="think_tags")
    assert models[3].model_type is ModelType.VISION  # multimodal -> vision
    assert models[3].capabilities == VisionCapabilities(
        probed_at=_dt(P0), probe_version=2, model_family="qwen2_vl", supports_native_tools=False,
        supports_thinking=False, supports_multi_image=True, supports_video=True, tool_parser_id="hermes",
        thinking_parser_id=None)
    assert models[4].capabilities == EmbeddingCapabilities(
        probed_at=_dt(P0), probe_version=1, model_family="bert", embedding_dimensions=384, max_sequence_length=512,
        is_normalized=True)
    assert models[5].capabilities == AudioCapabilities(
        probed_at=_dt(P0), probe_version=1, model_family="kokoro", supports_tts=True, supports_stt=False)
    assert models[6].capabilities is None and models[6].family == "gemma3"
    assert models[7].capabilities is None and models[7].model_type is ModelType.AUDIO
    # one base row per probed model, one subclass row in the table of its type, nothing elsewhere
    with sqlite3.connect(path) as db:
        assert db.execute("SELECT model_pk, capability_type FROM model_capabilities ORDER BY model_pk").fetchall() == [
            (1, "text-gen"), (2, "text-gen"), (3, "vision"), (4, "embeddings"), (5, "audio")]
        assert [r[0] for r in db.execute("SELECT id FROM text_gen_capabilities ORDER BY id")] == [1, 2]
        assert [r[0] for r in db.execute("SELECT id FROM vision_capabilities")] == [3]
        assert [r[0] for r in db.execute("SELECT id FROM embedding_capabilities")] == [4]
        assert [r[0] for r in db.execute("SELECT id FROM audio_capabilities")] == [5]


def test_legacy_models_are_searchable_and_queryable_by_capability(upgraded_legacy):
    _, _, uows, _, _ = upgraded_legacy
    with uows() as uow:
        assert [m.id for m in uow.models.search(ModelQuery(text="qwe")).items] == [2, 3]
        assert [m.id for m in uow.models.with_capability("tools", ModelType.TEXT_GEN)] == [1, 2]
        # the rebuilt index carries each model's type, status and capabilities for filtered searches
        assert [m.id for m in uow.models.search(ModelQuery(text="mlx", capability="tools")).items] == [1, 2]
        assert [m.id for m in uow.models.search(ModelQuery(text="mlx", model_type=ModelType.VISION,
                                                            capability="multi_image")).items] == [3]
        assert uow.models.search(ModelQuery(text="mlx", status=DownloadStatus.COMPLETED)).total == 7
        assert uow.models.find("mlx-community/kokoro-82m-bf16").id == 5


def test_legacy_profiles_become_typed_profiles(upgraded_legacy):
    _, _, uows, _, _ = upgraded_legacy
    with uows() as uow:
        profiles = {p.id: p for p in uow.profiles.list()}
    assert sorted(profiles) == [1, 2, 3, 4, 5, 6]
    chat = profiles[1]
    assert type(chat) is InferenceProfile
    assert (chat.name, chat.description, chat.model_id, chat.auto_start) == (
        "chat", "everyday", "mlx-community/Llama-3.2-1B-Instruct-4bit", True)
    assert (chat.created_at, chat.updated_at) == (_dt(D0), _dt(D1))
    assert chat.inference == InferenceParams(temperature=0.0, max_tokens=1024, top_p=0.95)  # 0.0 survives
    assert chat.context == InferenceContext(context_length=8192, system_prompt="Be brief.", enable_tool_injection=True)
    voice = profiles[2]
    assert type(voice) is AudioProfile and voice.model_id == "mlx-community/Kokoro-82M-bf16"
    assert voice.audio == AudioDefaults(voice="af_heart", speed=1.2, sample_rate=24000, stt_language="en")
    assert voice.inference == InferenceParams()  # its temperature was reported, not kept
    embed = profiles[3]
    assert type(embed) is ExecutionProfile and embed.model_id == "mlx-community/bge-small-en-v1.5"
    assert embed.context == InferenceContext()
    orphan = profiles[4]
    assert type(orphan) is InferenceProfile and orphan.model_id is None
    assert orphan.inference == InferenceParams(temperature=1.0) and orphan.audio == AudioDefaults()
    vision = profiles[5]
    assert type(vision) is InferenceProfile and vision.model_id == "mlx-community/Qwen2-VL-2B-Instruct-4bit"
    assert vision.inference == InferenceParams(max_tokens=256)
    duplicate = profiles[6]
    assert duplicate.name == "chat-6" and duplicate.inference == InferenceParams(top_p=0.5)


def test_mismatched_and_leftover_values_are_reported_not_dropped(upgraded_legacy):
    _, report, _, leftovers, caplog = upgraded_legacy
    found = {(r["entity"], r["entity_id"], r["field"], r["value"]) for r in report.reports}
    expected = {
        ("models", "3", "embedding_dimensions", "512"),
        ("models", "7", "supports_stt", "1"),
        ("server_profiles", "2", "temperature", "0.7"),
        ("server_profiles", "3", "system_prompt", "ignored"),
        ("server_profiles", "4", "tts_default_voice", "bf_emma"),
        ("server_profiles", "6", "name", "chat"),
    }
    if leftovers:
        expected |= {
            ("server_profiles", "1", "tool_call_parser", "llama3_json"),
            ("server_profiles", "4", "port", "8080"),
            ("server_profiles", "4", "host", "0.0.0.0"),
            ("server_profiles", "4", "model_path", "/old/path"),
        }
    assert found == expected
    assert all(r["message"] for r in report.reports)
    logged = [rec.getMessage() for rec in caplog.get_records("setup") if "upgrade" in rec.getMessage()]
    assert any("migration_reports" in line for line in logged)
    assert any("temperature" in line for line in logged)


def test_legacy_other_tables_keep_every_value_with_lower_case_enums(upgraded_legacy):
    path, _, uows, _, _ = upgraded_legacy
    with uows() as uow:
        assert uow.settings.get("selected_model") == "mlx-community/Llama-3.2-1B-Instruct-4bit"
        assert uow.settings.get("theme") == "dark"
        downloads = {d.id: d for d in uow.downloads.list()}
        assert downloads[1].status is DownloadStatus.COMPLETED and downloads[1].completed_at == _dt(D1)
        assert (downloads[2].status, downloads[2].total_bytes, downloads[2].downloaded_bytes) == (
            DownloadStatus.DOWNLOADING, 2_000_000_000, 500_000_000)
        assert (downloads[3].status, downloads[3].error) == (DownloadStatus.FAILED, "HTTP 404")
        mappings = uow.backend_mappings.list()
        assert [(m.model_pattern, m.pattern_type.value, m.backend_type.value,
                 m.fallback_backend.value if m.fallback_backend else None, m.priority, m.enabled, m.backend_model)
                for m in mappings] == [("gpt-", "prefix", "openai", "local", 10, True, None),
                                       ("claude-3", "exact", "anthropic", None, 0, False, "claude-3-haiku")]
    with sqlite3.connect(path) as db:
        assert db.execute("SELECT id, email, hashed_password, is_admin, status, approved_by FROM users ORDER BY id"
                          ).fetchall() == [(1, "admin@example.com", "hash-1", 1, "approved", None),
                                           (2, "bob@example.com", "hash-2", 0, "pending", None),
                                           (3, "carol@example.com", "hash-3", 0, "approved", 1)]
        assert db.execute("SELECT backend_type, api_type, name, encrypted_api_key FROM cloud_credentials"
                          ).fetchall() == [("openai", "openai", "OpenAI", "ciphertext==")]
        mode, value, policy, preload = db.execute(
            "SELECT memory_limit_mode, memory_limit_value, eviction_policy, preload_models FROM server_config"
        ).fetchone()
        assert (mode, value, policy, json.loads(preload)) == ("percent", 75, "lfu", ["mlx-community/Qwen3-0.6B-4bit"])
        assert db.execute("SELECT request_id, model, duration_ms, status, prompt_tokens, completion_tokens, "
                          "total_tokens FROM audit_logs").fetchall() == [("req-1", "qwen3", 120, "success", 10, 20, 30)]


def test_a_failed_upgrade_leaves_the_legacy_database_as_it_was(tmp_path):
    path = tmp_path / "legacy.db"
    build_legacy_database(path, leftovers=True)
    with sqlite3.connect(path) as db:
        # A stray table in the way of the redesign makes it fail half-way.
        db.execute("CREATE TABLE model_capabilities (oops INTEGER)")
    before = {t: _columns(path, t) for t in _tables(path)}
    with pytest.raises(Exception):
        upgrade_database(f"sqlite:///{path}")
    assert {t: _columns(path, t) for t in _tables(path)} == before
    with sqlite3.connect(path) as db:
        assert db.execute("SELECT COUNT(*) FROM server_profiles").fetchone() == (len(LEGACY_PROFILES),)
        assert db.execute("SELECT COUNT(*) FROM models WHERE probed_at IS NOT NULL").fetchone() == (5,)
    assert list(tmp_path.glob("legacy.db.*.bak")), "a backup is written before the first step"


def test_a_database_that_is_neither_legacy_nor_migrated_is_not_stamped(tmp_path):
    path = tmp_path / "other.db"
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE models (id INTEGER PRIMARY KEY, repo_id VARCHAR)")  # no probed_at: not legacy
    with pytest.raises(Exception):
        upgrade_database(f"sqlite:///{path}")
    assert "alembic_version" not in _tables(path)
