"""`FileModelInspector`: reads the facts a probe needs from a model folder (its JSON files, and the
tokenizer as mlx-lm loads it, for the tool-call format and thinking markers the runtime will use)."""

from __future__ import annotations

import json
from pathlib import Path

from adapters.mlx.audio import audio_kind
from adapters.mlx.common import read_config
from adapters.mlx.transformers_quiet import transformers_quiet
from application.inference.ports import ModelFacts
from domain.enums import ModelType


def _json(path: Path) -> dict | list | None:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def _chat_template(path: Path, tokenizer_config: dict) -> str | None:
    for name in ("chat_template.jinja", "chat_template.json"):
        candidate = path / name
        if candidate.is_file():
            text = candidate.read_text(encoding="utf-8")
            if name.endswith(".json"):
                data = _json(candidate)
                text = data.get("chat_template") if isinstance(data, dict) else None
            if text:
                return text
    template = tokenizer_config.get("chat_template")
    if isinstance(template, list):  # named templates: [{"name": ..., "template": ...}]
        return "\n".join(t.get("template", "") for t in template if isinstance(t, dict)) or None
    return template if isinstance(template, str) else None


def _special_tokens(path: Path, tokenizer_config: dict) -> tuple[str, ...]:
    tokens: set[str] = set()
    for entry in (tokenizer_config.get("added_tokens_decoder") or {}).values():
        if isinstance(entry, dict) and isinstance(entry.get("content"), str):
            tokens.add(entry["content"])
    for token in tokenizer_config.get("additional_special_tokens") or tokenizer_config.get("extra_special_tokens") or []:
        if isinstance(token, str):
            tokens.add(token)
    tokenizer = _json(path / "tokenizer.json")
    if isinstance(tokenizer, dict):
        for entry in tokenizer.get("added_tokens") or []:
            if isinstance(entry, dict) and isinstance(entry.get("content"), str):
                tokens.add(entry["content"])
    return tuple(sorted(tokens))


def _normalizes(path: Path) -> bool | None:
    modules = _json(path / "modules.json")
    if not isinstance(modules, list):
        return None
    return any("Normalize" in str(m.get("type", "")) for m in modules if isinstance(m, dict))


def tokenizer_findings(path: Path) -> tuple[str | None, tuple[str, str] | None]:
    """(tool parser id, thinking markers) as mlx-lm infers them when it loads the tokenizer: the same
    inference that decides how the runtime parses the model's output."""
    try:
        from mlx_lm.utils import load_tokenizer

        with transformers_quiet():  # e.g. a config's special token outside the vocabulary: not the user's to fix
            tokenizer = load_tokenizer(Path(path))
    except Exception:  # noqa: BLE001 - an unreadable tokenizer is a probe finding, not a crash
        return None, None
    parser = tokenizer.init_kwargs.get("tool_parser_type") if tokenizer.has_tool_calling else None
    thinking = (tokenizer.think_start, tokenizer.think_end) if tokenizer.has_thinking else None
    return parser, thinking


class FileModelInspector:
    def inspect(self, path: Path, model_type: ModelType) -> ModelFacts:
        path = Path(path)
        tokenizer_config = _json(path / "tokenizer_config.json")
        tokenizer_config = tokenizer_config if isinstance(tokenizer_config, dict) else {}
        config = read_config(path)
        model_type = ModelType(model_type)
        parser, thinking = (None, None)
        if model_type in (ModelType.TEXT_GEN, ModelType.VISION) and (path / "tokenizer_config.json").is_file():
            parser, thinking = tokenizer_findings(path)
        return ModelFacts(
            config=config,
            chat_template=_chat_template(path, tokenizer_config),
            special_tokens=_special_tokens(path, tokenizer_config),
            audio_kind=audio_kind(config) if model_type is ModelType.AUDIO and config else None,
            normalizes_embeddings=_normalizes(path) if model_type is ModelType.EMBEDDINGS else None,
            files=tuple(sorted(p.name for p in path.iterdir())) if path.is_dir() else (),
            tool_parser_id=parser,
            thinking_markers=thinking,
        )
