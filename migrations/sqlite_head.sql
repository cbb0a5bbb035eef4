-- head: 0013_binding_platform_selectors
-- Written by `python -m adapters.sqlalchemy.schema_snapshot`; do not edit.
BEGIN;
CREATE TABLE alembic_version (
	version_num VARCHAR(32) NOT NULL, 
	CONSTRAINT alembic_version_pkc PRIMARY KEY (version_num)
);
CREATE TABLE audit_logs (
	id INTEGER NOT NULL, 
	request_id VARCHAR(64) NOT NULL, 
	timestamp DATETIME NOT NULL, 
	model VARCHAR(255) NOT NULL, 
	backend_type VARCHAR(32) NOT NULL, 
	endpoint VARCHAR(128) NOT NULL, 
	duration_ms INTEGER NOT NULL, 
	status VARCHAR(16) NOT NULL, 
	prompt_tokens INTEGER, 
	completion_tokens INTEGER, 
	total_tokens INTEGER, 
	error_type VARCHAR(64), 
	error_message TEXT, host VARCHAR(255), 
	CONSTRAINT pk_audit_logs PRIMARY KEY (id)
);
CREATE TABLE backend_mappings (
	id INTEGER NOT NULL, 
	model_pattern VARCHAR(255) NOT NULL, 
	pattern_type VARCHAR(16) NOT NULL, 
	backend_type VARCHAR(32) NOT NULL, 
	backend_model VARCHAR(255), 
	fallback_backend VARCHAR(32), 
	priority INTEGER NOT NULL, 
	enabled BOOLEAN NOT NULL, 
	created_at DATETIME, 
	updated_at DATETIME, fallback_model VARCHAR(255), 
	CONSTRAINT pk_backend_mappings PRIMARY KEY (id)
);
CREATE TABLE cloud_credentials (
	id INTEGER NOT NULL, 
	backend_type VARCHAR(32) NOT NULL, 
	api_type VARCHAR(16) NOT NULL, 
	name VARCHAR(128) NOT NULL, 
	encrypted_api_key TEXT NOT NULL, 
	base_url TEXT, 
	created_at DATETIME, 
	updated_at DATETIME, 
	CONSTRAINT pk_cloud_credentials PRIMARY KEY (id)
);
CREATE TABLE downloads (
	id INTEGER NOT NULL, 
	model_id VARCHAR(255) NOT NULL, 
	status VARCHAR(32) NOT NULL, 
	total_bytes BIGINT, 
	downloaded_bytes BIGINT NOT NULL, 
	error TEXT, 
	started_at DATETIME NOT NULL, 
	completed_at DATETIME, 
	revision VARCHAR(128), 
	source TEXT, 
	files JSON NOT NULL, 
	CONSTRAINT pk_downloads PRIMARY KEY (id)
);
CREATE TABLE execution_profiles (
	id INTEGER NOT NULL, 
	name VARCHAR(64) NOT NULL, 
	profile_type VARCHAR(16) NOT NULL, 
	description TEXT, 
	model_id VARCHAR(255), 
	auto_start BOOLEAN NOT NULL, 
	launchd_installed BOOLEAN NOT NULL, 
	created_at DATETIME, 
	updated_at DATETIME, 
	CONSTRAINT pk_execution_profiles PRIMARY KEY (id), 
	CONSTRAINT uq_execution_profiles_name UNIQUE (name)
);
CREATE TABLE migration_reports (
	id INTEGER NOT NULL, 
	revision VARCHAR(32) NOT NULL, 
	created_at DATETIME NOT NULL, 
	entity VARCHAR(64) NOT NULL, 
	entity_id VARCHAR(255), 
	field VARCHAR(64) NOT NULL, 
	value TEXT, 
	message TEXT NOT NULL, 
	CONSTRAINT pk_migration_reports PRIMARY KEY (id)
);
CREATE TABLE models (
	id INTEGER NOT NULL, 
	model_id VARCHAR(255) NOT NULL, 
	repo_id VARCHAR(255), 
	canonical_id VARCHAR(255), 
	model_type VARCHAR(32), 
	family VARCHAR(128), 
	local_path TEXT, 
	size_bytes BIGINT, 
	status VARCHAR(32) NOT NULL, 
	revision VARCHAR(128), 
	source TEXT, 
	description TEXT NOT NULL, 
	managed BOOLEAN NOT NULL, 
	review_reasons JSON NOT NULL, 
	downloaded_at DATETIME, 
	last_used_at DATETIME, display_name VARCHAR(255), 
	CONSTRAINT pk_models PRIMARY KEY (id), 
	CONSTRAINT uq_models_model_id UNIQUE (model_id)
);
CREATE TABLE server_config (
	id INTEGER NOT NULL, 
	memory_limit_mode VARCHAR(16) NOT NULL, 
	memory_limit_value FLOAT NOT NULL, 
	eviction_policy VARCHAR(16) NOT NULL, 
	preload_models JSON NOT NULL, 
	updated_at DATETIME, 
	CONSTRAINT pk_server_config PRIMARY KEY (id)
);
CREATE TABLE settings (
	"key" VARCHAR(255) NOT NULL, 
	value TEXT NOT NULL, 
	updated_at DATETIME NOT NULL, 
	CONSTRAINT pk_settings PRIMARY KEY ("key")
);
CREATE TABLE users (
	id INTEGER NOT NULL, 
	email VARCHAR(255) NOT NULL, 
	hashed_password TEXT NOT NULL, 
	is_admin BOOLEAN NOT NULL, 
	status VARCHAR(16) NOT NULL, 
	created_at DATETIME NOT NULL, 
	approved_at DATETIME, 
	approved_by INTEGER, 
	CONSTRAINT pk_users PRIMARY KEY (id), 
	CONSTRAINT fk_users_approved_by_users FOREIGN KEY(approved_by) REFERENCES users (id) ON DELETE SET NULL, 
	CONSTRAINT uq_users_email UNIQUE (email)
);
CREATE TABLE audio_profiles (
	id INTEGER NOT NULL, 
	voice VARCHAR(128), 
	speed FLOAT, 
	sample_rate INTEGER, 
	stt_language VARCHAR(32), 
	CONSTRAINT pk_audio_profiles PRIMARY KEY (id), 
	CONSTRAINT fk_audio_profiles_id_execution_profiles FOREIGN KEY(id) REFERENCES execution_profiles (id) ON DELETE CASCADE
);
CREATE TABLE inference_profiles (
	id INTEGER NOT NULL, 
	temperature FLOAT, 
	max_tokens INTEGER, 
	top_p FLOAT, 
	top_k INTEGER, 
	min_p FLOAT, 
	repetition_penalty FLOAT, 
	seed BIGINT, 
	stop JSON, 
	context_length INTEGER, 
	system_prompt TEXT, 
	enable_tool_injection BOOLEAN, enable_thinking BOOLEAN, output_constraint JSON, 
	CONSTRAINT pk_inference_profiles PRIMARY KEY (id), 
	CONSTRAINT fk_inference_profiles_id_execution_profiles FOREIGN KEY(id) REFERENCES execution_profiles (id) ON DELETE CASCADE
);
CREATE TABLE model_aliases (
	id INTEGER NOT NULL, 
	model_pk INTEGER NOT NULL, 
	alias VARCHAR(255) NOT NULL, 
	alias_key VARCHAR(255) NOT NULL, 
	position INTEGER NOT NULL, 
	CONSTRAINT pk_model_aliases PRIMARY KEY (id), 
	CONSTRAINT fk_model_aliases_model_pk_models FOREIGN KEY(model_pk) REFERENCES models (id) ON DELETE CASCADE, 
	CONSTRAINT uq_model_aliases_model_pk_alias UNIQUE (model_pk, alias)
);
CREATE TABLE model_capabilities (
	id INTEGER NOT NULL, 
	model_pk INTEGER NOT NULL, 
	capability_type VARCHAR(32) NOT NULL, 
	probed_at DATETIME, 
	probe_version INTEGER, 
	model_family VARCHAR(128), 
	CONSTRAINT pk_model_capabilities PRIMARY KEY (id), 
	CONSTRAINT fk_model_capabilities_model_pk_models FOREIGN KEY(model_pk) REFERENCES models (id) ON DELETE CASCADE, 
	CONSTRAINT uq_model_capabilities_model_pk UNIQUE (model_pk)
);
CREATE TABLE model_files (
	id INTEGER NOT NULL, 
	model_pk INTEGER NOT NULL, 
	path TEXT NOT NULL, 
	size BIGINT NOT NULL, 
	sha256 VARCHAR(64), 
	revision VARCHAR(128), 
	source TEXT, 
	position INTEGER NOT NULL, 
	CONSTRAINT pk_model_files PRIMARY KEY (id), 
	CONSTRAINT fk_model_files_model_pk_models FOREIGN KEY(model_pk) REFERENCES models (id) ON DELETE CASCADE, 
	CONSTRAINT uq_model_files_model_pk_path UNIQUE (model_pk, path)
);
CREATE TABLE model_tags (
	id INTEGER NOT NULL, 
	model_pk INTEGER NOT NULL, 
	tag VARCHAR(128) NOT NULL, 
	position INTEGER NOT NULL, 
	CONSTRAINT pk_model_tags PRIMARY KEY (id), 
	CONSTRAINT fk_model_tags_model_pk_models FOREIGN KEY(model_pk) REFERENCES models (id) ON DELETE CASCADE, 
	CONSTRAINT uq_model_tags_model_pk_tag UNIQUE (model_pk, tag)
);
CREATE TABLE audio_capabilities (
	id INTEGER NOT NULL, 
	supports_tts BOOLEAN, 
	supports_stt BOOLEAN, 
	CONSTRAINT pk_audio_capabilities PRIMARY KEY (id), 
	CONSTRAINT fk_audio_capabilities_id_model_capabilities FOREIGN KEY(id) REFERENCES model_capabilities (id) ON DELETE CASCADE
);
CREATE TABLE embedding_capabilities (
	id INTEGER NOT NULL, 
	embedding_dimensions INTEGER, 
	max_sequence_length INTEGER, 
	is_normalized BOOLEAN, 
	CONSTRAINT pk_embedding_capabilities PRIMARY KEY (id), 
	CONSTRAINT fk_embedding_capabilities_id_model_capabilities FOREIGN KEY(id) REFERENCES model_capabilities (id) ON DELETE CASCADE
);
CREATE TABLE text_gen_capabilities (
	id INTEGER NOT NULL, 
	supports_native_tools BOOLEAN, 
	supports_thinking BOOLEAN, 
	tool_format VARCHAR(64), 
	practical_max_tokens INTEGER, 
	tool_parser_id VARCHAR(64), 
	thinking_parser_id VARCHAR(64), 
	CONSTRAINT pk_text_gen_capabilities PRIMARY KEY (id), 
	CONSTRAINT fk_text_gen_capabilities_id_model_capabilities FOREIGN KEY(id) REFERENCES model_capabilities (id) ON DELETE CASCADE
);
CREATE TABLE vision_capabilities (
	id INTEGER NOT NULL, 
	supports_native_tools BOOLEAN, 
	supports_thinking BOOLEAN, 
	supports_multi_image BOOLEAN, 
	supports_video BOOLEAN, 
	tool_parser_id VARCHAR(64), 
	thinking_parser_id VARCHAR(64), 
	CONSTRAINT pk_vision_capabilities PRIMARY KEY (id), 
	CONSTRAINT fk_vision_capabilities_id_model_capabilities FOREIGN KEY(id) REFERENCES model_capabilities (id) ON DELETE CASCADE
);
CREATE VIRTUAL TABLE library_fts USING fts5(model_id, repo_id, canonical_id, aliases, family, model_type, tags, description, facets, tokenize = 'unicode61 remove_diacritics 2', prefix = '1 2 3 4 5 6', detail = column);
CREATE TABLE dependency_profiles (
	id INTEGER NOT NULL, 
	profile_id VARCHAR(128) NOT NULL, 
	version INTEGER NOT NULL, 
	environment_kind VARCHAR(32) NOT NULL, 
	description TEXT NOT NULL, 
	created_at DATETIME, 
	CONSTRAINT pk_dependency_profiles PRIMARY KEY (id), 
	CONSTRAINT uq_dependency_profiles_profile_id_version UNIQUE (profile_id, version)
);
CREATE TABLE dependency_requirements (
	id INTEGER NOT NULL, 
	profile_pk INTEGER NOT NULL, 
	position INTEGER NOT NULL, 
	name VARCHAR(128) NOT NULL, 
	extras JSON NOT NULL, 
	pin VARCHAR(64) NOT NULL, 
	markers TEXT, 
	python_requires VARCHAR(64), 
	CONSTRAINT pk_dependency_requirements PRIMARY KEY (id), 
	CONSTRAINT fk_dependency_requirements_profile_pk_dependency_profiles FOREIGN KEY(profile_pk) REFERENCES dependency_profiles (id) ON DELETE CASCADE
);
CREATE TABLE dependency_bindings (
	id INTEGER NOT NULL, 
	binding_id VARCHAR(255) NOT NULL, 
	model_id VARCHAR(255) NOT NULL, 
	profile_id VARCHAR(128) NOT NULL, 
	profile_version INTEGER, 
	environment_kind VARCHAR(32) NOT NULL, 
	platform_selector VARCHAR(64) NOT NULL, 
	backend_key VARCHAR(64) NOT NULL, 
	created_at DATETIME, 
	CONSTRAINT pk_dependency_bindings PRIMARY KEY (id), 
	CONSTRAINT uq_dependency_bindings_binding_id UNIQUE (binding_id)
);
CREATE TABLE model_links (
	id INTEGER NOT NULL, 
	app VARCHAR(64) NOT NULL, 
	model_id VARCHAR(255) NOT NULL, 
	rule_target TEXT NOT NULL, 
	folder VARCHAR(255) NOT NULL, 
	source_path TEXT NOT NULL, 
	target_path VARCHAR(1024) NOT NULL, 
	method VARCHAR(16) NOT NULL, 
	created_at DATETIME, fingerprint VARCHAR(128), 
	CONSTRAINT pk_model_links PRIMARY KEY (id), 
	CONSTRAINT uq_model_links_target_path UNIQUE (target_path)
);
CREATE TABLE "api_keys" (
	id INTEGER NOT NULL, 
	user_id INTEGER NOT NULL, 
	name VARCHAR(64) NOT NULL, 
	key_hash VARCHAR(64) NOT NULL, 
	prefix VARCHAR(32) NOT NULL, 
	created_at DATETIME NOT NULL, 
	revoked_at DATETIME, 
	last_used_at DATETIME, 
	trusted BOOLEAN DEFAULT 0 NOT NULL, 
	CONSTRAINT pk_api_keys PRIMARY KEY (id), 
	CONSTRAINT fk_api_keys_user_id_users FOREIGN KEY(user_id) REFERENCES users (id) ON DELETE CASCADE, 
	CONSTRAINT uq_api_keys_key_hash UNIQUE (key_hash)
);
CREATE TABLE pool_state (
	host VARCHAR(255) NOT NULL, 
	model_id VARCHAR(255) NOT NULL, 
	model_type VARCHAR(32) NOT NULL, 
	size_bytes BIGINT NOT NULL, 
	loaded_at DATETIME NOT NULL, 
	last_used_at DATETIME NOT NULL, 
	use_count INTEGER NOT NULL, 
	updated_at DATETIME NOT NULL, 
	CONSTRAINT pk_pool_state PRIMARY KEY (host, model_id)
);
CREATE TABLE model_overlays (
	id INTEGER NOT NULL, 
	model_pk INTEGER NOT NULL, 
	field VARCHAR(32) NOT NULL, 
	data JSON NOT NULL, 
	updated_at DATETIME, 
	CONSTRAINT pk_model_overlays PRIMARY KEY (id), 
	CONSTRAINT fk_model_overlays_model_pk_models FOREIGN KEY(model_pk) REFERENCES models (id) ON DELETE CASCADE, 
	CONSTRAINT uq_model_overlays_model_pk UNIQUE (model_pk, field)
);
INSERT INTO "alembic_version" VALUES('0013_binding_platform_selectors');
INSERT INTO "dependency_profiles" VALUES(1,'mlx-lm',1,'python-venv','Text generation with mlx-lm',strftime('%Y-%m-%d %H:%M:%f000', 'now'));
INSERT INTO "dependency_profiles" VALUES(2,'mlx-audio',1,'python-venv','Speech (TTS and STT) with mlx-audio',strftime('%Y-%m-%d %H:%M:%f000', 'now'));
INSERT INTO "dependency_profiles" VALUES(3,'mlx-vlm',1,'python-venv','Vision-language models with mlx-vlm',strftime('%Y-%m-%d %H:%M:%f000', 'now'));
INSERT INTO "dependency_profiles" VALUES(4,'mlx-embeddings',1,'python-venv','Text embeddings with mlx-embeddings',strftime('%Y-%m-%d %H:%M:%f000', 'now'));
INSERT INTO "dependency_requirements" VALUES(1,1,0,'mlx','[]','==0.32.4','sys_platform == "darwin"','>=3.10');
INSERT INTO "dependency_requirements" VALUES(2,1,1,'mlx','["cpu"]','==0.32.4','sys_platform == "linux"','>=3.10');
INSERT INTO "dependency_requirements" VALUES(3,1,2,'mlx-lm','[]','==0.32.2',NULL,'>=3.11');
INSERT INTO "dependency_requirements" VALUES(4,2,0,'mlx','[]','==0.32.4','sys_platform == "darwin"','>=3.10');
INSERT INTO "dependency_requirements" VALUES(5,2,1,'mlx','["cpu"]','==0.32.4','sys_platform == "linux"','>=3.10');
INSERT INTO "dependency_requirements" VALUES(6,2,2,'mlx-audio','[]','==0.6.2',NULL,'>=3.10');
INSERT INTO "dependency_requirements" VALUES(7,3,0,'mlx','[]','==0.32.4','sys_platform == "darwin"','>=3.10');
INSERT INTO "dependency_requirements" VALUES(8,3,1,'mlx','["cpu"]','==0.32.4','sys_platform == "linux"','>=3.10');
INSERT INTO "dependency_requirements" VALUES(9,3,2,'mlx-vlm','[]','==0.7.10',NULL,'>=3.10');
INSERT INTO "dependency_requirements" VALUES(10,4,0,'mlx','[]','==0.32.4','sys_platform == "darwin"','>=3.10');
INSERT INTO "dependency_requirements" VALUES(11,4,1,'mlx','["cpu"]','==0.32.4','sys_platform == "linux"','>=3.10');
INSERT INTO "dependency_requirements" VALUES(12,4,2,'mlx-embeddings','[]','==0.1.0',NULL,'>=3.10');
INSERT INTO "dependency_bindings" VALUES(1,'qwen3-0.6b-4bit-v1:mlx-lm','qwen3-0.6b-4bit-v1','mlx-lm',1,'python-venv','*','mlx-lm',strftime('%Y-%m-%d %H:%M:%f000', 'now'));
INSERT INTO "dependency_bindings" VALUES(2,'qwen3-4b-4bit-v1:mlx-lm','qwen3-4b-4bit-v1','mlx-lm',1,'python-venv','*','mlx-lm',strftime('%Y-%m-%d %H:%M:%f000', 'now'));
INSERT INTO "dependency_bindings" VALUES(3,'qwen3-4b-instruct-2507-4bit-v1:mlx-lm','qwen3-4b-instruct-2507-4bit-v1','mlx-lm',1,'python-venv','*','mlx-lm',strftime('%Y-%m-%d %H:%M:%f000', 'now'));
INSERT INTO "dependency_bindings" VALUES(4,'qwen3-8b-4bit-v1:mlx-lm','qwen3-8b-4bit-v1','mlx-lm',1,'python-venv','*','mlx-lm',strftime('%Y-%m-%d %H:%M:%f000', 'now'));
INSERT INTO "dependency_bindings" VALUES(5,'llama-3.2-1b-instruct-4bit-v1:mlx-lm','llama-3.2-1b-instruct-4bit-v1','mlx-lm',1,'python-venv','*','mlx-lm',strftime('%Y-%m-%d %H:%M:%f000', 'now'));
INSERT INTO "dependency_bindings" VALUES(6,'llama-3.2-3b-instruct-4bit-v1:mlx-lm','llama-3.2-3b-instruct-4bit-v1','mlx-lm',1,'python-venv','*','mlx-lm',strftime('%Y-%m-%d %H:%M:%f000', 'now'));
INSERT INTO "dependency_bindings" VALUES(7,'gemma-3-1b-it-4bit-v1:mlx-lm','gemma-3-1b-it-4bit-v1','mlx-lm',1,'python-venv','*','mlx-lm',strftime('%Y-%m-%d %H:%M:%f000', 'now'));
INSERT INTO "dependency_bindings" VALUES(8,'smollm3-3b-4bit-v1:mlx-lm','smollm3-3b-4bit-v1','mlx-lm',1,'python-venv','*','mlx-lm',strftime('%Y-%m-%d %H:%M:%f000', 'now'));
INSERT INTO "dependency_bindings" VALUES(9,'whisper-large-v3-turbo-v1:mlx-audio','whisper-large-v3-turbo-v1','mlx-audio',1,'python-venv','*','mlx-audio',strftime('%Y-%m-%d %H:%M:%f000', 'now'));
INSERT INTO "dependency_bindings" VALUES(10,'kokoro-82m-bf16-v1:mlx-audio','kokoro-82m-bf16-v1','mlx-audio',1,'python-venv','*','mlx-audio',strftime('%Y-%m-%d %H:%M:%f000', 'now'));
INSERT INTO "dependency_bindings" VALUES(11,'gemma-3-4b-it-4bit-v1:mlx-vlm','gemma-3-4b-it-4bit-v1','mlx-vlm',1,'python-venv','*','mlx-vlm',strftime('%Y-%m-%d %H:%M:%f000', 'now'));
INSERT INTO "dependency_bindings" VALUES(12,'qwen2.5-vl-3b-instruct-4bit-v1:mlx-vlm','qwen2.5-vl-3b-instruct-4bit-v1','mlx-vlm',1,'python-venv','*','mlx-vlm',strftime('%Y-%m-%d %H:%M:%f000', 'now'));
INSERT INTO "dependency_bindings" VALUES(13,'all-minilm-l6-v2-4bit-v1:mlx-embeddings','all-minilm-l6-v2-4bit-v1','mlx-embeddings',1,'python-venv','*','mlx-embeddings',strftime('%Y-%m-%d %H:%M:%f000', 'now'));
CREATE INDEX ix_audit_logs_model_timestamp ON audit_logs (model, timestamp);
CREATE INDEX ix_audit_logs_request_id ON audit_logs (request_id);
CREATE INDEX ix_audit_logs_status ON audit_logs (status);
CREATE INDEX ix_audit_logs_timestamp ON audit_logs (timestamp);
CREATE INDEX ix_backend_mappings_model_pattern ON backend_mappings (model_pattern);
CREATE INDEX ix_cloud_credentials_backend_type ON cloud_credentials (backend_type);
CREATE INDEX ix_downloads_model_id ON downloads (model_id);
CREATE INDEX ix_downloads_status ON downloads (status);
CREATE INDEX ix_execution_profiles_model_id ON execution_profiles (model_id);
CREATE INDEX ix_execution_profiles_profile_type ON execution_profiles (profile_type);
CREATE INDEX ix_models_canonical_id ON models (canonical_id);
CREATE INDEX ix_models_model_type ON models (model_type);
CREATE INDEX ix_models_repo_id ON models (repo_id);
CREATE INDEX ix_models_status ON models (status);
CREATE INDEX ix_model_aliases_alias ON model_aliases (alias);
CREATE INDEX ix_model_aliases_alias_key ON model_aliases (alias_key);
CREATE INDEX ix_model_aliases_model_pk ON model_aliases (model_pk);
CREATE INDEX ix_model_capabilities_capability_type ON model_capabilities (capability_type);
CREATE INDEX ix_model_files_model_pk ON model_files (model_pk);
CREATE INDEX ix_model_tags_model_pk ON model_tags (model_pk);
CREATE INDEX ix_model_tags_tag ON model_tags (tag);
CREATE INDEX ix_dependency_profiles_profile_id ON dependency_profiles (profile_id);
CREATE INDEX ix_dependency_requirements_profile_pk ON dependency_requirements (profile_pk);
CREATE INDEX ix_dependency_bindings_model_id ON dependency_bindings (model_id);
CREATE INDEX ix_model_links_app ON model_links (app);
CREATE INDEX ix_model_links_model_id ON model_links (model_id);
CREATE INDEX ix_api_keys_user_id ON api_keys (user_id);
CREATE INDEX ix_audit_logs_host ON audit_logs (host);
CREATE INDEX ix_model_overlays_model_pk ON model_overlays (model_pk);
COMMIT;
