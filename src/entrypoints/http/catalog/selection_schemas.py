"""DTOs of the model selection API (`/api/selection`)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


# -- selection -----------------------------------------------------------------------
class SelectionDTO(BaseModel):
    model_id: str
    changed: bool
    reason: str = ""


class SelectionRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    model: str
