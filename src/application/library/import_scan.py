"""Scanning an import source: what may be imported, and safetensors headers read without loading weights."""

from __future__ import annotations

import json
import struct
from dataclasses import dataclass, field
from pathlib import Path

from application.errors import InvalidRequest
from domain.library.importing import UnsafeImport, is_safe_relative_path, pickle_weight_files, weight_files
from domain.paths import is_inside


# A safetensors header beyond this is not a real checkpoint (real ones are a few MB at most).
_MAX_HEADER_BYTES = 100 * 1024 * 1024


@dataclass
class _Scan:
    root: Path  # the real folder (or the file's real path)
    is_file: bool
    files: list[str]  # relative POSIX paths, sorted
    links: dict[str, Path] = field(default_factory=dict)  # relative path -> real file, for in-folder symlinks


def _is_hidden(relative: str) -> bool:
    return any(part.startswith(".") for part in relative.split("/"))


def tensor_names_from_header(prefix: bytes, read_header, size: int, label: str) -> list[str]:
    """Tensor names from a safetensors header: 8-byte little-endian length, then that much JSON.

    `prefix` is the file's first 8 bytes, `read_header(length)` returns the next `length` bytes
    and `size` is the file's size (the `ModelStore` reads them). Raises `InvalidRequest` for a
    file that is not a well-formed safetensors file (a header that does not fit the file, or
    data offsets past its end), so corrupt weights are never imported.
    """
    if len(prefix) < 8:
        raise InvalidRequest(f"{label}: not a safetensors file (too short)")
    (length,) = struct.unpack("<Q", prefix)
    if length > _MAX_HEADER_BYTES or 8 + length > size:
        raise InvalidRequest(f"{label}: not a safetensors file (header length {length} does not fit)")
    raw = read_header(length)
    try:
        header = json.loads(raw)
    except ValueError:
        raise InvalidRequest(f"{label}: not a safetensors file (header is not JSON)") from None
    except RecursionError:  # a hostile header of 100,000 nested arrays: the decoder gives up
        raise InvalidRequest(f"{label}: not a safetensors file (header nested too deeply)") from None
    if not isinstance(header, dict):
        raise InvalidRequest(f"{label}: not a safetensors file (header is not an object)")
    data_size = size - 8 - length
    names = []
    for name, info in header.items():
        if name == "__metadata__":
            continue
        offsets = info.get("data_offsets") if isinstance(info, dict) else None
        if (not isinstance(offsets, list) or len(offsets) != 2
                or not all(isinstance(o, int) for o in offsets) or not 0 <= offsets[0] <= offsets[1] <= data_size):
            raise InvalidRequest(f"{label}: tensor {name!r} lies outside the file (truncated or corrupt)")
        names.append(name)
    return sorted(names)


class ImportScanning:
    """Steps of `ImportService` that scan the source and refuse what must not be imported. A mixin, not a collaborator: the steps share the service's layout, unit-of-work factory and scan state; the split is by size, not by state."""

    # -- scan -----------------------------------------------------------------------------
    def _scan(self, source: Path, *, allow_pickle: bool) -> _Scan:
        if not self._layout.lexists(source):
            raise InvalidRequest(f"{source}: no such file or folder")
        real = self._layout.realpath(source)
        if self._layout.is_file(real):
            name = real.name
            if not weight_files([name]):
                raise InvalidRequest(f"{source} is not a weights file (.safetensors) nor a model folder")
            scan = _Scan(root=real, is_file=True, files=[name])
        elif self._layout.is_dir(real):
            scan = self._scan_folder(real)
        else:
            raise InvalidRequest(f"{source} is neither a file nor a folder")
        pickled = pickle_weight_files(scan.files)
        if pickled and not allow_pickle:
            raise UnsafeImport(
                "refusing pickle-based weights (they can run code when loaded); pass --allow-pickle to import anyway",
                pickled,
            )
        if not weight_files(scan.files):
            raise InvalidRequest(f"{source} holds no weights (.safetensors)")
        return scan

    def _scan_folder(self, root: Path) -> _Scan:
        files: list[str] = []
        links: dict[str, Path] = {}
        escapes: list[str] = []
        for folder, dirs, names in self._layout.walk(root):
            here = Path(folder)
            kept = []
            for name in sorted(dirs):
                path = here / name
                relative = path.relative_to(root).as_posix()
                if name.startswith("."):
                    continue
                if self._layout.is_symlink(path):
                    if not is_inside(self._layout.realpath(path), root):
                        escapes.append(relative)
                    # A link to a folder inside: its files are imported from where they really are.
                    continue
                kept.append(name)
            dirs[:] = kept
            for name in sorted(names):
                path = here / name
                relative = path.relative_to(root).as_posix()
                if _is_hidden(relative):
                    continue
                if self._layout.is_symlink(path):
                    target = self._layout.realpath(path)
                    if not is_inside(target, root):
                        escapes.append(relative)
                        continue
                    if not self._layout.is_file(target):
                        escapes.append(relative)  # dangling or a special file
                        continue
                    links[relative] = target
                elif not self._layout.is_file(path):
                    continue  # sockets, fifos...
                files.append(relative)
        if escapes:
            raise UnsafeImport(
                "refusing paths that escape the model folder through symlinks (e.g. a Hugging Face cache "
                "snapshot: copy it with `cp -RL` first)", sorted(escapes))
        if not files:
            raise InvalidRequest(f"{root} is empty")
        self._check_index_files(root, files)
        return _Scan(root=root, is_file=False, files=sorted(files), links=links)

    def _check_index_files(self, root: Path, files: list[str]) -> None:
        """A sharded checkpoint's index must only name shards inside the folder, and all of them."""
        present = set(files)
        for relative in files:
            if not relative.endswith(".index.json"):
                continue
            try:
                data = json.loads(self._layout.read_text(root / relative))
            except (OSError, ValueError):
                raise InvalidRequest(f"{relative}: unreadable index file") from None
            weight_map = data.get("weight_map") if isinstance(data, dict) else None
            if not isinstance(weight_map, dict):
                continue
            base = relative.rsplit("/", 1)[0] + "/" if "/" in relative else ""
            shards = {str(v) for v in weight_map.values()}
            unsafe = sorted(s for s in shards if not is_safe_relative_path(s))
            if unsafe:
                raise UnsafeImport(f"{relative} points outside the model folder", unsafe)
            missing = sorted(s for s in shards if base + s not in present)
            if missing:
                raise InvalidRequest(f"{relative} names shards that are missing: {', '.join(missing)}")
