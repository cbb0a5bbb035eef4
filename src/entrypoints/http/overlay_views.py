"""How the API shows a model's overlays: overridden fields (value over inferred) and confirmed ones."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel

from domain.library.overlays import ModelOverlays, overlay_to_dict
from entrypoints.http.overlay_names import API_NAMES


class OverrideDTO(BaseModel):
    """A field the user overrode (mlxm edit): `value` is in effect, `inferred` lies beneath it."""

    value: Any = None
    inferred: Any = None
    updated_at: datetime | None = None


def overrides_of(overlays: ModelOverlays | None) -> dict[str, OverrideDTO]:
    found = {}
    for name, overlay in sorted((overlays.overriding() if overlays else {}).items()):
        data = overlay_to_dict(overlay)
        found[API_NAMES[name]] = OverrideDTO(value=data["value"], inferred=data["inferred"],
                                             updated_at=overlay.updated_at)
    return found

