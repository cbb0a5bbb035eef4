"""ModelStore: one suite over the in-memory fake and the filesystem adapter (real files under tmp_path).

The suite uses the port's methods; only putting bytes in place (what a downloader or an import does)
and reading them back go through a small per-backend helper.
"""

from __future__ import annotations

import hashlib
import os
import threading
from pathlib import Path

import pytest

from adapters.filesystem import hash_cache
from adapters.filesystem.model_store import FilesystemModelStore
from adapters.memory.model_store import InMemoryModelStore
from application.errors import IntegrityError
from domain.library.layout import MANIFEST_NAME, PART_SUFFIX, Manifest

REV_A = "a" * 40
REV_B = "b" * 40


class Files:
    """Bytes in and out of a store, the way the adapters around it do it."""

    def __init__(self, store) -> None:
        self.store = store

    def put(self, path: Path, data: bytes) -> None:
        if isinstance(self.store, InMemoryModelStore):
            self.store.write_file(path, data)
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)

    def read(self, path: Path) -> bytes:
        if isinstance(self.store, InMemoryModelStore):
            return self.store.read_file(path)
        return path.read_bytes()

    def exists(self, path: Path) -> bool:
        if isinstance(self.store, InMemoryModelStore):
            return self.store.exists(path)
        return path.exists()

    def remember_hash(self, path: Path, digest: str) -> None:
        if isinstance(self.store, InMemoryModelStore):
            self.store.write_hash_cache(path, digest)
        else:
            hash_cache.write_hash_cache(path, digest)

    def link(self, link: Path, target: Path) -> None:
        if isinstance(self.store, InMemoryModelStore):
            self.store._mkdirs(link.parent)
            self.store.links[link] = target
        else:
            link.parent.mkdir(parents=True, exist_ok=True)
            os.symlink(target, link)


@pytest.fixture(params=["memory", "filesystem"])
def files(request, tmp_path) -> Files:
    store = InMemoryModelStore(tmp_path / "home") if request.param == "memory" else FilesystemModelStore(tmp_path / "home")
    return Files(store)


def staged(files: Files, key: str, revision: str, content: dict[str, bytes]) -> tuple[Path, Manifest]:
    folder = files.store.staging_for(key, revision)
    for name, data in content.items():
        files.put(folder / name, data)
    manifest = Manifest(key=key, repo_id="org/m", revision=revision, source="test",
                        files=[{"path": n, "size": len(d), "sha256": hashlib.sha256(d).hexdigest()}
                               for n, d in content.items()])
    return folder, manifest


def test_layout_paths_are_the_same_in_every_store(files):
    store = files.store
    home = store.home
    assert store.models_dir == home / "models" and store.staging_dir == home / "staging"
    assert store.model_path("org/m") == home / "models" / "org/m"
    assert store.revision_dir("org/m", REV_A) == home / "models" / ".revisions" / "org/m" / REV_A
    assert store.staging_for("org/m", REV_A) == home / "staging" / "org--m" / REV_A
    assert store.scratch_for("org/m", REV_A) == home / "staging" / "org--m" / (REV_A + ".meta")
    with pytest.raises(ValueError):
        store.revision_dir("m", "../../etc")


def test_install_switches_the_model_to_the_new_revision(files):
    store = files.store
    folder, manifest = staged(files, "m", REV_A, {"config.json": b"{}", "w.safetensors": b"x" * 10})
    path = store.install("m", REV_A, folder, manifest)
    assert path == store.model_path("m")
    assert store.installed_revision_dir("m") == store.revision_dir("m", REV_A).resolve()
    assert files.read(path / "w.safetensors") == b"x" * 10
    assert store.read_manifest(store.revision_dir("m", REV_A)).revision == REV_A
    assert not files.exists(folder)

    folder_b, manifest_b = staged(files, "m", REV_B, {"config.json": b"{\"v\": 2}"})
    store.install("m", REV_B, folder_b, manifest_b)
    assert store.installed_revision_dir("m") == store.revision_dir("m", REV_B).resolve()
    assert files.read(store.model_path("m") / "config.json") == b"{\"v\": 2}"
    assert store.remove_revision("m", REV_A) is True
    assert not files.exists(store.revision_dir("m", REV_A))


def test_install_refuses_a_staged_folder_missing_a_listed_file(files):
    store = files.store
    folder, manifest = staged(files, "m", REV_A, {"config.json": b"{}"})
    manifest.files.append({"path": "missing.bin", "size": 3, "sha256": None})
    with pytest.raises(IntegrityError):
        store.install("m", REV_A, folder, manifest)
    assert store.installed_revision_dir("m") is None


def test_uninstall_puts_a_first_install_back_into_staging(files):
    store = files.store
    folder, manifest = staged(files, "m", REV_A, {"config.json": b"{}"})
    store.install("m", REV_A, folder, manifest)
    store.uninstall("m", REV_A, folder, None)
    assert store.installed_revision_dir("m") is None
    assert files.read(folder / "config.json") == b"{}"
    assert not files.exists(folder / MANIFEST_NAME)


def test_uninstall_points_back_at_the_previous_revision(files):
    store = files.store
    folder_a, manifest_a = staged(files, "m", REV_A, {"config.json": b"a"})
    store.install("m", REV_A, folder_a, manifest_a)
    previous = store.installed_revision_dir("m")
    folder_b, manifest_b = staged(files, "m", REV_B, {"config.json": b"b"})
    store.install("m", REV_B, folder_b, manifest_b)
    store.uninstall("m", REV_B, folder_b, previous)
    assert store.installed_revision_dir("m") == previous
    assert files.read(folder_b / "config.json") == b"b"


def test_remove_revision_keeps_what_mlxm_did_not_download(files):
    store = files.store
    folder = store.revision_dir("m", REV_A)
    files.put(folder / "config.json", b"{}")
    assert store.remove_revision("m", REV_A) is False  # no manifest: not ours
    files.put(folder / MANIFEST_NAME, Manifest("m", None, REV_A, None, created_by="adopted").to_json().encode())
    assert store.remove_revision("m", REV_A) is False
    assert files.exists(folder / "config.json")
    assert store.remove_revision("m", "main") is False  # not a folder name mlxm uses


def test_adopt_moves_a_foreign_folder_in_and_records_it(files):
    store = files.store
    legacy = store.model_path("tiny-old")
    files.put(legacy / "config.json", b"{}")
    assert store.is_foreign_folder(legacy)
    manifest = Manifest("m", "org/m", REV_A, "adopted", created_by="adopted", adopted_from=str(legacy))
    store.adopt("m", REV_A, legacy, manifest)
    assert not files.exists(legacy)
    assert store.installed_revision_dir("m") == store.revision_dir("m", REV_A).resolve()
    assert store.read_manifest(store.model_path("m")).created_by == "adopted"
    assert not store.is_foreign_folder(store.model_path("m"))  # mlxm's link, not a foreign folder


def test_staged_bytes_count_verified_files_and_partials_and_clear_staging_keeps_one_revision(files):
    store = files.store
    files.put(store.staging_for("m", REV_A) / "sub" / "a.bin", b"12345")
    files.put(store.scratch_for("m", REV_A) / ("b.bin" + PART_SUFFIX), b"123")
    files.put(store.scratch_for("m", REV_A) / "b.bin.sha256", b"not counted")
    files.put(store.staging_for("m", REV_B) / "old.bin", b"1")
    assert store.staged_bytes("m", REV_A) == 8
    store.clear_staging("m", keep_revision=REV_A)
    assert store.staged_bytes("m", REV_A) == 8 and store.staged_bytes("m", REV_B) == 0
    store.clear_staging("m")
    assert store.staged_bytes("m", REV_A) == 0
    assert store.staged_bytes("m", "../x") == 0


def test_prune_unlisted_drops_leftovers_from_the_staged_tree(files):
    store = files.store
    folder = store.staging_for("m", REV_A)
    files.put(folder / "keep.bin", b"k")
    files.put(folder / "sub" / "old.part", b"o")
    store.prune_unlisted(folder, {"keep.bin"})
    assert files.exists(folder / "keep.bin") and not files.exists(folder / "sub" / "old.part")


def test_sha256_uses_a_valid_cache_and_ignores_a_stale_one(files):
    store = files.store
    path = store.staging_for("m", REV_A) / "w.bin"
    files.put(path, b"weights")
    real = hashlib.sha256(b"weights").hexdigest()
    assert store.sha256_of(path) == real
    files.remember_hash(path, "f" * 64)  # what a downloader remembered while writing
    assert store.sha256_of(path) == "f" * 64
    assert store.sha256_of(path, use_cache=False) == real
    store.drop_hash_cache(path)
    assert store.sha256_of(path) == real
    assert store.hash_cache_path(path) == path.with_name("w.bin.sha256")
    sha256, git_sha1 = store.sha256_and_git_sha1(path, 7)
    assert sha256 == real and git_sha1 == hashlib.sha1(b"blob 7\0weights").hexdigest()


def test_first_symlink_and_free_space(files):
    store = files.store
    folder = store.model_path("plain")
    files.put(folder / "a.bin", b"a")
    assert store.first_symlink(folder) is None
    files.link(folder / "sub" / "elsewhere", store.home / "outside")
    assert store.first_symlink(folder) == folder / "sub" / "elsewhere"
    assert store.free_staging_bytes() > 0
    store.fsync_file(folder / "a.bin")
    with pytest.raises(OSError):
        store.fsync_file(folder / "missing.bin")


def test_model_lock_admits_one_holder_at_a_time(files):
    store = files.store
    with store.model_lock("m") as first:
        assert first is True
        with store.model_lock("m", wait=False) as second:
            assert second is False
        with store.model_lock("other", wait=False) as unrelated:
            assert unrelated is True
        stop = threading.Event()
        stop.set()
        with store.model_lock("m", should_stop=stop.is_set) as stopped:
            assert stopped is False
    with store.model_lock("m", wait=False) as again:
        assert again is True


def test_a_waiting_lock_gets_it_when_the_holder_lets_go(files):
    store = files.store
    got: list[bool] = []
    holding = threading.Event()
    release = threading.Event()

    def holder() -> None:
        with store.model_lock("m"):
            holding.set()
            release.wait(5)

    thread = threading.Thread(target=holder)
    thread.start()
    holding.wait(5)

    def waiter() -> None:
        with store.model_lock("m", poll_seconds=0.01) as acquired:
            got.append(acquired)

    second = threading.Thread(target=waiter)
    second.start()
    release.set()
    thread.join(5)
    second.join(5)
    assert got == [True]


def test_rename_moves_files_and_folders_and_lexists_sees_them(files):
    store = files.store
    a = store.home / "user" / "model"
    files.put(a / "w.safetensors", b"w")
    assert store.lexists(a) and not store.lexists(store.home / "nothing")
    b = store.staging_dir / "import-1" / "model"
    files.put(store.staging_dir / "import-1" / ".import.json", b"{}")
    store.rename(a, b)
    assert not store.lexists(a) and files.read(b / "w.safetensors") == b"w"
    store.rename(b / "w.safetensors", store.home / "w.safetensors")
    assert files.read(store.home / "w.safetensors") == b"w"
    store.remove_tree(store.staging_dir / "import-1")
    assert not store.lexists(store.staging_dir / "import-1")
    store.remove_tree(store.home / "never-was")  # errors are ignored


def test_walk_lists_folders_then_files_and_honours_pruning(files):
    store = files.store
    root = store.home / "src"
    files.put(root / "a.bin", b"a")
    files.put(root / "keep" / "b.bin", b"b")
    files.put(root / ".hidden" / "c.bin", b"c")
    seen = []
    for folder, dirs, names in store.walk(root):
        dirs[:] = [d for d in dirs if not d.startswith(".")]
        seen.extend(Path(folder, n).relative_to(root).as_posix() for n in names)
    assert sorted(seen) == ["a.bin", "keep/b.bin"]
    bottom_up = [Path(folder).relative_to(root).as_posix() for folder, _, _ in store.walk(root, top_down=False)]
    assert bottom_up[-1] == "." and set(bottom_up) == {".", "keep", ".hidden"}


def test_links_resolve_and_copy_hash_reads_the_bytes(files):
    store = files.store
    target = store.home / "real" / "w.bin"
    files.put(target, b"weights")
    link = store.home / "link.bin"
    store.symlink_relative(link, target)
    assert store.realpath(link) == store.realpath(target)
    assert store.hash_file(link) == (7, hashlib.sha256(b"weights").hexdigest())
    copy = store.home / "copy" / "w.bin"
    assert store.copy_and_hash(link, copy) == (7, hashlib.sha256(b"weights").hexdigest())
    assert files.read(copy) == b"weights"
    with pytest.raises(FileExistsError):
        store.copy_and_hash(link, copy)


def test_safetensors_tensor_names_come_from_the_header(files):
    import json
    import struct

    from application.errors import InvalidRequest

    store = files.store
    header = json.dumps({"b.weight": {"data_offsets": [4, 8]}, "a.weight": {"data_offsets": [0, 4]},
                         "__metadata__": {}}).encode()
    path = store.home / "m.safetensors"
    files.put(path, struct.pack("<Q", len(header)) + header + b"\0" * 8)
    assert store.safetensors_tensor_names(path) == ["a.weight", "b.weight"]
    files.put(store.home / "short.safetensors", b"\1\2")
    with pytest.raises(InvalidRequest):
        store.safetensors_tensor_names(store.home / "short.safetensors")


def test_plain_file_primitives_behave_like_pathlib(files):
    store = files.store
    folder = store.home / "work"
    with pytest.raises(FileNotFoundError):
        store.mkdir(folder / "a" / "b")  # no parents without parents=True
    store.mkdir(folder / "a" / "b", parents=True)
    store.mkdir(folder / "a", exist_ok=True)
    with pytest.raises(FileExistsError):
        store.mkdir(folder / "a")
    text = folder / "a" / "note.json"
    store.write_text(text, '{"k": "é"}')
    assert store.read_text(text) == '{"k": "é"}' and store.file_size(text) == len('{"k": "é"}'.encode())
    assert store.exists(text) and store.is_file(text) and not store.is_dir(text) and not store.is_symlink(text)
    assert store.is_dir(folder / "a") and not store.is_file(folder / "a")
    with pytest.raises(FileNotFoundError):
        store.write_text(folder / "missing" / "x.txt", "x")  # the folder must exist
    with pytest.raises(FileNotFoundError):
        store.read_text(folder / "nothing.txt")
    with pytest.raises(FileNotFoundError):
        store.file_size(folder / "nothing.txt")
    assert store.list_dir(folder / "a") == [folder / "a" / "b", text]
    with pytest.raises(OSError):
        store.rmdir(folder / "a")  # not empty
    # replace: over an existing file, atomically; the old name goes.
    other = folder / "other.json"
    store.write_text(other, "new")
    store.replace(other, text)
    assert store.read_text(text) == "new" and not store.lexists(other)
    # Links: exists/is_file/file_size follow them, is_symlink/unlink do not.
    link = folder / "link.json"
    store.symlink_relative(link, text)
    assert store.is_symlink(link) and store.is_file(link) and store.file_size(link) == 3
    store.unlink(link)
    assert not store.lexists(link) and store.read_text(text) == "new"
    dangling = folder / "dangling"
    store.symlink_relative(dangling, folder / "gone")
    assert store.is_symlink(dangling) and store.lexists(dangling) and not store.exists(dangling)
    store.unlink(dangling)
    store.unlink(text)
    with pytest.raises(FileNotFoundError):
        store.unlink(text)
    store.unlink(text, missing_ok=True)
    store.rmdir(folder / "a" / "b")
    store.rmdir(folder / "a")
    assert store.list_dir(folder) == [] and not store.exists(folder / "a")


def test_a_renamed_file_keeps_its_hash_cache_valid_and_a_rewrite_invalidates_it(files):
    store = files.store
    part = store.home / "scratch" / "w.part"
    files.put(part, b"weights")
    wrong = hashlib.sha256(b"other").hexdigest()  # a cached digest is used without reading the bytes
    files.remember_hash(part, wrong)
    assert store.exists(store.hash_cache_path(part)) and store.sha256_of(part) == wrong
    final = store.home / "staged" / "w.bin"
    store.mkdir(final.parent)
    store.replace(part, final)
    store.replace(store.hash_cache_path(part), store.hash_cache_path(final))
    assert store.sha256_of(final) == wrong  # a rename keeps size and mtime
    assert store.sha256_of(final, use_cache=False) == hashlib.sha256(b"weights").hexdigest()
    store.drop_hash_cache(final)
    assert not store.exists(store.hash_cache_path(final))
    assert store.sha256_of(final) == hashlib.sha256(b"weights").hexdigest()


def test_link_or_copy_shares_the_installed_bytes_without_touching_the_source(files):
    # Delta updates: an unchanged file of the installed revision is put into staging this way.
    store = files.store
    src = store.revision_dir("m-v1", REV_A) / "w.bin"
    files.put(src, b"unchanged weights")
    dst = store.staging_for("m-v1", REV_B) / "w.bin"
    files.put(dst, b"a stale partial")  # replaced, not appended to
    assert store.link_or_copy(src, dst) in ("hardlink", "reflink", "copy")
    assert files.read(dst) == b"unchanged weights" and files.read(src) == b"unchanged weights"
    other = store.revision_dir("m-v1", REV_A) / "other.bin"
    files.put(other, b"unchanged weights")
    assert store.same_file(src, dst) and not store.same_file(src, other)
    assert not store.same_file(src, store.home / "missing.bin")
    store.remove_tree(store.revision_dir("m-v1", REV_A))  # the old revision goes after the switch
    assert files.read(dst) == b"unchanged weights"


def test_a_journal_is_replaced_whole_and_read_back(files):
    store = files.store
    workspace = store.staging_dir / "import-1"
    files.put(workspace / "model" / "w.bin", b"x")
    journal = workspace / ".import.json"
    assert store.read_journal(journal) is None
    store.write_journal(journal, {"state": "moving", "source": "/home/u/DIR"})
    store.write_journal(journal, {"state": "moved", "source": "/home/u/DIR"})
    assert store.read_journal(journal) == {"state": "moved", "source": "/home/u/DIR"}
    assert not files.exists(journal.with_name(".import.json.tmp"))
    files.put(journal, b"not json")
    assert store.read_journal(journal) is None


def test_replace_installed_files_switches_only_the_listed_files(files):
    # Repair: verified staged files replace damaged ones in the installed revision; nothing else moves.
    store = files.store
    folder, manifest = staged(files, "m", REV_A, {"config.json": b"{}", "sub/w.bin": b"good", "t.json": b"t"})
    store.install("m", REV_A, folder, manifest)
    installed = store.revision_dir("m", REV_A)
    files.put(installed / "sub" / "w.bin", b"damaged")
    repair = store.staging_for("m", REV_A)
    files.put(repair / "sub" / "w.bin", b"good")
    files.put(repair / "t.json", b"t")  # the missing file comes back
    store.unlink(installed / "t.json")
    assert store.replace_installed_files("m", repair, ["sub/w.bin", "t.json"]) == store.model_path("m")
    assert files.read(store.model_path("m") / "sub" / "w.bin") == b"good"
    assert files.read(store.model_path("m") / "t.json") == b"t"
    assert files.read(store.model_path("m") / "config.json") == b"{}"
    assert not files.exists(repair / "sub" / "w.bin")  # moved, not copied
    assert store.installed_revision_dir("m") == installed.resolve()
    with pytest.raises(FileNotFoundError):
        store.replace_installed_files("not-installed", repair, [])
