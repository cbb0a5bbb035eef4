"""Tiny random-weight models of real MLX architectures, built offline.

Tests and benchmarks cannot download weights, so these helpers write small
models of *real* architectures (Llama for mlx-lm, Whisper for mlx-audio STT,
Soprano for mlx-audio TTS) into a directory. The directories have the same
layout as a Hub snapshot (``config.json``, ``model.safetensors``, tokenizer
files), so they load through the libraries' own public loaders:

    mlx_lm.load(str(path))                 # -> (model, TokenizerWrapper)
    mlx_audio.stt.load(str(path))          # -> whisper Model; .generate(audio).text
    mlx_audio.tts.load(str(path))          # -> soprano Model; next(.generate(text)).audio

The weights are random, so generated text and audio are noise. What a test
can rely on is that the whole real path runs, and that it is deterministic:
the same ``seed`` gives byte-identical files, and greedy decoding
(``temperature=0`` / ``make_sampler(temp=0.0)``) gives the same output twice.

Nothing here touches the network. Import cost is kept low: mlx, tokenizers and
transformers are imported inside the builders.

Fixed-length generation (benchmarks)
------------------------------------
A random model may emit EOS at any step. To force exactly ``max_tokens``
tokens with mlx-lm, pass :func:`no_eos_logits_processor`::

    from mlx_lm import stream_generate
    from mlx_lm.sample_utils import make_sampler
    for resp in stream_generate(model, tok, prompt, max_tokens=64,
                                sampler=make_sampler(temp=0.0),
                                logits_processors=[no_eos_logits_processor(tok.eos_token_ids)]):
        ...
    # resp.generation_tokens == 64 and resp.finish_reason == "length"
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import threading
from pathlib import Path
from typing import Any, Callable, Iterable

__all__ = [
    "CHAT_TEMPLATE",
    "KINDS",
    "build_tiny_llama",
    "build_tiny_whisper",
    "build_tiny_tts",
    "build_tiny_model",
    "cached_model",
    "no_eos_logits_processor",
]

# A few sentences to train the byte-level BPE tokenizers on. Content does not
# matter much; it only decides which merges exist.
_CORPUS = [
    "Hello world! This is a tiny model used for testing.",
    "The quick brown fox jumps over the lazy dog.",
    "MLX runs models on Apple silicon and on the CPU.",
    "A local model manager downloads, stores and serves models.",
    "Speech to text, text to speech, and text generation.",
    "You are a helpful assistant. What is the weather today?",
    "one two three four five six seven eight nine ten",
    "Numbers like 1, 2, 3 and 42 appear in text too.",
]

# Small Jinja chat template: system/user/assistant turns, optional generation
# prompt. Unknown roles raise (``raise_exception`` is provided by transformers).
CHAT_TEMPLATE = (
    "{{ bos_token }}"
    "{%- for message in messages -%}"
    "{%- if message['role'] == 'system' -%}"
    "{{ '<|system|>\n' + message['content'] + eos_token + '\n' }}"
    "{%- elif message['role'] == 'user' -%}"
    "{{ '<|user|>\n' + message['content'] + eos_token + '\n' }}"
    "{%- elif message['role'] == 'assistant' -%}"
    "{{ '<|assistant|>\n' + message['content'] + eos_token + '\n' }}"
    "{%- else -%}"
    "{{ raise_exception('Unsupported role: ' + message['role']) }}"
    "{%- endif -%}"
    "{%- endfor -%}"
    "{%- if add_generation_prompt -%}"
    "{{ '<|assistant|>\n' }}"
    "{%- endif -%}"
)

_LLAMA_SPECIAL = ["<unk>", "<s>", "</s>", "<|system|>", "<|user|>", "<|assistant|>"]
_SOPRANO_SPECIAL = ["[STOP]", "[TEXT]", "[START]", "[UNK]"]
_WHISPER_SPECIAL = [
    "<|startoftranscript|>",
    "<|en|>",
    "<|translate|>",
    "<|transcribe|>",
    "<|startoflm|>",
    "<|startofprev|>",
    "<|nospeech|>",
    "<|notimestamps|>",
]


# --------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------


def _train_bpe(vocab_size: int, special_tokens: list[str]):
    """Train a deterministic byte-level BPE on ``_CORPUS``."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE(unk_token=None))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=special_tokens,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(_CORPUS, trainer=trainer)
    return tok


def _write_json(path: Path, data: dict[str, Any]) -> None:
    path.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n", encoding="utf-8")


def _save_weights(model, path: Path, cast: Callable[[str, Any], Any] | None = None) -> None:
    import mlx.core as mx
    from mlx.utils import tree_flatten

    weights = dict(tree_flatten(model.parameters()))
    if cast is not None:
        weights = {k: cast(k, v) for k, v in weights.items()}
    mx.eval(list(weights.values()))
    mx.save_safetensors(str(path), weights, metadata={"format": "mlx"})


def _prepare_dest(dest: Path) -> Path:
    dest = Path(dest).expanduser().absolute()
    dest.mkdir(parents=True, exist_ok=True)
    return dest


# --------------------------------------------------------------------------
# builders
# --------------------------------------------------------------------------


def build_tiny_llama(
    dest: Path,
    *,
    hidden_size: int = 64,
    num_layers: int = 2,
    intermediate_size: int = 128,
    heads: int = 4,
    kv_heads: int = 2,
    seed: int = 0,
    max_position_embeddings: int = 2048,
    tie_word_embeddings: bool = True,
) -> Path:
    """Write a random-weight Llama (mlx-lm ``model_type: llama``) into ``dest``.

    Files: config.json, model.safetensors (float32, ~0.4 MB at defaults),
    tokenizer.json, tokenizer_config.json, chat_template.jinja.
    Load with ``mlx_lm.load(str(dest))``.

    Greedy output of a random model is noise: with tied embeddings (default)
    it is typically one token repeated; ``tie_word_embeddings=False`` adds an
    ``lm_head`` and gives more varied tokens (incl. partial UTF-8 bytes, i.e.
    "\ufffd" in streamed text), useful for exercising streaming detokenizers.
    """
    import mlx.core as mx
    from mlx_lm.models.llama import Model, ModelArgs
    from transformers import PreTrainedTokenizerFast

    if hidden_size % heads:
        raise ValueError("hidden_size must be divisible by heads")
    if heads % kv_heads:
        raise ValueError("heads must be divisible by kv_heads")
    dest = _prepare_dest(dest)

    backend = _train_bpe(300, _LLAMA_SPECIAL)
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=backend,
        bos_token="<s>",
        eos_token="</s>",
        unk_token="<unk>",
        pad_token="</s>",
        additional_special_tokens=["<|system|>", "<|user|>", "<|assistant|>"],
        model_max_length=max_position_embeddings,
        clean_up_tokenization_spaces=False,
    )
    tokenizer.chat_template = CHAT_TEMPLATE
    tokenizer.save_pretrained(str(dest))

    config = {
        "architectures": ["LlamaForCausalLM"],
        "model_type": "llama",
        "hidden_size": hidden_size,
        "num_hidden_layers": num_layers,
        "intermediate_size": intermediate_size,
        "num_attention_heads": heads,
        "num_key_value_heads": kv_heads,
        "head_dim": hidden_size // heads,
        "vocab_size": len(tokenizer),
        "rms_norm_eps": 1e-5,
        "rope_theta": 10000.0,
        "max_position_embeddings": max_position_embeddings,
        "tie_word_embeddings": bool(tie_word_embeddings),
        "attention_bias": False,
        "mlp_bias": False,
        "bos_token_id": tokenizer.bos_token_id,
        "eos_token_id": tokenizer.eos_token_id,
        "torch_dtype": "float32",
    }
    _write_json(dest / "config.json", config)

    mx.random.seed(seed)
    model = Model(ModelArgs.from_dict(config))
    _save_weights(model, dest / "model.safetensors")
    return dest


def build_tiny_whisper(dest: Path, *, seed: int = 0) -> Path:
    """Write a random-weight English-only Whisper (mlx-audio STT) into ``dest``.

    Files: config.json, model.safetensors (float16, ~0.8 MB), tokenizer.json,
    tokenizer_config.json, processor_config.json (feature extractor inside;
    transformers 5 layout).
    Load with ``mlx_audio.stt.load(str(dest))``.
    """
    import mlx.core as mx
    from mlx_audio.stt.models.whisper.whisper import Model, ModelDimensions
    from transformers import WhisperFeatureExtractor, WhisperProcessor, WhisperTokenizer

    dest = _prepare_dest(dest)

    backend = _train_bpe(320, [])
    spec = json.loads(backend.to_str())["model"]
    vocab: dict[str, int] = spec["vocab"]
    merges = [tuple(m.split(" ")) if isinstance(m, str) else tuple(m) for m in spec["merges"]]
    tokenizer = WhisperTokenizer(vocab=vocab, merges=merges)  # <|endoftext|> = len(vocab)
    tokenizer.add_special_tokens({"additional_special_tokens": list(_WHISPER_SPECIAL)})
    tokenizer.add_tokens([f"<|{i * 0.02:.2f}|>" for i in range(1501)])
    if tokenizer.convert_tokens_to_ids("<|endoftext|>") != len(vocab):
        raise RuntimeError("<|endoftext|> must directly follow the text tokens")
    processor = WhisperProcessor(
        feature_extractor=WhisperFeatureExtractor(feature_size=80),
        tokenizer=tokenizer,
    )
    processor.save_pretrained(str(dest))

    config = {
        "model_type": "whisper",
        "n_mels": 80,
        "n_audio_ctx": 1500,  # fixed by the 30 s window; required
        "n_audio_state": 64,
        "n_audio_head": 2,
        "n_audio_layer": 1,
        "n_text_ctx": 64,
        "n_text_state": 64,
        "n_text_head": 2,
        "n_text_layer": 1,
        "n_vocab": len(tokenizer),
    }
    _write_json(dest / "config.json", config)

    mx.random.seed(seed)
    model = Model(ModelDimensions.from_dict(config))
    _save_weights(model, dest / "model.safetensors", lambda k, v: v.astype(mx.float16))
    return dest


def build_tiny_tts(dest: Path, *, seed: int = 0) -> Path:
    """Write a random-weight Soprano TTS (mlx-audio) into ``dest``.

    Soprano = a Qwen3 LM (here 1 layer, hidden 32) + a Vocos/ISTFT decoder whose
    size is fixed by mlx-audio (~14M params; stored float16, ~27.5 MB; mlx-audio
    casts it back to float32 on load). Output is 32 kHz mono.

    Caveat: mlx-audio picks the bigger "Soprano-1.1" decoder when the model
    directory path contains ``soprano-1.1`` (case-insensitive); such a path
    would no longer match these weights. Don't store the result under one.

    Files: config.json, model.safetensors, tokenizer.json, tokenizer_config.json.
    Load with ``mlx_audio.tts.load(str(dest))``.
    """
    import mlx.core as mx
    from mlx_audio.tts.models.soprano import Model, ModelConfig
    from transformers import PreTrainedTokenizerFast

    dest = _prepare_dest(dest)
    if "soprano-1.1" in str(dest).lower():
        raise ValueError("destination path must not contain 'soprano-1.1' (see docstring)")

    backend = _train_bpe(300, _SOPRANO_SPECIAL)
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=backend,
        pad_token="[STOP]",
        unk_token="[UNK]",
        additional_special_tokens=["[TEXT]", "[START]"],
        clean_up_tokenization_spaces=False,
    )
    tokenizer.save_pretrained(str(dest))

    config = {
        "architectures": ["SopranoForCausalLM"],
        "model_type": "soprano",
        "hidden_size": 32,
        "num_hidden_layers": 1,
        "intermediate_size": 64,
        "num_attention_heads": 2,
        "num_key_value_heads": 1,
        "head_dim": 16,
        "vocab_size": len(tokenizer),
        "rms_norm_eps": 1e-6,
        "rope_theta": 10000.0,
        "max_position_embeddings": 512,
        "tie_word_embeddings": False,  # Soprano's hidden-state path needs lm_head
        "sample_rate": 32000,
    }
    _write_json(dest / "config.json", config)

    mx.random.seed(seed)
    model = Model(ModelConfig.from_dict({**config, "model_path": str(dest)}))
    _save_weights(model, dest / "model.safetensors", lambda k, v: v.astype(mx.float16))
    return dest


# --------------------------------------------------------------------------
# session cache
# --------------------------------------------------------------------------

def _model_types_builder(name: str) -> Callable[..., Path]:
    def build(dest: Path, **options: Any) -> Path:  # imported late: tiny_model_types imports this module
        from tests.support import tiny_model_types

        return getattr(tiny_model_types, name)(dest, **options)

    return build


KINDS: dict[str, Callable[..., Path]] = {
    "llama": build_tiny_llama,
    "whisper": build_tiny_whisper,
    "tts": build_tiny_tts,
    "qwen2_vl": _model_types_builder("build_tiny_qwen2_vl"),
    "qwen3_5": _model_types_builder("build_tiny_qwen3_5"),
    "bert": _model_types_builder("build_tiny_bert"),
    "qwen3_embedding": _model_types_builder("build_tiny_qwen3_embedding"),
}
_ALIASES = {"text": "llama", "lm": "llama", "stt": "whisper", "soprano": "tts", "vision": "qwen2_vl",
            "vlm": "qwen2_vl", "encoder": "bert", "decoder_embedding": "qwen3_embedding"}

_lock = threading.Lock()


def build_tiny_model(kind: str, dest: Path, **options: Any) -> Path:
    """Dispatch to the builder for ``kind`` ("llama", "whisper" or "tts")."""
    kind = _ALIASES.get(kind, kind)
    try:
        builder = KINDS[kind]
    except KeyError:
        raise ValueError(f"unknown tiny model kind {kind!r}; expected one of {sorted(KINDS)}") from None
    return builder(dest, **options)


def cached_model(kind: str, root: Path, **options: Any) -> Path:
    """Build ``kind`` once under ``root`` and return its directory.

    The model lands in ``root/<kind>`` (or ``root/<kind>-<hash>`` when builder
    ``options`` are given). It is built in a sibling temporary directory and
    renamed into place, so a half-written model is never returned; a later
    call (same process or another one sharing ``root``, e.g. pytest-xdist
    workers) reuses it. The directory holds only the model's own files. Intended
    for session-scoped pytest fixtures::

        @pytest.fixture(scope="session")
        def tiny_llama(tmp_path_factory):
            return cached_model("llama", tmp_path_factory.getbasetemp() / "tiny-models")

    Treat the returned directory as read-only; copy it if a test mutates it.
    """
    kind = _ALIASES.get(kind, kind)
    if kind not in KINDS:
        raise ValueError(f"unknown tiny model kind {kind!r}; expected one of {sorted(KINDS)}")
    root = Path(root).expanduser().absolute()
    name = kind
    if options:
        digest = hashlib.sha256(json.dumps(options, sort_keys=True).encode()).hexdigest()[:10]
        name = f"{kind}-{digest}"
    final = root / name

    with _lock:
        # ``final`` only ever appears through an atomic rename of a complete
        # build, so its existence means "done". No marker file is written into
        # the model directory, which holds exactly what a Hub snapshot would.
        if final.is_dir():
            return final
        root.mkdir(parents=True, exist_ok=True)
        # Build next to the final location so the rename stays on one filesystem.
        tmp = Path(tempfile.mkdtemp(prefix=f".{name}-", dir=root))
        try:
            # Soprano picks its decoder size from the directory name; neither
            # the temporary nor the final name contains "soprano-1.1".
            build_tiny_model(kind, tmp, **options)
            tmp.chmod(0o755)  # mkdtemp makes it 0700
            try:
                os.rename(tmp, final)
            except OSError:
                # Another process finished first: keep its copy.
                if not final.is_dir():
                    raise
        finally:
            if tmp.exists():
                shutil.rmtree(tmp, ignore_errors=True)
        return final


# --------------------------------------------------------------------------
# generation helpers
# --------------------------------------------------------------------------


def no_eos_logits_processor(eos_ids: Iterable[int] | int) -> Callable:
    """An mlx-lm logits processor that makes the EOS token(s) impossible.

    Use it to force fixed-length generation in benchmarks:
    ``stream_generate(..., max_tokens=N, logits_processors=[no_eos_logits_processor(tok.eos_token_ids)])``
    always yields N tokens and ends with ``finish_reason == "length"``.
    The processor signature is mlx-lm's ``(tokens, logits) -> logits``.
    """
    import mlx.core as mx

    ids = sorted({int(eos_ids)} if isinstance(eos_ids, int) else {int(i) for i in eos_ids})
    cache: dict[int, Any] = {}

    def processor(tokens, logits):
        if not ids:
            return logits
        vocab = logits.shape[-1]
        bias = cache.get(vocab)
        if bias is None:
            mask = mx.zeros((vocab,), dtype=mx.bool_)
            valid = [i for i in ids if 0 <= i < vocab]
            if valid:
                mask[mx.array(valid)] = True
            bias = cache[vocab] = mask
        return mx.where(bias, mx.array(-float("inf"), dtype=logits.dtype), logits)

    return processor
