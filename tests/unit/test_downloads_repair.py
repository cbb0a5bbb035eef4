"""Repair of a damaged install (application/downloads/repair.py) on fakes: in-memory unit of work and
model store, the fake downloader. The CLI/HTTP paths with real files and the real HF client are in
tests/integration/test_repair_cli.py."""

from __future__ import annotations

import pytest

from application.downloads.updates import UpdateService
from application.errors import InvalidRequest
from domain.errors import NoSourceAvailable
from domain.enums import DownloadStatus
from domain.library.models import Model
from tests.support.fake_downloader import FakeDownloader
from tests.unit.test_downloads_service import CONFIG, WEIGHTS, _model, fake, home, make_service, uow  # noqa: F401 - fixtures

TOKENIZER = b'{"version": "1.0", "model": {}}' * 4


@pytest.fixture
def installed(home, fake, uow):
    fake.add_repo("org/tiny", {"config.json": CONFIG, "model.safetensors": WEIGHTS, "tokenizer.json": TOKENIZER})
    service = make_service(home, fake, uow)
    service.pull("tiny")
    fake.served.clear()
    return service


def _damage(home, path: str, data: bytes) -> None:
    (home / "models" / "tiny-v1" / path).write_bytes(data)


def test_a_damaged_file_is_fetched_again_and_only_it(installed, home, fake, uow) -> None:
    _damage(home, "model.safetensors", b"\0" * len(WEIGHTS))
    verify = UpdateService(installed, fake).verify("tiny")
    assert not verify[0].ok and verify[0].repair == "mlxm verify --repair tiny-v1" and verify[0].repairable

    result = installed.repair("tiny")
    assert fake.served == {"model.safetensors": len(WEIGHTS)}  # config.json and tokenizer.json stayed
    assert (home / "models" / "tiny-v1" / "model.safetensors").read_bytes() == WEIGHTS
    assert result.notes[-1] == "repaired 1 file(s): model.safetensors" and result.bytes_fetched == len(WEIGHTS)
    assert result.download.status is DownloadStatus.COMPLETED and result.download.files == ["model.safetensors"]
    assert UpdateService(installed, fake).verify("tiny")[0].ok
    assert not list((home / "staging").rglob("*.part"))


def test_a_missing_file_comes_back(installed, home, fake) -> None:
    (home / "models" / "tiny-v1" / "tokenizer.json").unlink()
    installed.repair("tiny-v1")
    assert fake.served == {"tokenizer.json": len(TOKENIZER)}
    assert (home / "models" / "tiny-v1" / "tokenizer.json").read_bytes() == TOKENIZER


def test_a_corrupt_download_never_replaces_the_installed_file(installed, home, fake, uow) -> None:
    damaged = b"\1" * len(WEIGHTS)
    _damage(home, "model.safetensors", damaged)
    fake.corrupt_paths.add("model.safetensors")  # every source serves wrong bytes
    with pytest.raises(NoSourceAvailable, match="expected sha256"):
        installed.repair("tiny")
    # Nothing was switched in: the file is the damaged one still (not deleted, not half-replaced),
    # the other files are untouched, the model is still installed, and no bad bytes are kept.
    assert (home / "models" / "tiny-v1" / "model.safetensors").read_bytes() == damaged
    assert (home / "models" / "tiny-v1" / "config.json").read_bytes() == CONFIG
    assert _model(uow, "tiny-v1").status is DownloadStatus.COMPLETED
    assert not list((home / "staging").rglob("*.part"))
    fake.corrupt_paths.clear()
    installed.repair("tiny")
    assert (home / "models" / "tiny-v1" / "model.safetensors").read_bytes() == WEIGHTS


def test_nothing_to_repair_fetches_nothing(installed, fake) -> None:
    result = installed.repair("tiny")
    assert result.already_installed and result.notes == ["nothing to repair: every file verified"]
    assert fake.served == {}


def test_an_imported_model_is_not_repaired_from_anywhere(home, fake, uow) -> None:
    folder = home / "user" / "mine"
    folder.mkdir(parents=True)
    (folder / "config.json").write_bytes(CONFIG)
    with uow:
        uow.models.add(Model(model_id="mine", local_path=str(folder), status=DownloadStatus.COMPLETED, managed=False))
        uow.commit()
    service = make_service(home, FakeDownloader(), uow)
    with pytest.raises(InvalidRequest, match="imported, not pulled.*re-import mine"):
        service.repair("mine")
    assert (folder / "config.json").read_bytes() == CONFIG
