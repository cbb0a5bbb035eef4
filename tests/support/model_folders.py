"""Small model folders for library-pipeline tests, written with the standard library only.

`write_safetensors` produces a real safetensors file (8-byte little-endian header length, JSON
header, raw bytes), so the import pipeline's header reader and tensor-name inference see the
same structure as in a real checkpoint. No mlx import: unit tests stay fast.
"""

from __future__ import annotations

import json
import struct
from pathlib import Path

LLAMA_CONFIG = {"model_type": "llama", "architectures": ["LlamaForCausalLM"], "hidden_size": 8}
LLAMA_TENSORS = ("model.embed_tokens.weight", "model.layers.0.self_attn.q_proj.weight", "model.norm.weight")


def write_safetensors(path: Path, tensor_names=LLAMA_TENSORS, *, seed: int = 0, truncate: int = 0) -> Path:
    """Each tensor is 4 float32 values; `seed` changes the bytes; `truncate` cuts bytes off the end."""
    header: dict = {"__metadata__": {"format": "mlx"}}
    data = b""
    for index, name in enumerate(tensor_names):
        payload = struct.pack("<4f", *(float(seed * 100 + index * 4 + k) for k in range(4)))
        header[name] = {"dtype": "F32", "shape": [4], "data_offsets": [len(data), len(data) + len(payload)]}
        data += payload
    raw = json.dumps(header).encode()
    blob = struct.pack("<Q", len(raw)) + raw + data
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(blob[: len(blob) - truncate] if truncate else blob)
    return path


def write_model_folder(folder: Path, *, config: dict | None = LLAMA_CONFIG, tensors=LLAMA_TENSORS,
                       seed: int = 0, extra: dict[str, str] | None = None) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    if config is not None:
        (folder / "config.json").write_text(json.dumps(config), encoding="utf-8")
    write_safetensors(folder / "model.safetensors", tensors, seed=seed)
    (folder / "tokenizer.json").write_text('{"version": "1.0"}', encoding="utf-8")
    for name, text in (extra or {}).items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_text(text, encoding="utf-8")
    return folder


def kept_folder_note(folder: Path) -> str:
    """The delete's note for a real folder at `models/<key>` it leaves alone, with the bytes it holds
    (files only: links free nothing), as `mlxm rm` prints it after "Kept " and the HTTP `kept` lists it."""
    from domain.sizes import human_size

    size = sum(p.stat().st_size for p in Path(folder).rglob("*") if p.is_file() and not p.is_symlink())
    return (f"{folder} ({human_size(size)}): a folder mlxm did not create (mlxm keeps only a link there); "
            "left alone: delete it yourself to free its space")
