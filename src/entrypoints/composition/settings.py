"""Settings from the environment (validated as pydantic does, at the edge; see env_settings)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from domain.enums import EvictionPolicy
from entrypoints.composition.env_settings import EnvSettings, Field, field_validator

if TYPE_CHECKING:
    from pydantic import SecretStr  # a set secret is validated by pydantic (env_settings)

__all__ = ["DistributionSettings", "EnvSettings", "ManagerSettings", "ServerSettings", "Settings",
           "database_url_problem", "describe_settings_error"]

_AUTH_SYNONYMS = {"true": "on", "yes": "on", "1": "on", "false": "off", "no": "off", "0": "off"}
_ENV_PREFIXES = {"ManagerSettings": "MLX_MANAGER_", "ServerSettings": "MLX_SERVER_", "DistributionSettings": "MLX_",
                 "ShardingSettings": "MLX_SHARDING_"}


def database_url_problem(value: str) -> str | None:
    """Why mlxm cannot use this database URL, judged by its form only (SQLAlchemy is not imported for
    settings); None when it may. Also `mlxm db copy --to`'s check."""
    scheme, separator, rest = value.strip().partition("://")
    backend = scheme.split("+", 1)[0].lower()
    if not separator or backend not in ("sqlite", "postgresql"):
        return "not a database URL mlxm uses: sqlite:////path/mlxm.db or postgresql+psycopg://user@host/db"
    if backend == "sqlite" and rest.lstrip("/") in ("", ":memory:"):
        return ("a SQLite URL needs a file (sqlite:////path/mlxm.db): "
                "an in-memory database is gone when the command ends")
    return None


def describe_settings_error(exc: BaseException) -> str | None:
    """One line naming the environment variables a settings ValidationError is about (None: not one)."""
    from pydantic import ValidationError

    prefix = _ENV_PREFIXES.get(getattr(exc, "title", ""))
    if not isinstance(exc, ValidationError) or prefix is None:
        return None
    problems = []
    for error in exc.errors():
        name = prefix + "_".join(str(part) for part in error["loc"]).upper()
        problems.append(f"{name}={error.get('input')!r}: {error['msg']}")
    return "invalid setting " + "; ".join(problems)


class ManagerSettings(EnvSettings):
    """`MLX_MANAGER_*`: where mlxm keeps its state and how it serves."""

    env_prefix = "MLX_MANAGER_"

    home: Path = Field(default_factory=lambda: Path.home() / ".mlx-manager")
    database_url: str | None = None
    # This server's name in a database several servers share (audit rows, pool state); default: hostname.
    host_name: str = Field(default_factory=lambda: __import__("socket").gethostname(), min_length=1, max_length=255)
    host: str = "127.0.0.1"
    port: int = Field(default=10242, ge=1, le=65535)
    offline: bool = False
    log_format: Literal["console", "json"] = "console"
    # uvicorn's levels: any other word was a KeyError inside `mlxm serve` (exit 70)
    log_level: Literal["critical", "error", "warning", "info", "debug", "trace"] = "info"
    # on | off | auto (on whenever bound to a non-loopback address); true/false, yes/no, 1/0 are synonyms.
    # Anything else stops start-up: a typo must never quietly leave the server open.
    auth: Literal["on", "off", "auto"] = "auto"
    download_workers: int = Field(default=4, ge=1, le=32)  # files a pull transfers at once
    # Deadlines of every hub call (adapters.downloads.http_transfer.TransferLimits).
    download_connect_timeout_seconds: float = Field(default=10.0, gt=0)
    download_read_timeout_seconds: float = Field(default=30.0, gt=0)
    download_stall_seconds: float = Field(default=30.0, gt=0)
    download_stall_bytes: int = Field(default=64 * 1024, ge=1)
    download_retries: int = Field(default=3, ge=0, le=20)
    download_backoff_seconds: float = Field(default=0.5, ge=0)
    download_receive_buffer_bytes: int = Field(default=0, ge=0)  # SO_RCVBUF per connection; 0: OS autotuning
    # Encrypts cloud credentials at rest; unset: a key file `<home>/secret.key` (mode 0600) is used.
    secret_key: SecretStr | None = None
    # The HTTP edge (entrypoints.http.edge), comma-separated. Hosts beyond loopback and the bind address
    # (`*.example.com` for sub-domains, `*` for any); origins (scheme://host[:port]) that may send
    # state-changing requests. Only listed origins get CORS headers: unset, CORS is off.
    allowed_hosts: str = ""
    allowed_origins: str = ""
    # A bearer token that may read GET /metrics when auth is on (besides an admin key).
    metrics_token: SecretStr | None = None
    search_cache_ttl_seconds: float = Field(default=3600.0, ge=0.0)  # hub search answers kept this long
    # Folders whose contents `POST /api/models/import` may read (JSON list, or paths joined by os.pathsep).
    # Empty: HTTP import is off, except for an admin key with auth on. The CLI's `mlxm import` is unaffected.
    allowed_model_dirs: list[Path] = Field(default_factory=list)
    # The default author for bare model names in `mlxm pull` (`<org>/<name>` is tried after the catalog).
    hf_organization: str | None = None

    @field_validator("auth", mode="before")
    @classmethod
    def _auth_mode(cls, value: object) -> object:
        if isinstance(value, bool):
            return "on" if value else "off"
        if isinstance(value, str):
            word = value.strip().lower()
            return _AUTH_SYNONYMS.get(word, word)
        return value

    @field_validator("log_format", "log_level", mode="before")
    @classmethod
    def _lower_word(cls, value: object) -> object:
        return value.strip().lower() if isinstance(value, str) else value

    @field_validator("allowed_model_dirs", mode="before")
    @classmethod
    def _path_list(cls, value: object) -> object:
        if isinstance(value, str):
            return [part for part in value.split(os.pathsep) if part.strip()]
        return value

    @field_validator("allowed_model_dirs", mode="after")
    @classmethod
    def _expand_dirs(cls, value: list[Path]) -> list[Path]:
        return [path.expanduser() for path in value]

    @field_validator("home", mode="before")
    @classmethod
    def _home_given(cls, value: object) -> object:
        if isinstance(value, str) and not value.strip():
            # Path("") is the current folder: an unset shell variable would scatter a library into it.
            raise ValueError("is empty: unset it (home ~/.mlx-manager) or name a folder")
        return value

    @field_validator("home", mode="after")
    @classmethod
    def _expand_home(cls, value: Path) -> Path:
        try:
            value = value.expanduser()
        except RuntimeError as exc:  # `~nobody-here/x`: no such user
            raise ValueError(f"cannot expand {str(value)!r}: {exc}") from None
        if os.path.lexists(value) and not os.path.isdir(value):
            # A file (or a dangling or looping symlink) where the home should be: one clear line now,
            # instead of "File exists" or "Too many levels of symbolic links" from whichever command runs.
            raise ValueError(f"{str(value)!r} is not a folder")
        return value

    @field_validator("database_url", mode="after")
    @classmethod
    def _database_url(cls, value: str | None) -> str | None:
        # Checked by its form only (SQLAlchemy is not imported for settings): a URL it cannot use would
        # otherwise surface as an internal error of whichever command opens the database first.
        if value is None:
            return None
        if problem := database_url_problem(value):
            raise ValueError(problem)
        return value

    @field_validator("allowed_origins", mode="after")
    @classmethod
    def _explicit_origins(cls, value: str) -> str:
        for origin in value.replace(" ", ",").split(","):
            origin = origin.strip()
            if origin and (origin == "*" or "://" not in origin):
                # CORS must be configured explicitly: no wildcard, every entry a scheme://host[:port].
                raise ValueError(f"{origin!r} is not an origin like http://host:port (no wildcards)")
        return value

    @property
    def resolved_database_url(self) -> str:
        return self.database_url or f"sqlite:///{self.home / 'mlxm.db'}"

    @property
    def models_dir(self) -> Path:
        return self.home / "models"

    @property
    def staging_dir(self) -> Path:
        return self.home / "staging"

    @property
    def cache_dir(self) -> Path:
        return self.home / "cache"


class ServerSettings(EnvSettings):
    """`MLX_SERVER_*`: inference defaults and the model pool's limits."""

    env_prefix = "MLX_SERVER_"

    max_models: int = Field(default=4, ge=1)
    max_memory_gb: float = Field(default=0.0, ge=0.0)  # 0 = no memory limit
    default_max_tokens: int = Field(default=4096, ge=1, le=128_000)
    default_temperature: float = Field(default=0.7, ge=0.0, le=2.0)
    default_top_p: float = Field(default=1.0, ge=0.0, le=1.0)
    eviction_policy: EvictionPolicy = EvictionPolicy.LRU
    idle_ttl_seconds: float = Field(default=900.0, ge=0.0)
    request_timeout_seconds: float = Field(default=300.0, gt=0)
    # `mlxm serve` stopping (Ctrl-C, SIGTERM): running requests get this long to finish, then their
    # streams are cancelled (generation stops). A second Ctrl-C cancels them at once.
    shutdown_grace_seconds: float = Field(default=5.0, ge=0.0)
    load_timeout_seconds: float = Field(default=600.0, gt=0)
    enable_batching: bool = True
    max_batch_size: int = Field(default=8, ge=1)
    # Prompt (KV) cache per loaded text or vision model: entries and bytes (0 turns it off). The pool counts its
    # bytes with the model's and frees it before evicting any model.
    prompt_cache_size: int = Field(default=10, ge=0)
    prompt_cache_bytes: int = Field(default=2 * 2**30, ge=0)
    # Prompt tokens one request may bring (0: only the model's context window limits it).
    max_prompt_tokens: int = Field(default=0, ge=0)
    # Prompt tokens prefilled per step: a disconnect stops a prefill within one step, and running
    # streams decode between steps.
    prefill_step_size: int = Field(default=512, ge=16)
    embedding_batch_size: int = Field(default=32, ge=1)  # inputs per embeddings forward pass
    allow_remote_images: bool = False  # http(s) image URLs are a server-side fetch: off by default
    max_image_bytes: int = Field(default=20 * 1024 * 1024, ge=1024)
    remote_image_timeout_seconds: float = Field(default=10.0, gt=0)
    max_body_bytes: int = Field(default=50 * 1024 * 1024, ge=1024)
    audit_retention_days: int = Field(default=30, ge=0)
    # Connection guard (entrypoints.http.connections): a request's head must arrive within
    # header_timeout, its body within body_timeout; at most max_connections open at once
    # (0 = derived from the process's open-file limit).
    header_timeout_seconds: float = Field(default=10.0, gt=0)
    body_timeout_seconds: float = Field(default=60.0, gt=0)
    max_connections: int = Field(default=0, ge=0)
    # Per-endpoint limits on one inference request (0: none). Past it the request is cancelled (its
    # generation stops) and answered 504 (entrypoints.http.inference_timeouts).
    timeout_chat_seconds: float = Field(default=0.0, ge=0)
    timeout_completions_seconds: float = Field(default=0.0, ge=0)
    timeout_embeddings_seconds: float = Field(default=0.0, ge=0)


class DistributionSettings(EnvSettings):
    """Mirror and signed remote catalog (`MLX_*`). Unset means Hugging Face and the embedded catalog."""

    env_prefix = "MLX_"

    mirror_base_url: str | None = None
    catalog_url: str | None = None
    catalog_pubkey: str | None = None  # base64 Ed25519 public key, or a file holding it (or a PEM)
    catalog_refresh_seconds: float = Field(default=3600.0, ge=0.0)  # server's periodic refresh; 0 = off
    catalog_timeout_seconds: float = Field(default=10.0, gt=0.0)  # whole fetch, catalog and signature each
    catalog_max_bytes: int = Field(default=8 * 1024 * 1024, ge=1024)  # decoded body cap


class ShardingSettings(EnvSettings):
    """`MLX_SHARDING_*` (or `mlxm serve --hosts FILE [--tensor|--pipeline] [--shard NAME]`): text models
    sharded over several ranks with mx.distributed, started through mlx.launch. Unset hostfile: all local."""

    env_prefix = "MLX_SHARDING_"

    hostfile: str | None = None  # mlx.distributed_config / mlx.launch --hostfile JSON; the first host is this one
    mode: Literal["tensor", "pipeline"] = "tensor"
    models: list[str] = Field(default_factory=list)  # model ids to shard; empty: every text-gen model
    backend: str | None = None  # mx.distributed backend for mlx.launch (default: the hostfile's, else ring)
    # A rank that hangs blocks the others' collectives with no timeout: rank 0's heartbeats stop and
    # the model is failed after this long without one (a heartbeat comes per token and per prefill chunk).
    heartbeat_timeout_seconds: float = Field(default=30.0, gt=0)
    starting_port: int = Field(default=0, ge=0, le=65000)  # ring backend's first port (0: a free one)


class Settings:
    """All settings groups, read once from the environment."""

    def __init__(
        self,
        manager: ManagerSettings | None = None,
        server: ServerSettings | None = None,
        distribution: DistributionSettings | None = None,
        sharding: ShardingSettings | None = None,
    ) -> None:
        self.manager = manager or ManagerSettings()
        self.server = server or ServerSettings()
        self.distribution = distribution or DistributionSettings()
        self.sharding = sharding or ShardingSettings()
