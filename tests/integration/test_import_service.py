"""The filesystem adapter's safetensors header reader (the ImportService use-case tests run on the
in-memory store: tests/unit/test_import_service.py)."""

from __future__ import annotations

import pytest

from adapters.filesystem.file_tree import read_safetensors_tensor_names
from application.errors import InvalidRequest
from tests.support.model_folders import write_safetensors


def test_safetensors_header_reader_lists_tensor_names(tmp_path):
    path = write_safetensors(tmp_path / "w.safetensors", ("b.weight", "a.weight"))
    assert read_safetensors_tensor_names(path) == ["a.weight", "b.weight"]
    (tmp_path / "not.safetensors").write_bytes(b"\xff" * 16)
    with pytest.raises(InvalidRequest, match="does not fit"):
        read_safetensors_tensor_names(tmp_path / "not.safetensors")
