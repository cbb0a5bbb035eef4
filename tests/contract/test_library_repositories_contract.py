"""Link, dependency-profile and dependency-binding repositories: one suite, fake and SQLAlchemy.

The SQL database comes from the migrations, which seed profiles and bindings; the tests use
their own ids so they hold on both.
"""

from __future__ import annotations

from datetime import datetime, timezone

from domain.library.dependency_model import DependencyBinding, DependencyProfile, Requirement
from domain.library.mapping import LinkMethod, LinkRecord

T0 = datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone.utc)


def link(target: str, app: str = "app", model_id: str = "m", method=LinkMethod.SYMLINK) -> LinkRecord:
    return LinkRecord(app=app, model_id=model_id, rule_target="llm", folder=model_id,
                      source_path=f"/lib/{model_id}/f", target_path=target, method=method, created_at=T0)


def test_links_are_listed_by_app_and_model(uow_factory):
    with uow_factory() as uow:
        uow.links.add(link("/a/1", app="a", model_id="m1"))
        uow.links.add(link("/a/2", app="a", model_id="m2", method=LinkMethod.COPY))
        uow.links.add(link("/b/1", app="b", model_id="m1"))
        uow.commit()
    with uow_factory() as uow:
        assert [r.target_path for r in uow.links.list(app="a")] == ["/a/1", "/a/2"]
        assert [r.target_path for r in uow.links.list(model_id="m1")] == ["/a/1", "/b/1"]
        assert [r.target_path for r in uow.links.list(app="a", model_id="m2")] == ["/a/2"]
        record = uow.links.list(app="a", model_id="m2")[0]
        assert (record.method, record.folder, record.rule_target, record.created_at) == (LinkMethod.COPY, "m2", "llm", T0)
        assert record.id is not None


def test_a_copy_keeps_its_fingerprint(uow_factory):
    from dataclasses import replace

    with uow_factory() as uow:
        uow.links.add(replace(link("/a/c", method=LinkMethod.COPY), fingerprint="2049:1234:7:1700000000"))
        uow.links.add(link("/a/s"))
        uow.commit()
    with uow_factory() as uow:
        assert {r.target_path: r.fingerprint for r in uow.links.list()} == {"/a/c": "2049:1234:7:1700000000",
                                                                             "/a/s": None}


def test_adding_a_link_at_the_same_target_replaces_it(uow_factory):
    with uow_factory() as uow:
        first = uow.links.add(link("/a/1"))
        second = uow.links.add(link("/a/1", model_id="other", method=LinkMethod.HARDLINK))
        uow.commit()
    assert first.id == second.id
    with uow_factory() as uow:
        [only] = uow.links.list()
        assert (only.model_id, only.method) == ("other", LinkMethod.HARDLINK)


def test_links_removed_or_uncommitted_are_gone(uow_factory):
    with uow_factory() as uow:
        uow.links.add(link("/a/1"))
        uow.links.add(link("/a/2"))
        uow.commit()
    with uow_factory() as uow:
        uow.links.remove("/a/1")
        uow.links.remove("/not/there")
        uow.links.add(link("/a/3"))  # never committed
    with uow_factory() as uow:
        assert [r.target_path for r in uow.links.list()] == ["/a/1", "/a/2"]
        uow.links.remove("/a/1")
        uow.commit()
    with uow_factory() as uow:
        assert [r.target_path for r in uow.links.list()] == ["/a/2"]


PROFILE_V1 = DependencyProfile("contract-p", 1, "python-venv", (
    Requirement("mlx", "==0.32.4", extras=("cpu",), markers='sys_platform == "linux"', python_requires=">=3.10"),
    Requirement("mlx-lm", "==0.32.2"),
), description="first")
PROFILE_V2 = DependencyProfile("contract-p", 2, "python-venv", (Requirement("mlx-lm", "==0.33.0"),))


def test_profiles_by_version_and_newest(uow_factory):
    with uow_factory() as uow:
        uow.dependency_profiles.add(PROFILE_V2)
        uow.dependency_profiles.add(PROFILE_V1)
        uow.commit()
    with uow_factory() as uow:
        assert uow.dependency_profiles.get("contract-p", 1) == PROFILE_V1
        assert uow.dependency_profiles.get("contract-p") == PROFILE_V2
        assert uow.dependency_profiles.get("contract-p", 3) is None
        assert uow.dependency_profiles.get("no-such-profile") is None
        mine = [p for p in uow.dependency_profiles.list() if p.profile_id == "contract-p"]
        assert [p.version for p in mine] == [1, 2]


def test_re_adding_a_profile_version_replaces_its_requirements(uow_factory):
    with uow_factory() as uow:
        uow.dependency_profiles.add(PROFILE_V1)
        uow.commit()
    changed = DependencyProfile("contract-p", 1, "python-venv", (Requirement("numpy", "==2.0.0"),))
    with uow_factory() as uow:
        uow.dependency_profiles.add(changed)
        uow.commit()
    with uow_factory() as uow:
        assert uow.dependency_profiles.get("contract-p", 1) == changed


def test_bindings_add_get_list_replace_remove(uow_factory):
    a = DependencyBinding("c:one", "contract-model", "contract-p", 1, platform_selector="linux-*", backend_key="mlx-lm")
    b = DependencyBinding("c:two", "contract-model", "other-p")
    c = DependencyBinding("c:three", "another-model", "contract-p")
    with uow_factory() as uow:
        for binding in (a, b, c):
            uow.dependency_bindings.add(binding)
        uow.commit()
    with uow_factory() as uow:
        assert uow.dependency_bindings.get("c:one") == a
        assert uow.dependency_bindings.list(model_id="contract-model") == [a, b]
        assert {x.binding_id for x in uow.dependency_bindings.list()} >= {"c:one", "c:two", "c:three"}
        moved = DependencyBinding("c:one", "contract-model", "contract-p", 2)
        uow.dependency_bindings.add(moved)
        uow.dependency_bindings.remove("c:two")
        uow.commit()
    with uow_factory() as uow:
        assert uow.dependency_bindings.list(model_id="contract-model") == [moved]
        assert uow.dependency_bindings.get("c:two") is None
