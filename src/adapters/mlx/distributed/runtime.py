"""`ModelRuntime` adapters for text models sharded over several ranks with `mx.distributed`.

- `MlxDistributedRuntime`: a text runtime (it is `MlxTextRuntime` with a different engine). Loading starts
  the ranks (`RankGroup`: `mlx.launch`, each rank `sharded_load`s its shard) and keeps only the tokenizer
  in the server process; generation goes through `RemoteEngine`, so chat templates, stop strings,
  streaming, cancellation (closing the stream cancels on the ranks), tool-call parsing and logprobs work
  as for a local model. Not supported on a sharded model (a 400 naming it): n > 1, structured output and
  forced tool calls (both need constrained decoding on the ranks).
- `ShardingRuntime`: the runtime the container uses with `mlxm serve --hosts`: text-gen models chosen for
  sharding (all of them, or `--shard NAME`) go to the distributed runtime, everything else stays local.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Iterator

from adapters.mlx.distributed.engine import RemoteEngine
from adapters.mlx.distributed.group import LOCAL_HOSTS, Hostfile, RankGroup
from adapters.mlx.text import MlxTextRuntime, TextModelHandle
from application.errors import InvalidRequest, Unavailable
from application.inference.ports import (
    EmbeddingRequest,
    EmbeddingResult,
    GenerationChunk,
    GenerationRequest,
    LoadedModel,
    NotSupported,
    PromptCacheStats,
    Sharding,
    Transcription,
)
from domain.enums import ModelType
from domain.profiles.params import AudioDefaults


class MlxDistributedRuntime(MlxTextRuntime):
    def __init__(self, hostfile: Path | str, *, mode: str = "tensor", backend: str | None = None,
                 heartbeat_timeout: float = 30.0, load_timeout: float = 600.0, starting_port: int = 0,
                 prefill_step_size: int = 512, max_prompt_tokens: int = 0) -> None:
        super().__init__(enable_batching=False, prefill_step_size=prefill_step_size, prompt_cache_entries=0,
                         prompt_cache_bytes=0, max_prompt_tokens=max_prompt_tokens)
        if mode not in ("tensor", "pipeline"):
            raise InvalidRequest(f"sharding mode must be tensor or pipeline, not {mode!r}")
        self.hostfile = Hostfile.read(hostfile)
        self.mode = mode
        self.backend = backend
        self.heartbeat_timeout = heartbeat_timeout
        self.load_timeout = load_timeout
        self.starting_port = starting_port

    def load(self, model_id: str, path: Path, model_type: ModelType) -> LoadedModel:
        from mlx_lm.utils import load_tokenizer

        path = Path(path)
        if not (path / "config.json").is_file():
            raise InvalidRequest(f"{model_id}: {path} has no config.json; is the model fully installed?")
        config = json.loads((path / "config.json").read_text())
        if self.mode == "pipeline" and not (path / "model.safetensors.index.json").is_file():
            raise NotSupported(f"{model_id}: pipeline sharding needs model.safetensors.index.json (mlx-lm picks "
                               "each stage's files from it); use --tensor")
        tokenizer = load_tokenizer(path, eos_token_ids=config.get("eos_token_id"))
        loaded = LoadedModel(model_id, ModelType(model_type), path, 0)
        engine: RemoteEngine | None = None

        def failed(reason: str) -> None:
            loaded.sharding = replace(loaded.sharding, unavailable=group.unavailable_reason()) \
                if loaded.sharding is not None else None
            if engine is not None:
                engine.fail(group.unavailable_reason())

        group = RankGroup(model_id, path, self.hostfile, mode=self.mode, backend=self.backend,
                          heartbeat_timeout=self.heartbeat_timeout, load_timeout=self.load_timeout,
                          starting_port=self.starting_port, prefill_step_size=self.prefill_step_size,
                          on_message=lambda message: engine.on_message(message) if engine is not None else None,
                          on_failure=failed)
        try:
            info = group.start()
        except Unavailable as exc:
            if "does not support" in str(exc):  # mlx-lm refused the architecture: the request's mode, not a fault
                raise NotSupported(f"{exc} (mlx-lm can pipeline only some architectures; try --tensor)") from None
            raise
        engine = RemoteEngine(group)
        # The pool's limits are about this machine's memory: count the ranks that run here.
        loaded.size_bytes = sum(size for size, host in zip(info.rank_bytes, self.hostfile.hosts) if host in LOCAL_HOSTS)
        loaded.sharding = Sharding(mode=self.mode, hosts=self.hostfile.hosts, backend=group.backend,
                                   rank_bytes=info.rank_bytes, unavailable=None if group.available
                                   else group.unavailable_reason())
        loaded.handle = TextModelHandle(model=None, tokenizer=tokenizer, engine=engine, config=config)
        return loaded

    def generate(self, model: LoadedModel, request: GenerationRequest) -> Iterator[GenerationChunk]:
        self._require_available(model)
        if int(request.n or 1) > 1:
            raise NotSupported(f"{model.model_id} is sharded over several ranks: n > 1 is not supported")
        forced = request.tools and request.tool_choice not in (None, "auto", "none")
        if request.constraint is not None or forced:
            raise NotSupported(f"{model.model_id} is sharded over several ranks: structured output and forced tool "
                               "calls (constrained decoding) are not supported")
        return super().generate(model, request)

    def count_tokens(self, model: LoadedModel, request: GenerationRequest) -> int:
        return super().count_tokens(model, request)  # the tokenizer is local: works while the ranks are down

    def warm(self, model: LoadedModel, request: GenerationRequest) -> int:
        return 0  # no prompt cache on the ranks

    @staticmethod
    def _require_available(model: LoadedModel) -> None:
        handle = model.handle
        engine = getattr(handle, "engine", None)
        if handle is None or not isinstance(engine, RemoteEngine):
            raise Unavailable(f"{model.model_id} was unloaded")
        if not engine.group.available:
            raise Unavailable(engine.group.unavailable_reason())


class ShardingRuntime:
    """Routes text-gen models chosen for sharding to the distributed runtime, the rest to the local one."""

    def __init__(self, local, distributed: MlxDistributedRuntime, models: list[str] | tuple[str, ...] = ()) -> None:
        self.local = local
        self.distributed = distributed
        self.models = frozenset(models)  # empty: every text-gen model is sharded

    def shards(self, model_id: str, model_type: ModelType) -> bool:
        return ModelType(model_type) is ModelType.TEXT_GEN and (not self.models or model_id in self.models)

    def _for(self, model: LoadedModel):
        return self.distributed if model.sharding is not None else self.local

    def load(self, model_id: str, path: Path, model_type: ModelType) -> LoadedModel:
        runtime = self.distributed if self.shards(model_id, model_type) else self.local
        return runtime.load(model_id, path, model_type)

    def unload(self, model: LoadedModel) -> None:
        self._for(model).unload(model)

    def generate(self, model: LoadedModel, request: GenerationRequest) -> Iterator[GenerationChunk]:
        return self._for(model).generate(model, request)

    def count_tokens(self, model: LoadedModel, request: GenerationRequest) -> int:
        return self._for(model).count_tokens(model, request)

    def warm(self, model: LoadedModel, request: GenerationRequest) -> int:
        return self._for(model).warm(model, request)

    def cache_bytes(self, model: LoadedModel) -> int:
        return self._for(model).cache_bytes(model)

    def free_cache(self, model: LoadedModel) -> int:
        return self._for(model).free_cache(model)

    def cache_stats(self, model: LoadedModel) -> PromptCacheStats | None:
        return self._for(model).cache_stats(model)

    def synthesize(self, model: LoadedModel, text: str, audio: AudioDefaults) -> bytes:
        return self._for(model).synthesize(model, text, audio)

    def transcribe(self, model: LoadedModel, audio: bytes, language: str | None) -> Transcription:
        return self._for(model).transcribe(model, audio, language)

    def embed(self, model: LoadedModel, request: EmbeddingRequest) -> EmbeddingResult:
        return self._for(model).embed(model, request)
