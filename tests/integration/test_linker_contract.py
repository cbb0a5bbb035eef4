"""One contract suite for the Linker port: the in-memory fake and the real FilesystemLinker."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest

from adapters.filesystem.linker import FilesystemLinker
from adapters.memory.library import InMemoryLinker
from domain.library.mapping import LinkMethod, TargetState


class FsWorld:
    def __init__(self, root: Path, methods=None) -> None:
        self.root = root
        self.linker = FilesystemLinker(methods) if methods else FilesystemLinker()

    def p(self, relative: str) -> str:
        return str(self.root / relative)

    def file(self, relative: str, content: bytes = b"data") -> str:
        path = self.root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)
        return str(path)

    def symlink(self, relative: str, to: str) -> str:
        path = self.root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        os.symlink(to, path)
        return str(path)

    def dir(self, relative: str) -> str:
        (self.root / relative).mkdir(parents=True, exist_ok=True)
        return str(self.root / relative)

    def exists(self, path: str) -> bool:
        return os.path.lexists(path)


class MemWorld:
    def __init__(self, methods=None) -> None:
        methods = methods or (LinkMethod.SYMLINK, LinkMethod.HARDLINK, LinkMethod.COPY)
        self.linker = InMemoryLinker(symlinks=LinkMethod.SYMLINK in methods, hardlinks=LinkMethod.HARDLINK in methods)

    def p(self, relative: str) -> str:
        return "/w/" + relative

    def file(self, relative: str, content: bytes = b"data") -> str:
        self.linker.add_file(self.p(relative), size=len(content))
        return self.p(relative)

    def symlink(self, relative: str, to: str) -> str:
        self.linker.add_symlink(self.p(relative), to)
        return self.p(relative)

    def dir(self, relative: str) -> str:
        self.linker.add_dir(self.p(relative))
        return self.p(relative)

    def exists(self, path: str) -> bool:
        return self.linker.lexists(path)


@pytest.fixture(params=["memory", "filesystem"])
def make_world(request, tmp_path):
    def factory(methods=None):
        return MemWorld(methods) if request.param == "memory" else FsWorld(tmp_path, methods)
    return factory


@pytest.fixture
def world(make_world):
    return make_world()


def test_missing_then_linked_is_ours(world):
    source = world.file("lib/m/model.safetensors")
    target = world.p("app/m/model.safetensors")
    assert world.linker.inspect(target, source) is TargetState.MISSING
    assert world.linker.link(source, target) is LinkMethod.SYMLINK
    assert world.linker.inspect(target, source) is TargetState.OURS
    assert world.linker.readlink(target) == source


def test_dangling_symlink_is_dangling_and_never_written_through(world):
    source = world.file("lib/m/model.safetensors")
    nowhere = world.p("gone/file")
    target = world.symlink("app/m/model.safetensors", nowhere)
    assert world.linker.inspect(target, source) is TargetState.DANGLING
    with pytest.raises(FileExistsError):
        world.linker.link(source, target)
    assert not world.exists(nowhere)
    assert world.linker.dangling_links(world.p("app")) == [target]


def test_someone_elses_entries_are_other(world):
    source = world.file("lib/m/model.safetensors")
    other = world.file("else/other.bin")
    assert world.linker.inspect(world.file("app/a"), source) is TargetState.OTHER
    assert world.linker.inspect(world.symlink("app/b", other), source) is TargetState.OTHER
    directory = world.dir("app/c")
    assert world.linker.inspect(directory, source) is TargetState.OTHER
    assert world.linker.is_dir(directory) and not world.linker.is_dir(world.p("app/a"))


@pytest.mark.parametrize("methods,expected", [
    ((LinkMethod.HARDLINK, LinkMethod.COPY), LinkMethod.HARDLINK),
    ((LinkMethod.COPY,), LinkMethod.COPY),
])
def test_fallback_methods_are_recognised_as_ours(make_world, methods, expected):
    world = make_world(methods)
    source = world.file("lib/m/model.safetensors", b"weights")
    target = world.p("app/m/model.safetensors")
    assert world.linker.link(source, target) is expected
    assert world.linker.readlink(target) is None
    fingerprint = world.linker.fingerprint(target) if expected is LinkMethod.COPY else None
    assert world.linker.inspect(target, source, recorded=expected, fingerprint=fingerprint) is TargetState.OURS
    if expected is LinkMethod.COPY:
        # A copy is only ours when mlxm recorded making it, and recorded what it made.
        assert world.linker.inspect(target, source) is TargetState.OTHER
        assert world.linker.inspect(target, source, recorded=expected) is TargetState.OTHER


def test_a_same_size_file_replacing_a_copy_is_not_ours(make_world):
    world = make_world((LinkMethod.COPY,))
    source = world.file("lib/m/model.safetensors", b"weights")
    target = world.p("app/m/model.safetensors")
    world.linker.link(source, target)
    fingerprint = world.linker.fingerprint(target)
    world.linker.remove(target)
    world.file("app/m/model.safetensors", b"WEIGHTS")  # the user's own file, same size
    assert world.linker.fingerprint(target) != fingerprint
    assert world.linker.inspect(target, source, recorded=LinkMethod.COPY, fingerprint=fingerprint) is TargetState.OTHER


def test_remove_never_removes_directories(world):
    world.dir("app/d")
    world.file("app/d/keep")
    with pytest.raises(IsADirectoryError):
        world.linker.remove(world.p("app/d"))
    assert world.exists(world.p("app/d/keep"))
    world.linker.remove(world.p("app/absent"))  # no error
    dangling = world.symlink("app/dl", world.p("nowhere"))
    world.linker.remove(dangling)
    assert not world.exists(dangling)


def test_move_aside_and_restore_round_trip(world):
    target = world.file("app/x", b"original")
    aside = world.linker.move_aside(target)
    assert not world.exists(target) and world.exists(aside)
    source = world.file("lib/y")
    world.linker.link(source, target)
    world.linker.restore(aside, target)
    assert world.linker.readlink(target) is None and not world.exists(aside)


def test_prune_empty_dirs_stops_at_content_and_at_the_stop(world):
    world.file("app/keep/file")
    world.dir("app/keep/a/b/c")
    world.linker.prune_empty_dirs(world.p("app/keep/a/b/c"), world.p("app"))
    assert not world.exists(world.p("app/keep/a"))
    assert world.exists(world.p("app/keep/file"))
    world.dir("app/empty/x")
    world.linker.prune_empty_dirs(world.p("app/empty/x"), world.p("app/empty"))
    assert world.exists(world.p("app/empty"))


def test_list_files_skips_dot_entries(world):
    world.file("lib/m/config.json")
    world.file("lib/m/sub/w.safetensors")
    world.file("lib/m/.mlxm.json")
    world.file("lib/m/.cache/x")
    assert world.linker.list_files(world.p("lib/m")) == ["config.json", "sub/w.safetensors"]


# -- the real adapter only: the fallback chain when the OS refuses a method ---------------------


def test_real_linker_falls_back_when_symlinks_are_refused(tmp_path, monkeypatch):
    world = FsWorld(tmp_path)
    source = world.file("lib/m/w.safetensors", b"abc")

    def refuse(*args, **kwargs):
        raise PermissionError(errno.EPERM, "symlinks not allowed here")

    monkeypatch.setattr(os, "symlink", refuse)
    assert world.linker.link(source, world.p("app/one")) is LinkMethod.HARDLINK

    def cross_device(*args, **kwargs):
        raise OSError(errno.EXDEV, "cross-device link")

    monkeypatch.setattr(os, "link", cross_device)
    target = world.p("app/two")
    assert world.linker.link(source, target) is LinkMethod.COPY
    assert Path(target).read_bytes() == b"abc" and not os.path.islink(target)
    assert [p.name for p in (tmp_path / "app").iterdir() if p.name.startswith(".")] == [], "no temp files left"


def test_a_file_where_the_app_folder_should_be_is_a_folder_problem(world):
    source = world.file("lib/m/model.safetensors")
    world.file("apps/studio", b"not a folder")
    assert world.linker.folder_problem(world.p("apps/studio/llm")) == f"{world.p('apps/studio')} is a file, not a folder"
    assert world.linker.folder_problem(world.p("apps/other/llm")) is None
    assert world.linker.folder_problem(world.dir("apps/real")) is None
    with pytest.raises(NotADirectoryError):
        world.linker.link(source, world.p("apps/studio/llm/m/model.safetensors"))
