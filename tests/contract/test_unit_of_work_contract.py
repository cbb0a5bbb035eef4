"""UnitOfWork contract: nothing is saved without commit(); tracked objects save on commit."""

from __future__ import annotations

import pytest

from domain.enums import ModelType
from domain.library.models import Model


def test_without_commit_nothing_is_saved(uow_factory):
    with uow_factory() as uow:
        uow.models.add(Model("a", model_type=ModelType.TEXT_GEN))
        uow.settings.set("k", "v")
    with uow_factory() as uow:
        assert uow.models.get("a") is None
        assert uow.settings.get("k") is None


def test_an_exception_rolls_back(uow_factory):
    with pytest.raises(RuntimeError):
        with uow_factory() as uow:
            uow.models.add(Model("a"))
            raise RuntimeError("use case failed")
    with uow_factory() as uow:
        assert uow.models.list() == []


def test_explicit_rollback_discards_uncommitted_work(uow_factory):
    with uow_factory() as uow:
        uow.models.add(Model("kept"))
        uow.commit()
        uow.models.add(Model("dropped"))
        uow.rollback()
    with uow_factory() as uow:
        assert [m.model_id for m in uow.models.list()] == ["kept"]


def test_mutating_a_loaded_model_then_commit_saves_it(uow_factory):
    with uow_factory() as uow:
        uow.models.add(Model("a", tags=["x"]))
        uow.commit()
    with uow_factory() as uow:
        model = uow.models.find("A")
        model.tags.append("y")
        model.description = "now described"
        uow.commit()
    with uow_factory() as uow:
        loaded = uow.models.get("a")
    assert loaded.tags == ["x", "y"]
    assert loaded.description == "now described"


def test_mutating_without_commit_is_discarded(uow_factory):
    with uow_factory() as uow:
        uow.models.add(Model("a", description="before"))
        uow.commit()
    with uow_factory() as uow:
        uow.models.get("a").description = "after"
    with uow_factory() as uow:
        assert uow.models.get("a").description == "before"
