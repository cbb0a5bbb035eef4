"""`mlxm show`'s text view reads the domain model and its overlays; its values are the HTTP API's DTO's."""

import dataclasses
from datetime import datetime, timedelta, timezone

import pytest

from domain.enums import DownloadStatus, ModelType
from domain.library.capabilities import (
    AudioCapabilities,
    EmbeddingCapabilities,
    TextGenCapabilities,
    VisionCapabilities,
)
from domain.library.models import Model, ModelFile
from domain.library.overlays import ModelOverlays, Overlay, TagEdit
from entrypoints.cli.library.detail import CAPABILITY_FIELDS, SHOWN_FIELDS, detail_values
from entrypoints.http.library.model_schemas import CapabilitiesDTO, ModelDetailDTO

PROBED = datetime(2026, 12, 1, 21, 54, 18, 123456, tzinfo=timezone.utc)


def _every_field_set(cls):
    """An instance of a capabilities class with each field given a value of its type."""
    samples = {"probed_at": PROBED, "probe_version": 3, "model_family": "llama", "tool_format": "hermes",
               "tool_parser_id": "hermes_json", "thinking_parser_id": "think_tags", "practical_max_tokens": 4096,
               "embedding_dimensions": 384, "max_sequence_length": 512}
    values = {f.name: samples.get(f.name, True) for f in dataclasses.fields(cls) if f.name != "model_type"}
    return cls(**values)


EDITED = ModelOverlays("imported", {
    "model_type": Overlay("model_type", ModelType.VISION, ModelType.TEXT_GEN, updated_at=PROBED),
    "tags": Overlay("tags", TagEdit(add=("mine",), remove=("chat",)), ["chat", "small"], updated_at=PROBED),
    "display_name": Overlay("display_name", "My model", None, updated_at=PROBED),
    "description": Overlay("description", "", "inferred text"),
    "family": Overlay("family", None, "llama", confirmed=True, settled_reasons=("family unknown",)),
})

MODELS = [
    (Model("bare"), None),
    (Model("imported", repo_id="org/imported", canonical_id="imported-v1", model_type=ModelType.TEXT_GEN,
           family="llama", local_path="/lib/imported", size_bytes=10, status=DownloadStatus.COMPLETED,
           revision="abc", source="import", files=[ModelFile("model.safetensors", 10, "f" * 64)],
           tags=["small", "mine"], description="", display_name="My model",
           capabilities=TextGenCapabilities(probed_at=PROBED.astimezone(timezone(timedelta(hours=2))),
                                            supports_native_tools=False, practical_max_tokens=128)),
     EDITED),
    (Model("empty-caps", model_type=ModelType.VISION, status=DownloadStatus.DOWNLOADING,
           capabilities=VisionCapabilities()), ModelOverlays("empty-caps")),
    *((Model(f"full-{cls.__name__}", model_type=cls.model_type, capabilities=_every_field_set(cls)), None)
      for cls in (TextGenCapabilities, VisionCapabilities, EmbeddingCapabilities, AudioCapabilities)),
]


def test_the_capability_fields_are_the_dtos_in_its_order():
    assert CAPABILITY_FIELDS == tuple(name for name in CapabilitiesDTO.model_fields if name != "model_type")


@pytest.mark.parametrize(("model", "overlays"), MODELS, ids=lambda m: getattr(m, "model_id", ""))
def test_the_text_view_has_the_dtos_values(model, overlays):
    dto = ModelDetailDTO.from_domain(model, overlays).model_dump(mode="json")
    expected = {key: dto[key] for key in SHOWN_FIELDS}
    caps = dto["capabilities"]
    expected["capabilities"] = None if caps is None else {
        k: v for k, v in caps.items() if v is not None and k != "model_type"}
    expected["overrides"] = {k: {"value": o["value"], "inferred": o["inferred"]} for k, o in dto["overrides"].items()}
    expected["confirmed"] = dto["confirmed"]
    ours = detail_values(model, overlays)
    assert ours == expected
    assert list(ours["capabilities"] or ()) == list(expected["capabilities"] or ())  # the same order too


def test_an_edited_model_shows_its_overrides_and_confirmations():
    values = detail_values(MODELS[1][0], EDITED)
    assert values["overrides"]["type"] == {"value": "vision", "inferred": "text-gen"}
    assert values["overrides"]["tags"] == {"value": {"add": ["mine"], "remove": ["chat"]},
                                           "inferred": ["chat", "small"]}
    assert values["confirmed"] == ["family"]
