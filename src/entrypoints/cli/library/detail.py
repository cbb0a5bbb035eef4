"""What `mlxm show` prints about a model, read from the domain model.

`mlxm show --json` prints the HTTP API's `ModelDetailDTO`; the text view needs only a few of its values,
and building them without the DTO spares the command pydantic and the API's ~60 schema classes (issue 19).
`tests/unit/test_cli_show_detail.py` checks these values against the DTO's, so the two cannot drift apart.
"""

from __future__ import annotations

import enum
from typing import Any

from entrypoints.cli.base import json_value

# CapabilitiesDTO's fields in its order, without `model_type` (show prints the type on its own line).
CAPABILITY_FIELDS = (
    "probed_at", "probe_version", "model_family", "supports_native_tools", "supports_thinking", "tool_format",
    "tool_parser_id", "thinking_parser_id", "practical_max_tokens", "supports_multi_image", "supports_video",
    "embedding_dimensions", "max_sequence_length", "is_normalized", "supports_tts", "supports_stt",
)
SHOWN_FIELDS = ("type", "family", "status", "local_path", "repo_id", "canonical_id", "revision", "source")


def detail_values(model) -> dict[str, Any]:
    """`ModelDetailDTO.from_domain(model).model_dump(mode="json")` for SHOWN_FIELDS, and the capabilities
    that are set (in the DTO's order)."""
    values: dict[str, Any] = {
        "type": model.model_type.value if model.model_type else None,
        "family": model.family,
        "status": model.status.value,
        "local_path": model.local_path,
        "repo_id": model.repo_id,
        "canonical_id": model.canonical_id,
        "revision": model.revision,
        "source": model.source,
    }
    caps = model.capabilities
    values["capabilities"] = None if caps is None else {
        name: _plain(value) for name in CAPABILITY_FIELDS if (value := getattr(caps, name, None)) is not None
    }
    return values


def _plain(value: Any) -> Any:
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, (bool, int, float, str)):
        return value
    return json_value(value)  # datetimes as the API writes them
