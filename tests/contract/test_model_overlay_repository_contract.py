"""ModelOverlayRepository contract (`uow.overlays`): the in-memory fake, SQLite and PostgreSQL behave alike."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from domain.enums import ModelType
from domain.library.models import Model
from domain.library.overlays import ModelOverlays, Overlay, TagEdit

T0 = datetime(2026, 12, 2, 3, 4, 5, tzinfo=timezone.utc)


def overlays(model_id: str = "weird") -> ModelOverlays:
    return ModelOverlays(model_id, {
        "model_type": Overlay("model_type", ModelType.VISION, ModelType.TEXT_GEN, False,
                              ("low confidence 0.67 for type text-gen",), T0),
        "tags": Overlay("tags", TagEdit(("coding",), ("imported",)), ["imported", "needs-review"], False, (), T0),
        "family": Overlay("family", None, None, True, ("family unknown: config.json has no model_type",), T0),
        "display_name": Overlay("display_name", "Weird VL", None, False, (), None),
    })


@pytest.fixture
def stocked(uow_factory):
    with uow_factory() as uow:
        uow.models.add(Model("weird", model_type=ModelType.VISION, local_path="/m/weird"))
        uow.models.add(Model("plain", model_type=ModelType.TEXT_GEN, local_path="/m/plain"))
        uow.commit()
    return uow_factory


def test_no_overlays_is_an_empty_set(stocked):
    with stocked() as uow:
        assert uow.overlays.get("weird") == ModelOverlays("weird")
        assert uow.overlays.get("not-there") == ModelOverlays("not-there")
        assert uow.overlays.list() == []


def test_overlays_round_trip_field_by_field(stocked):
    with stocked() as uow:
        uow.overlays.add(overlays())
        uow.commit()
    with stocked() as uow:
        loaded = uow.overlays.get("weird")
        assert loaded == overlays()
        assert uow.overlays.get("plain").items == {}
        assert [o.model_id for o in uow.overlays.list()] == ["weird"]


def test_add_replaces_the_models_overlays_and_an_empty_set_removes_them(stocked):
    with stocked() as uow:
        uow.overlays.add(overlays())
        uow.overlays.add(overlays("plain"))
        uow.commit()
    with stocked() as uow:
        uow.overlays.add(ModelOverlays("weird", {"family": Overlay("family", "qwen2_vl", "qwen2", updated_at=T0)}))
        uow.commit()
    with stocked() as uow:
        assert list(uow.overlays.get("weird").items) == ["family"]
        assert uow.overlays.get("weird").items["family"].value == "qwen2_vl"
        assert uow.overlays.get("plain") == overlays("plain")  # another model's overlays are untouched
        uow.overlays.add(ModelOverlays("weird"))
        uow.commit()
    with stocked() as uow:
        assert uow.overlays.get("weird").items == {}
        assert [o.model_id for o in uow.overlays.list()] == ["plain"]


def test_nothing_is_saved_without_commit(stocked):
    with stocked() as uow:
        uow.overlays.add(overlays())
    with stocked() as uow:
        assert uow.overlays.get("weird").items == {}


def test_overlays_need_their_model(stocked):
    with stocked() as uow:
        with pytest.raises(LookupError):
            uow.overlays.add(overlays("not-there"))


def test_overlays_go_with_their_model(stocked):
    with stocked() as uow:
        uow.overlays.add(overlays())
        uow.commit()
    with stocked() as uow:
        uow.models.remove("weird")
        uow.commit()
    with stocked() as uow:
        # A new model under the same name starts without the old one's overlays.
        uow.models.add(Model("weird", model_type=ModelType.TEXT_GEN, local_path="/m/weird2"))
        uow.commit()
    with stocked() as uow:
        assert uow.overlays.get("weird").items == {}
        assert uow.overlays.list() == []
