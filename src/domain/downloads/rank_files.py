"""Which files one rank of a pipeline-sharded model needs (`mlxm pull NAME --rank R --ranks N`).

Mirrors what mlx-lm's `sharded_load` reads for a pipeline stage (mlx-lm 0.32, `utils.sharded_load` and
`models/pipeline.py` `PipelineMixin.pipeline`): the layers are split evenly, the low ranks taking the extra
ones, and rank r runs the layers after those of ranks r+1 .. N-1 (rank 0 holds the LAST layers). A weight
file is needed when it holds a tensor of one of the rank's layers, or any tensor outside the layers
(embeddings, final norm, head: every stage keeps them). Tensor parallelism slices every layer: every rank
needs every file, so it has no per-rank selection.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

TAG_PREFIX = "rank-files:"  # library tag of a partial install: "rank-files:R/N"
_LAYER = re.compile(r"(?:^|\.)layers\.(\d+)\.")  # the pattern sharded_load matches weight names with


@dataclass(frozen=True)
class RankShard:
    rank: int
    ranks: int

    def __post_init__(self) -> None:
        if self.ranks < 2 or not 0 <= self.rank < self.ranks:
            raise ValueError(f"rank must be in 0..{self.ranks - 1} and ranks at least 2 (got {self.rank} of {self.ranks})")

    @property
    def tag(self) -> str:
        return f"{TAG_PREFIX}{self.rank}/{self.ranks}"

    @classmethod
    def from_tags(cls, tags) -> "RankShard | None":
        for tag in tags or ():
            if isinstance(tag, str) and tag.startswith(TAG_PREFIX):
                rank, _, ranks = tag[len(TAG_PREFIX):].partition("/")
                try:
                    return cls(int(rank), int(ranks))
                except ValueError:
                    return None
        return None


def pipeline_layers(num_layers: int, shard: RankShard) -> range:
    """The layer indices rank `shard.rank` runs (mlx-lm's default, even split)."""
    if num_layers < shard.ranks:
        raise ValueError(f"{num_layers} layers cannot be split over {shard.ranks} ranks")
    base, extra = divmod(num_layers, shard.ranks)
    split = [base + (1 if r < extra else 0) for r in range(shard.ranks)]
    start = sum(split[shard.rank + 1:])
    return range(start, start + split[shard.rank])


def rank_weight_files(weight_map: dict[str, str], num_layers: int, shard: RankShard) -> set[str]:
    """The weight files (values of model.safetensors.index.json's weight_map) the rank reads."""
    layers = pipeline_layers(num_layers, shard)
    needed: set[str] = set()
    for name, file in weight_map.items():
        match = _LAYER.search(name)
        if match is None or int(match.group(1)) in layers:
            needed.add(file)
    return needed


def num_hidden_layers(config: dict) -> int | None:
    """The layer count of a model's config.json (a multimodal model's text_config included)."""
    for source in (config, config.get("text_config") or {}):
        value = source.get("num_hidden_layers") or source.get("n_layers") or source.get("num_layers")
        if isinstance(value, int) and not isinstance(value, bool) and value > 0:
            return value
    return None
