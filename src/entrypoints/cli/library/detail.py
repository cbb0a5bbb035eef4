"""What `mlxm show` prints about a model, read from the domain model and its overlays.

`mlxm show --json` prints the HTTP API's `ModelDetailDTO`. The text view needs only some of its values;
building them without the DTO spares the command pydantic and the API's ~60 schema classes (issue 19).
`tests/unit/test_cli_show_detail.py` checks every value against the DTO's, so the two cannot drift apart.
"""

from __future__ import annotations

import enum
from typing import Any

from domain.library.overlays import overlay_to_dict
from entrypoints.cli.base import json_value
from entrypoints.http.overlay_names import API_NAMES, confirmed_fields

# CapabilitiesDTO's fields in its order, without `model_type` (show prints the type on its own line).
CAPABILITY_FIELDS = (
    "probed_at", "probe_version", "model_family", "supports_native_tools", "supports_thinking", "tool_format",
    "tool_parser_id", "thinking_parser_id", "practical_max_tokens", "supports_multi_image", "supports_video",
    "embedding_dimensions", "max_sequence_length", "is_normalized", "supports_tts", "supports_stt",
)
# The model's lines of `mlxm show`, in order (keys as in the API's model object).
SHOWN_FIELDS = ("display_name", "type", "family", "description", "tags", "status", "local_path", "repo_id",
                "canonical_id", "revision", "source")


def detail_values(model, overlays=None) -> dict[str, Any]:
    """`ModelDetailDTO.from_domain(model, overlays).model_dump(mode="json")` for SHOWN_FIELDS; the capabilities
    that are set (in the DTO's order); `overrides` as {key: {"value", "inferred"}}; `confirmed`."""
    values: dict[str, Any] = {
        "display_name": model.display_name,
        "type": model.model_type.value if model.model_type else None,
        "family": model.family,
        "description": model.description,
        "tags": list(model.tags),
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
    overriding = overlays.overriding() if overlays else {}
    values["overrides"] = {}
    for name, overlay in sorted(overriding.items()):
        data = overlay_to_dict(overlay)
        values["overrides"][API_NAMES[name]] = {"value": data["value"], "inferred": data["inferred"]}
    values["confirmed"] = confirmed_fields(overlays)
    return values


def _plain(value: Any) -> Any:
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, (bool, int, float, str)):
        return value
    return json_value(value)  # datetimes as the API writes them
