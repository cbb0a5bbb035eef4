"""A Hugging Face repo id is at most 96 characters per part (the hub's rule): a longer `org/name` names no
repository, so a pull of it is an unknown model (404), not a download that fails on a too-long file name."""

from __future__ import annotations

import pytest

from application.downloads.targets import resolve_pull_target
from domain.catalog.model import is_repo_id
from domain.errors import UnknownModel
from tests.support.download_catalog import make_catalog


def test_each_part_of_a_repo_id_is_at_most_96_characters() -> None:
    longest = "o" * 96
    assert is_repo_id(f"{longest}/{longest}")
    assert not is_repo_id(f"{longest}o/name")
    assert not is_repo_id(f"org/{longest}o")


@pytest.mark.parametrize("name", ["o/" + "x" * 97, "o/" + "x" * 100_000 + "@main", "o" * 97 + "/name"])
def test_a_pull_of_an_overlong_repo_id_is_an_unknown_model(name: str) -> None:
    with pytest.raises(UnknownModel):
        resolve_pull_target(make_catalog(), name)


def test_an_overlong_bare_name_with_an_organization_is_unknown_too() -> None:
    with pytest.raises(UnknownModel):
        resolve_pull_target(make_catalog(), "x" * 97, "mlx-community")
    assert resolve_pull_target(make_catalog(), "x" * 96, "mlx-community").key == "mlx-community/" + "x" * 96
