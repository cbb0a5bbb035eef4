"""A tiny random-weight model that mlx-lm can shard both ways (tensor AND pipeline), built offline.

In mlx-lm 0.32 only a few architectures implement `model.model.pipeline` (bailing_hybrid, deepseek_v41,
kimi_k3, minimax_m3_vl, ministral3, muse_spark, qwen3_5, qwen3_next); `ministral3` is llama-shaped (it also
has `shard` for tensor parallelism), so one tiny model serves both two-rank tests. The weights are written
as one safetensors file per layer plus one for the rest, with a `model.safetensors.index.json`, as a hub
snapshot of a large model is: `sharded_load` reads the index to load only the local stage's files, and
`mlxm pull --rank` uses it to fetch only those.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from tests.support.tiny_models import _LLAMA_SPECIAL, CHAT_TEMPLATE, _prepare_dest, _train_bpe, _write_json


def build_tiny_ministral3(dest: Path, *, hidden_size: int = 64, num_layers: int = 4, intermediate_size: int = 128,
                          heads: int = 4, kv_heads: int = 2, seed: int = 0,
                          max_position_embeddings: int = 2048) -> Path:
    import mlx.core as mx
    from mlx.utils import tree_flatten
    from mlx_lm.models.ministral3 import Model, ModelArgs
    from transformers import PreTrainedTokenizerFast

    dest = _prepare_dest(dest)
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=_train_bpe(300, _LLAMA_SPECIAL), bos_token="<s>", eos_token="</s>", unk_token="<unk>",
        pad_token="</s>", additional_special_tokens=["<|system|>", "<|user|>", "<|assistant|>"],
        model_max_length=max_position_embeddings, clean_up_tokenization_spaces=False,
    )
    tokenizer.chat_template = CHAT_TEMPLATE
    tokenizer.save_pretrained(str(dest))
    config = {
        "architectures": ["Ministral3ForCausalLM"],
        "model_type": "ministral3",
        "hidden_size": hidden_size,
        "num_hidden_layers": num_layers,
        "intermediate_size": intermediate_size,
        "num_attention_heads": heads,
        "num_key_value_heads": kv_heads,
        "head_dim": hidden_size // heads,
        "vocab_size": len(tokenizer),
        "rms_norm_eps": 1e-5,
        "max_position_embeddings": max_position_embeddings,
        "rope_parameters": {"rope_type": "default", "rope_theta": 10000.0, "llama_4_scaling_beta": 0.1,
                            "original_max_position_embeddings": max_position_embeddings},
        "tie_word_embeddings": False,  # an lm_head: more varied greedy tokens than a tied random model
        "bos_token_id": tokenizer.bos_token_id,
        "eos_token_id": tokenizer.eos_token_id,
        "torch_dtype": "float32",
    }
    _write_json(dest / "config.json", config)
    mx.random.seed(seed)
    model = Model(ModelArgs.from_dict(config))
    weights = dict(tree_flatten(model.parameters()))
    mx.eval(list(weights.values()))
    files: dict[str, dict] = {}
    for name, value in weights.items():
        match = re.search(r"(?:^|\.)layers\.(\d+)\.", name)
        file = f"model-layer-{int(match.group(1)):02d}.safetensors" if match else "model-rest.safetensors"
        files.setdefault(file, {})[name] = value
    weight_map = {}
    for file, tensors in sorted(files.items()):
        mx.save_safetensors(str(dest / file), tensors, metadata={"format": "mlx"})
        weight_map.update({name: file for name in tensors})
    total = sum(v.nbytes for v in weights.values())
    (dest / "model.safetensors.index.json").write_text(
        json.dumps({"metadata": {"total_size": total}, "weight_map": dict(sorted(weight_map.items()))}, indent=2))
    return dest
