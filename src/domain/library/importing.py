"""Rules of the import pipeline: safe model IDs, weight-file safety, and type/family inference.

Everything here is pure: callers read `config.json` and safetensors headers and pass the
parsed values in, so the rules can be tested without a filesystem.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from typing import Iterable, Mapping, Sequence

from domain.enums import ModelType
from domain.errors import DomainError

MAX_MODEL_ID_LENGTH = 64

# Names that would clash with filesystem specials (Windows devices, `.`/`..`), with the
# library's own folders, or with URL path segments of the HTTP API.
RESERVED_MODEL_IDS = frozenset(
    {
        ".", "..", "con", "prn", "aux", "nul", "clock$",
        *(f"com{i}" for i in range(1, 10)),
        *(f"lpt{i}" for i in range(1, 10)),
        "api", "v1", "models", "staging", "trash", "tmp", "cache", "downloads", "partial",
        "mapping-configs", "import", "search", "all", "none", "null", "default",
    }
)

# Pickle-based formats can run arbitrary code when loaded.
PICKLE_SUFFIXES = frozenset({".bin", ".pt", ".pth", ".ckpt"})
SAFE_WEIGHT_SUFFIXES = frozenset({".safetensors", ".npz", ".gguf"})
WEIGHT_SUFFIXES = PICKLE_SUFFIXES | SAFE_WEIGHT_SUFFIXES

_UNSAFE_CHARS = re.compile(r"[^a-z0-9._-]+")
_REPEATS = re.compile(r"([._-])[._-]+")


class InvalidModelName(DomainError):
    """A name that cannot become a safe model ID."""

    def __init__(self, name: str, reason: str) -> None:
        self.name = name
        self.field = "name"
        super().__init__(f"invalid model name {name!r}: {reason}")


class UnsafeImport(DomainError):
    """Content that mlxm refuses to import (pickle weights, paths escaping the folder)."""

    def __init__(self, message: str, paths: Sequence[str] = ()) -> None:
        self.paths = tuple(paths)
        super().__init__(f"{message}: {', '.join(self.paths)}" if self.paths else message)


def normalise_model_id(name: str) -> str:
    """Turn a user-supplied name into a safe, lower-case model ID, or raise `InvalidModelName`.

    Path separators and other unsafe characters become `-`; runs of separators collapse;
    leading/trailing punctuation is dropped. The result must not be reserved and must fit
    in `MAX_MODEL_ID_LENGTH` characters (long names are refused, not silently cut, so two
    long names can never collapse into one ID).
    """
    if not isinstance(name, str) or not name.strip():
        raise InvalidModelName(str(name), "empty")
    raw = name.strip()
    if raw in {".", ".."}:
        raise InvalidModelName(name, "reserved name")
    value = _UNSAFE_CHARS.sub("-", raw.lower())
    value = _REPEATS.sub(r"\1", value).strip("._-")
    if not value:
        raise InvalidModelName(name, "no usable characters (use letters, digits, '.', '-' or '_')")
    if len(value) > MAX_MODEL_ID_LENGTH:
        raise InvalidModelName(name, f"longer than {MAX_MODEL_ID_LENGTH} characters")
    stem = value.split(".", 1)[0]
    if value in RESERVED_MODEL_IDS or stem in RESERVED_MODEL_IDS:
        raise InvalidModelName(name, "reserved name")
    return value


def is_safe_relative_path(relative: str) -> bool:
    """A relative POSIX path with no `..`, no absolute root and no empty parts."""
    if not relative or relative.startswith("/") or "\\" in relative or "\x00" in relative:
        return False
    parts = relative.split("/")
    return all(part not in {"", ".", ".."} for part in parts)


def pickle_weight_files(paths: Iterable[str]) -> list[str]:
    return sorted(p for p in paths if _suffix(p) in PICKLE_SUFFIXES)


def weight_files(paths: Iterable[str]) -> list[str]:
    return sorted(p for p in paths if _suffix(p) in WEIGHT_SUFFIXES)


def _suffix(path: str) -> str:
    name = path.rsplit("/", 1)[-1]
    return "." + name.rsplit(".", 1)[-1].lower() if "." in name else ""


def content_digest(files: Iterable[tuple[str, str]]) -> str:
    """One sha256 over (relative path, file sha256) pairs: equal content, equal digest."""
    digest = hashlib.sha256()
    for path, sha in sorted(files):
        digest.update(f"{path}\0{sha}\n".encode())
    return digest.hexdigest()


# --------------------------------------------------------------------------
# type and family inference
# --------------------------------------------------------------------------

# `model_type` values (lower-case, `-` as `_`) whose type is clear from the name alone.
_AUDIO_MODEL_TYPES = frozenset(
    {
        "whisper", "kokoro", "soprano", "pocket_tts", "csm", "sesame", "bark", "encodec", "dia",
        "outetts", "spark", "orpheus", "marvis", "parakeet", "voxtral", "wav2vec2", "hubert",
        "vibevoice", "chatterbox", "mimi", "snac", "descript", "vocos", "qwen2_audio", "llama_tts",
    }
)
_VISION_MODEL_TYPES = frozenset(
    {
        "qwen2_vl", "qwen2_5_vl", "qwen3_vl", "llava", "llava_next", "llava_qwen2", "idefics2", "idefics3",
        "paligemma", "mllama", "pixtral", "smolvlm", "florence2", "gemma3", "molmo", "internvl_chat",
        "phi3_v", "mistral3", "kimi_vl", "aya_vision", "deepseek_vl_v2", "llama4",
    }
)
_EMBEDDING_MODEL_TYPES = frozenset(
    {"bert", "xlm_roberta", "roberta", "nomic_bert", "modernbert", "distilbert", "e5", "mpnet", "siglip", "clip"}
)

_AUDIO_KEYS = ("audio_config", "n_mels", "num_mel_bins", "n_audio_ctx", "sample_rate", "sampling_rate",
               "codec_config", "decoder_config", "vocoder_config", "istft_config")
_VISION_KEYS = ("vision_config", "image_token_index", "image_token_id", "vision_tower", "mm_projector_type",
                "vision_feature_layer")

_STRONG = 3.0
_MEDIUM = 2.0
_WEAK = 1.0

# Below this share of the evidence the winner is reported for review, not trusted.
CONFIDENCE_THRESHOLD = 0.75
# A runner-up type with at least this share of the winner's weight is reported as mixed signals.
MIXED_SIGNAL_RATIO = 0.4


@dataclass(frozen=True)
class Signal:
    """One piece of evidence: `source` (config/architectures/keys/tensors/files) votes for a type."""

    source: str
    model_type: ModelType
    weight: float
    detail: str


@dataclass(frozen=True)
class TypeInference:
    model_type: ModelType | None
    family: str | None
    confidence: float
    signals: tuple[Signal, ...] = ()
    review_reasons: tuple[str, ...] = field(default_factory=tuple)

    @property
    def needs_review(self) -> bool:
        return bool(self.review_reasons)


def _norm(value: object) -> str:
    return str(value).strip().lower().replace("-", "_")


def config_architectures(config: Mapping) -> tuple[str, ...]:
    """`architectures` when it is what the format says, a list of class names; else nothing."""
    value = config.get("architectures")
    if isinstance(value, list) and all(isinstance(a, str) for a in value):
        return tuple(value)
    return ()


def _architectures_problem(config: Mapping) -> str | None:
    value = config.get("architectures")
    if value is None or config_architectures(config) or value == []:
        return None
    return f"config.json architectures is not a list of names ({type(value).__name__}); ignored"


def _config_signals(config: Mapping) -> list[Signal]:
    signals: list[Signal] = []
    model_type = _norm(config.get("model_type", "")) if config.get("model_type") else ""
    if model_type:
        if model_type in _AUDIO_MODEL_TYPES:
            signals.append(Signal("config", ModelType.AUDIO, _STRONG, f"model_type={model_type}"))
        elif model_type in _VISION_MODEL_TYPES:
            signals.append(Signal("config", ModelType.VISION, _STRONG, f"model_type={model_type}"))
        elif model_type in _EMBEDDING_MODEL_TYPES:
            signals.append(Signal("config", ModelType.EMBEDDINGS, _STRONG, f"model_type={model_type}"))
        elif model_type.endswith("_vl") or "vision" in model_type:
            signals.append(Signal("config", ModelType.VISION, _MEDIUM, f"model_type={model_type}"))
        elif "tts" in model_type or "audio" in model_type or "speech" in model_type:
            signals.append(Signal("config", ModelType.AUDIO, _MEDIUM, f"model_type={model_type}"))
        # Any other model_type (llama, qwen3, gemma3_text...) says little on its own:
        # the architectures entry decides whether it is a causal LM.

    audio_keys = [k for k in _AUDIO_KEYS if k in config]
    vision_keys = [k for k in _VISION_KEYS if k in config]
    specific = model_type in _AUDIO_MODEL_TYPES | _VISION_MODEL_TYPES | _EMBEDDING_MODEL_TYPES
    for name in config_architectures(config):
        lowered = name.lower()
        if "whisper" in lowered or "speech" in lowered or "audio" in lowered or "tts" in lowered:
            signals.append(Signal("architectures", ModelType.AUDIO, _STRONG, name))
        elif "VL" in name or "vision" in lowered or "llava" in lowered:
            signals.append(Signal("architectures", ModelType.VISION, _STRONG, name))
        elif lowered.endswith("forcausallm") or lowered.endswith("lmheadmodel"):
            # TTS and multimodal models often wrap a causal LM: a known specific model_type outranks it.
            signals.append(Signal("architectures", ModelType.TEXT_GEN, _WEAK if specific else _STRONG, name))
        elif lowered.endswith("forconditionalgeneration"):
            # Seq2seq or multimodal: vision/audio keys, when present, tell which.
            if not audio_keys and not vision_keys:
                signals.append(Signal("architectures", ModelType.TEXT_GEN, _WEAK, name))
        elif lowered.endswith("model") or "sentence" in lowered or "embedding" in lowered:
            signals.append(Signal("architectures", ModelType.EMBEDDINGS, _MEDIUM, name))

    if audio_keys:
        signals.append(Signal("keys", ModelType.AUDIO, _MEDIUM, ",".join(audio_keys)))
    if vision_keys:
        signals.append(Signal("keys", ModelType.VISION, _MEDIUM, ",".join(vision_keys)))
    return signals


def _tensor_signals(tensor_names: Iterable[str]) -> list[Signal]:
    names = [n.lower() for n in tensor_names]
    if not names:
        return []
    signals: list[Signal] = []

    def has(*fragments: str) -> str | None:
        for name in names:
            if any(f in name for f in fragments):
                return name
        return None

    vision = has("vision_tower", "vision_model", "visual.", "vision_encoder", "image_encoder", "patch_embed")
    audio = has("encoder.conv1", "audio_encoder", "audio_tower", "vocoder", "istft", "mel_", "decoder.backbone",
                "quantizer", "codec")
    lm = has("lm_head", "self_attn", "embed_tokens", "attn.c_attn")
    pooled = has("pooler.", "embeddings.word_embeddings")
    if vision:
        signals.append(Signal("tensors", ModelType.VISION, _MEDIUM, vision))
    if audio:
        signals.append(Signal("tensors", ModelType.AUDIO, _MEDIUM, audio))
    # A language model under `language_model.` beside other top-level parts is one part of a
    # composite model (TTS, VLM): it says nothing about the whole being a text generator.
    prefixes = {n.split(".", 1)[0] for n in names}
    composite = "language_model" in prefixes and bool(prefixes - {"language_model", "lm_head"})
    if pooled and not has("lm_head"):
        signals.append(Signal("tensors", ModelType.EMBEDDINGS, _MEDIUM, pooled))
    elif lm and not vision and not audio and not composite:
        signals.append(Signal("tensors", ModelType.TEXT_GEN, _MEDIUM if has("lm_head", "embed_tokens") else _WEAK, lm))
    return signals


def infer_family(config: Mapping | None) -> str | None:
    """The family from `model_type` (e.g. `qwen2_5_vl` -> `qwen2.5-vl`), else from the architecture name."""
    if config:
        model_type = config.get("model_type")
        if isinstance(model_type, str) and model_type.strip():
            value = model_type.strip().lower().replace("_", "-")
            value = re.sub(r"(\d)-(\d)", r"\1.\2", value)
            return value.removesuffix("-text")
        for arch in config_architectures(config):
            stem = re.sub(
                r"(ForCausalLM|ForConditionalGeneration|LMHeadModel|Model|ForMaskedLM|ForSequenceClassification)$",
                "",
                str(arch),
            )
            if stem:
                return stem.lower()
    return None


def infer_model_type(
    config: Mapping | None,
    tensor_names: Iterable[str] = (),
    *,
    has_weights: bool = True,
    sentence_transformers: bool = False,
) -> TypeInference:
    """Score every signal for a model type; report disagreement and weak evidence as review reasons.

    Confidence is the winner's share of the total weight, scaled down when the evidence is
    thin (a single weak signal never reaches the threshold on its own).
    """
    reasons: list[str] = []
    signals: list[Signal] = []
    if config is None:
        reasons.append("no config.json: type and family come from weights only")
    else:
        signals.extend(_config_signals(config))
        problem = _architectures_problem(config)
        if problem:
            reasons.append(problem)
    signals.extend(_tensor_signals(tensor_names))
    if sentence_transformers:
        # A sentence-transformers pooling layout (modules.json) makes the folder an embedding model;
        # a causal LM in it (Qwen3-Embedding) is only its backbone, so its text-gen evidence is dropped.
        signals = [s for s in signals if s.model_type is not ModelType.TEXT_GEN]
        signals.append(Signal("files", ModelType.EMBEDDINGS, _STRONG, "modules.json (sentence-transformers pooling)"))
    if not has_weights:
        reasons.append("no weights file (.safetensors) found")

    family = infer_family(config)
    if family is None:
        reasons.append("family unknown: config.json has no model_type or architectures")

    if not signals:
        reasons.append("no signal for the model type; defaulting to text-gen")
        return TypeInference(ModelType.TEXT_GEN, family, 0.0, (), tuple(reasons))

    scores: dict[ModelType, float] = {}
    for signal in signals:
        scores[signal.model_type] = scores.get(signal.model_type, 0.0) + signal.weight
    # Multimodal configs carry text-LM evidence too; vision/audio evidence is more specific.
    ranked = sorted(scores.items(), key=lambda item: (-item[1], _SPECIFICITY[item[0]]))
    winner, top = ranked[0]
    total = sum(scores.values())
    evidence = min(1.0, top / (2 * _STRONG))
    confidence = round((top / total) * (0.5 + 0.5 * evidence), 3)

    config_types = {s.model_type for s in signals if s.source in {"config", "architectures", "keys"}}
    tensor_types = {s.model_type for s in signals if s.source == "tensors"}
    if config_types and tensor_types and not (config_types & tensor_types):
        reasons.append(
            "config.json says " + _names(config_types) + " but tensor names say " + _names(tensor_types)
        )
    elif len(scores) > 1 and ranked[1][1] >= MIXED_SIGNAL_RATIO * top:
        losers = [f"{t.value} ({s:g})" for t, s in ranked[1:]]
        reasons.append(f"mixed signals: {winner.value} ({top:g}) over {', '.join(losers)}")
    if confidence < CONFIDENCE_THRESHOLD:
        reasons.append(f"low confidence {confidence:.2f} for type {winner.value}")
    return TypeInference(winner, family, confidence, tuple(signals), tuple(_dedupe(reasons)))


# Ties go to the more specific type: a vision config also looks like a causal LM.
_SPECIFICITY = {ModelType.AUDIO: 0, ModelType.VISION: 1, ModelType.EMBEDDINGS: 2, ModelType.TEXT_GEN: 3}


def _names(types: Iterable[ModelType]) -> str:
    return "/".join(sorted(t.value for t in types))


def _dedupe(items: Iterable[str]) -> list[str]:
    seen: dict[str, None] = {}
    for item in items:
        seen.setdefault(item, None)
    return list(seen)
