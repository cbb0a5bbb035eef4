"""The API's names for overlay fields, and which fields a model's overlays confirm (no pydantic: `mlxm show`
reads them too, issue 19)."""

from __future__ import annotations

from domain.library.overlays import ModelOverlays

# Overlay field -> the key the model objects of the API use.
API_NAMES = {"model_type": "type", "family": "family", "tags": "tags", "description": "description",
             "display_name": "display_name"}


def confirmed_fields(overlays: ModelOverlays | None) -> list[str]:
    return sorted(API_NAMES[name] for name in (overlays.confirmed() if overlays else []))
