"""Tiny random-weight vision and embedding models of real architectures, built offline.

- ``build_tiny_qwen2_vl``: a Qwen2-VL (mlx-vlm ``model_type: qwen2_vl``) with a 1-block vision
  tower, its tokenizer (with the ``<|vision_start|><|image_pad|><|vision_end|>`` tokens), chat
  template and image-processor config; ``mlx_vlm.load(dir)`` loads it with mlx-vlm's own
  numpy processor (no torch).
- ``build_tiny_qwen3_5``: a Qwen3.5 (mlx-vlm ``model_type: qwen3_5``): the same tokenizer and template, a
  hybrid language model (one gated-delta linear-attention layer, one full-attention layer), so mlx-vlm's
  prompt cache (APC) runs it in "checkpoint" mode rather than the dense models' "block" mode.
- ``build_tiny_bert``: a BERT encoder (mlx-embeddings ``model_type: bert``) with a WordPiece
  tokenizer and sentence-transformers ``modules.json`` (mean pooling + Normalize).
- ``build_tiny_qwen3_embedding``: a Qwen3 decoder (mlx-lm ``model_type: qwen3``) laid out like
  Qwen3-Embedding: the tokenizer appends ``<|endoftext|>`` and pooling is last-token, normalised.

Outputs are noise; tests rely on the real load/run path and on determinism (same seed, same bytes).
"""

from __future__ import annotations

import json
from pathlib import Path

from tests.support.tiny_models import _prepare_dest, _save_weights, _train_bpe, _write_json

VLM_CHAT_TEMPLATE = (
    "{%- for message in messages -%}"
    "{{ '<|im_start|>' + message['role'] + '\n' }}"
    "{%- if message['content'] is string -%}{{ message['content'] }}"
    "{%- else -%}{%- for part in message['content'] -%}"
    "{%- if part['type'] == 'image' or 'image' in part -%}{{ '<|vision_start|><|image_pad|><|vision_end|>' }}"
    "{%- elif part['type'] == 'video' -%}{{ '<|vision_start|><|video_pad|><|vision_end|>' }}"
    "{%- elif part['type'] == 'text' -%}{{ part['text'] }}{%- endif -%}"
    "{%- endfor -%}{%- endif -%}"
    "{{ '<|im_end|>\n' }}"
    "{%- endfor -%}"
    "{%- if add_generation_prompt -%}{{ '<|im_start|>assistant\n' }}{%- endif -%}"
)
# The same template, plus tools and tool turns in the Hermes/Qwen JSON format: its `<tool_call>` and
# `tool_call.name` make mlx-lm infer the `json_tools` parser (as for Qwen2.5/Qwen3 chat templates).
VLM_TOOLS_CHAT_TEMPLATE = (
    "{%- if tools -%}{{ '<|im_start|>system\ntools:' }}"
    "{%- for tool in tools -%}{{ ' ' + tool['function']['name'] }}{%- endfor -%}"
    "{{ '\nAnswer with <tool_call>{\"name\": ..., \"arguments\": {...}}</tool_call><|im_end|>\n' }}{%- endif -%}"
    "{%- for message in messages -%}"
    "{%- if message['role'] == 'tool' -%}{{ '<|im_start|>tool\n' + message['content'] + '<|im_end|>\n' }}"
    "{%- elif message.get('tool_calls') -%}{{ '<|im_start|>assistant\n' }}"
    "{%- for call in message['tool_calls'] -%}{%- set tool_call = call['function'] -%}"
    "{{ '<tool_call>{\"name\": \"' + tool_call.name + '\", \"arguments\": ' + (tool_call.arguments | tojson) + '}</tool_call>' }}"
    "{%- endfor -%}{{ '<|im_end|>\n' }}"
    "{%- else -%}{{ '<|im_start|>' + message['role'] + '\n' }}"
    "{%- if message['content'] is string -%}{{ message['content'] }}"
    "{%- else -%}{%- for part in message['content'] -%}"
    "{%- if part['type'] == 'image' or 'image' in part -%}{{ '<|vision_start|><|image_pad|><|vision_end|>' }}"
    "{%- elif part['type'] == 'text' -%}{{ part['text'] }}{%- endif -%}"
    "{%- endfor -%}{%- endif -%}"
    "{{ '<|im_end|>\n' }}{%- endif -%}"
    "{%- endfor -%}"
    "{%- if add_generation_prompt -%}{{ '<|im_start|>assistant\n' }}{%- endif -%}"
)
_VLM_SPECIAL = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|vision_start|>", "<|vision_end|>",
                "<|image_pad|>", "<|video_pad|>"]


def build_tiny_qwen2_vl(dest: Path, *, seed: int = 0, tools: bool = False) -> Path:
    """A random-weight Qwen2-VL that mlx-vlm loads and runs on images (~1 MB); `tools`: a chat template
    that renders tools and tool turns (mlx-lm infers the json_tools parser from it)."""
    import mlx.core as mx
    from mlx_vlm.models import qwen2_vl
    from mlx_vlm.utils import update_module_configs
    from transformers import PreTrainedTokenizerFast

    dest = _prepare_dest(dest)
    backend = _train_bpe(300, _VLM_SPECIAL)
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=backend,
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        additional_special_tokens=_VLM_SPECIAL[1:],
        clean_up_tokenization_spaces=False,
        model_max_length=4096,
    )
    tokenizer.chat_template = VLM_TOOLS_CHAT_TEMPLATE if tools else VLM_CHAT_TEMPLATE
    tokenizer.save_pretrained(str(dest))
    ids = {t: tokenizer.convert_tokens_to_ids(t) for t in _VLM_SPECIAL}
    # Small images: at most 16 patches of 14 px after resizing (merge 2x2 -> 4 tokens per image).
    _write_json(dest / "preprocessor_config.json", {
        "image_processor_type": "Qwen2VLImageProcessor",
        "processor_class": "Qwen2VLProcessor",
        "do_resize": True, "do_rescale": True, "do_normalize": True, "do_convert_rgb": True,
        "image_mean": [0.48145466, 0.4578275, 0.40821073], "image_std": [0.26862954, 0.26130258, 0.27577711],
        "min_pixels": 56 * 56, "max_pixels": 56 * 56, "patch_size": 14, "temporal_patch_size": 2,
        "merge_size": 2, "rescale_factor": 1 / 255,
    })
    hidden = 64
    config = {
        "architectures": ["Qwen2VLForConditionalGeneration"],
        "model_type": "qwen2_vl",
        "hidden_size": hidden,
        "num_hidden_layers": 2,
        "intermediate_size": 128,
        "num_attention_heads": 4,
        "num_key_value_heads": 2,
        "rms_norm_eps": 1e-6,
        "vocab_size": len(tokenizer),
        "max_position_embeddings": 4096,
        "rope_theta": 1000000.0,
        "rope_scaling": {"type": "mrope", "mrope_section": [2, 3, 3]},
        "tie_word_embeddings": False,  # an lm_head gives more varied (more telling) greedy tokens
        "image_token_id": ids["<|image_pad|>"],
        "video_token_id": ids["<|video_pad|>"],
        "vision_start_token_id": ids["<|vision_start|>"],
        "vision_end_token_id": ids["<|vision_end|>"],
        "eos_token_id": [ids["<|im_end|>"], ids["<|endoftext|>"]],
        "vision_config": {
            "model_type": "qwen2_vl",
            "depth": 1,
            "embed_dim": 32,
            "hidden_size": hidden,
            "num_heads": 2,
            "mlp_ratio": 2,
            "patch_size": 14,
            "spatial_patch_size": 14,
            "spatial_merge_size": 2,
            "temporal_patch_size": 2,
            "in_chans": 3,
            "in_channels": 3,
        },
        "torch_dtype": "float32",
    }
    _write_json(dest / "config.json", config)
    mx.random.seed(seed)
    # As mlx_vlm.utils.load_model builds it: the sub-configs become their own config classes.
    # (`from_dict` copies the top-level text fields into cfg["text_config"] in place.)
    cfg = json.loads(json.dumps(config))
    model_config = update_module_configs(qwen2_vl.ModelConfig.from_dict(cfg), qwen2_vl, cfg, ["text", "vision"])
    model = qwen2_vl.Model(model_config)
    _save_weights(model, dest / "model.safetensors")
    return dest


def build_tiny_qwen3_5(dest: Path, *, seed: int = 0) -> Path:
    """A random-weight Qwen3.5 that mlx-vlm loads and runs on images (~1 MB). Its recurrent layer's state
    (an `ArraysCache`) cannot be paged in blocks, so APC keeps whole-prefix checkpoints for it."""
    import mlx.core as mx
    from mlx_vlm.models import qwen3_5
    from mlx_vlm.utils import update_module_configs
    from transformers import PreTrainedTokenizerFast

    dest = _prepare_dest(dest)
    backend = _train_bpe(300, _VLM_SPECIAL)
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=backend, eos_token="<|im_end|>", pad_token="<|endoftext|>",
        additional_special_tokens=_VLM_SPECIAL[1:], clean_up_tokenization_spaces=False, model_max_length=4096,
    )
    tokenizer.chat_template = VLM_CHAT_TEMPLATE
    tokenizer.save_pretrained(str(dest))
    ids = {t: tokenizer.convert_tokens_to_ids(t) for t in _VLM_SPECIAL}
    eos = [ids["<|im_end|>"], ids["<|endoftext|>"]]
    # Small images: 64x64 px, patches of 16 px merged 2x2 -> 4 tokens per image.
    _write_json(dest / "preprocessor_config.json", {
        "image_processor_type": "Qwen2VLImageProcessorFast", "processor_class": "Qwen3VLProcessor",
        "do_resize": True, "do_rescale": True, "do_normalize": True, "do_convert_rgb": True,
        "image_mean": [0.5, 0.5, 0.5], "image_std": [0.5, 0.5, 0.5], "rescale_factor": 1 / 255,
        "size": {"shortest_edge": 64 * 64, "longest_edge": 64 * 64},
        "patch_size": 16, "temporal_patch_size": 2, "merge_size": 2,
    })
    hidden = 64
    config = {
        "architectures": ["Qwen3_5ForConditionalGeneration"],
        "model_type": "qwen3_5",
        "image_token_id": ids["<|image_pad|>"],
        "video_token_id": ids["<|video_pad|>"],
        "vision_start_token_id": ids["<|vision_start|>"],
        "vision_end_token_id": ids["<|vision_end|>"],
        "eos_token_id": eos,
        "vocab_size": len(tokenizer),
        "tie_word_embeddings": False,
        "text_config": {
            "model_type": "qwen3_5_text", "hidden_size": hidden, "intermediate_size": 128,
            "num_hidden_layers": 2, "full_attention_interval": 2,  # layer 0 linear attention, layer 1 full
            "linear_num_value_heads": 2, "linear_num_key_heads": 2, "linear_key_head_dim": 16,
            "linear_value_head_dim": 16, "linear_conv_kernel_dim": 4,
            "num_attention_heads": 4, "num_key_value_heads": 2, "head_dim": 16, "rms_norm_eps": 1e-6,
            "vocab_size": len(tokenizer), "max_position_embeddings": 4096, "tie_word_embeddings": False,
            "rope_parameters": {"type": "default", "mrope_section": [2, 1, 1], "rope_theta": 100000.0,
                                "partial_rotary_factor": 0.5},
            "eos_token_id": eos,
        },
        "vision_config": {
            "model_type": "qwen3_5", "depth": 1, "hidden_size": 32, "intermediate_size": 64,
            "out_hidden_size": hidden, "num_heads": 2, "patch_size": 16, "spatial_patch_size": 16,
            "spatial_merge_size": 2, "temporal_patch_size": 2, "in_channels": 3,
            "num_position_embeddings": 16, "deepstack_visual_indexes": [],
        },
        "torch_dtype": "float32",
    }
    _write_json(dest / "config.json", config)
    mx.random.seed(seed)
    cfg = json.loads(json.dumps(config))
    model_config = update_module_configs(qwen3_5.ModelConfig.from_dict(cfg), qwen3_5, cfg, ["text", "vision"])
    _save_weights(qwen3_5.Model(model_config), dest / "model.safetensors")
    return dest


_WORDPIECE_SPECIAL = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]


def build_tiny_bert(dest: Path, *, seed: int = 0, hidden_size: int = 32, num_layers: int = 2,
                    max_position_embeddings: int = 128) -> Path:
    """A random-weight BERT sentence encoder (mlx-embeddings), mean-pooled and normalised."""
    import mlx.core as mx
    from mlx_embeddings.models.bert import Model, ModelArgs
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors, trainers
    from transformers import BertTokenizerFast

    from tests.support.tiny_models import _CORPUS

    dest = _prepare_dest(dest)
    backend = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    backend.normalizer = normalizers.BertNormalizer(lowercase=True)
    backend.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    backend.train_from_iterator(_CORPUS, trainers.WordPieceTrainer(
        vocab_size=300, special_tokens=_WORDPIECE_SPECIAL, show_progress=False))
    cls, sep = backend.token_to_id("[CLS]"), backend.token_to_id("[SEP]")
    backend.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B:1 [SEP]:1", special_tokens=[("[CLS]", cls), ("[SEP]", sep)])
    from transformers import PreTrainedTokenizerFast

    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=backend, unk_token="[UNK]", pad_token="[PAD]", cls_token="[CLS]",
        sep_token="[SEP]", mask_token="[MASK]", model_max_length=max_position_embeddings,
        clean_up_tokenization_spaces=False,
    )
    tokenizer.save_pretrained(str(dest))
    del BertTokenizerFast
    config = {
        "architectures": ["BertModel"],
        "model_type": "bert",
        "hidden_size": hidden_size,
        "num_hidden_layers": num_layers,
        "intermediate_size": hidden_size * 2,
        "num_attention_heads": 2,
        "max_position_embeddings": max_position_embeddings,
        "vocab_size": len(tokenizer),
        "type_vocab_size": 2,
        "layer_norm_eps": 1e-12,
        "pad_token_id": tokenizer.pad_token_id,
        "torch_dtype": "float32",
    }
    _write_json(dest / "config.json", config)
    _write_json(dest / "sentence_bert_config.json", {"max_seq_length": max_position_embeddings,
                                                     "do_lower_case": True})
    (dest / "modules.json").write_text(
        '[{"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},'
        ' {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},'
        ' {"idx": 2, "name": "2", "path": "2_Normalize", "type": "sentence_transformers.models.Normalize"}]\n',
        encoding="utf-8")
    (dest / "1_Pooling").mkdir(exist_ok=True)
    _write_json(dest / "1_Pooling" / "config.json", {"word_embedding_dimension": hidden_size,
                                                     "pooling_mode_mean_tokens": True})
    mx.random.seed(seed)
    model = Model(ModelArgs.from_dict(config))
    _save_weights(model, dest / "model.safetensors")
    return dest


_QWEN3_EMBED_TEMPLATE = "{%- for m in messages -%}{{ m['content'] }}{%- endfor -%}"


def build_tiny_qwen3_embedding(dest: Path, *, seed: int = 0, hidden_size: int = 32) -> Path:
    """A random-weight Qwen3 decoder laid out like Qwen3-Embedding (last-token pooling)."""
    import mlx.core as mx
    from mlx_lm.models.qwen3 import Model, ModelArgs
    from tokenizers import processors
    from transformers import PreTrainedTokenizerFast

    dest = _prepare_dest(dest)
    backend = _train_bpe(300, ["<|endoftext|>", "<|im_start|>", "<|im_end|>"])
    eot = backend.token_to_id("<|endoftext|>")
    # As Qwen3-Embedding's tokenizer does: every sequence ends with <|endoftext|>.
    backend.post_processor = processors.TemplateProcessing(
        single="$A <|endoftext|>", special_tokens=[("<|endoftext|>", eot)])
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=backend, eos_token="<|endoftext|>", pad_token="<|endoftext|>",
        padding_side="left", model_max_length=256, clean_up_tokenization_spaces=False,
    )
    tokenizer.save_pretrained(str(dest))
    config = {
        "architectures": ["Qwen3ForCausalLM"],
        "model_type": "qwen3",
        "hidden_size": hidden_size,
        "num_hidden_layers": 2,
        "intermediate_size": hidden_size * 2,
        "num_attention_heads": 2,
        "num_key_value_heads": 1,
        "head_dim": hidden_size // 2,
        "vocab_size": len(tokenizer),
        "rms_norm_eps": 1e-6,
        "rope_theta": 1000000.0,
        "max_position_embeddings": 256,
        "tie_word_embeddings": True,
        "torch_dtype": "float32",
    }
    _write_json(dest / "config.json", config)
    # sentence-transformers layout of Qwen3-Embedding: last-token pooling, then Normalize.
    (dest / "modules.json").write_text(
        '[{"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},'
        ' {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},'
        ' {"idx": 2, "name": "2", "path": "2_Normalize", "type": "sentence_transformers.models.Normalize"}]\n',
        encoding="utf-8")
    (dest / "1_Pooling").mkdir(exist_ok=True)
    _write_json(dest / "1_Pooling" / "config.json", {"word_embedding_dimension": hidden_size,
                                                     "pooling_mode_lasttoken": True})
    (dest / "README.md").write_text("---\ntags:\n- sentence-transformers\n- matryoshka\n---\n# tiny\n",
                                    encoding="utf-8")
    mx.random.seed(seed)
    model = Model(ModelArgs.from_dict(config))
    _save_weights(model, dest / "model.safetensors")
    return dest
