"""Pause, resume and cancel of a pull that another process runs (application/downloads/stop_requests.py),
on fakes: two DownloadService objects share one in-memory model store (its lock stands in for the
flock) and one unit of work, as a `mlxm serve` and a CLI share a home. The same with real processes:
tests/e2e/test_downloads_across_processes.py."""

from __future__ import annotations

import threading

import pytest

from application.downloads import stop_requests
from application.errors import Conflict, DownloadCancelled
from domain.downloads.model import Download
from domain.enums import DownloadStatus
from tests.unit.test_downloads_service import (  # noqa: F401 - fixtures
    WEIGHTS,
    _blocked,
    _model,
    _wait_until,
    fake,
    home,
    make_service,
    uow,
)


@pytest.fixture
def pair(home, fake, uow):
    """(owner, other): the process that runs the pull, and the one the user types the command in."""
    owner, other = make_service(home, fake, uow), make_service(home, fake, uow)
    for service in (owner, other):
        service._stop_poll_seconds = 0.01
    return owner, other


def test_pause_from_another_process_stops_the_owner_and_keeps_the_partial(pair, home, fake, uow) -> None:
    owner, other = pair
    gate, started = _blocked(fake)
    download = owner.start("tiny")
    assert started.wait(5)

    paused = other.pause(download.id)  # the old code: Conflict "being downloaded by another mlxm process"
    assert paused.status is DownloadStatus.PAUSED
    assert not owner.is_active_here(download.id)  # the owner's transfer stopped
    partial = list((home / "staging").rglob("model.safetensors.part"))
    assert partial and 0 < partial[0].stat().st_size < len(WEIGHTS)
    assert _model(uow, "tiny-v1").status is DownloadStatus.PAUSED
    assert not (home / "staging" / "tiny-v1.stop").exists()  # the request was consumed

    gate.set()
    other.resume(download.id)  # continues in the process that asked, from the bytes on disk
    assert other.wait(download.id, timeout=10).status is DownloadStatus.COMPLETED
    assert fake.served["model.safetensors"] == len(WEIGHTS)


def test_cancel_from_another_process_deletes_the_partial_data(pair, home, fake, uow) -> None:
    owner, other = pair
    _, started = _blocked(fake)
    errors: list[BaseException] = []
    puller = threading.Thread(target=lambda: _catch(errors, owner.pull, "tiny"))  # `mlxm pull` waiting
    puller.start()
    assert started.wait(5)
    download = owner.list()[-1]
    cancelled = other.cancel(download.id)
    assert cancelled.status is DownloadStatus.CANCELLED
    puller.join(10)
    assert len(errors) == 1 and isinstance(errors[0], DownloadCancelled) and str(errors[0]) == "cancel"
    assert not list((home / "staging").rglob("*.part"))
    assert _model(uow, "tiny-v1") is None


def test_resume_of_a_pull_running_elsewhere_is_a_no_op(pair, fake) -> None:
    owner, other = pair
    gate, started = _blocked(fake)
    download = owner.start("tiny")
    assert started.wait(5)
    assert other.resume(download.id).status is DownloadStatus.DOWNLOADING
    assert not other.is_active_here(download.id) and owner.is_active_here(download.id)
    gate.set()
    assert owner.wait(download.id, timeout=10).status is DownloadStatus.COMPLETED


def test_a_request_for_another_download_does_not_stop_the_owner(pair, home, fake) -> None:
    owner, _ = pair
    gate, started = _blocked(fake)
    home.store.mkdir(home.store.staging_dir, parents=True, exist_ok=True)
    home.store.write_text(home.store.stop_request_path("tiny-v1"), "999 cancel\n")  # a stale request
    download = owner.start("tiny")
    assert started.wait(5)
    _wait_until(lambda: not home.store.exists(home.store.stop_request_path("tiny-v1")))  # dropped, not obeyed
    gate.set()
    assert owner.wait(download.id, timeout=10).status is DownloadStatus.COMPLETED


def test_an_owner_that_died_without_a_word_is_stopped_by_the_asker(home, fake, uow, monkeypatch) -> None:
    monkeypatch.setattr(stop_requests, "OWNER_SETTLE_SECONDS", 0.05)
    other = make_service(home, fake, uow)
    other._stop_poll_seconds = 0.01
    with uow:
        row = uow.downloads.add(Download(model_id="tiny-v1", status=DownloadStatus.PENDING))
        row.transition(DownloadStatus.STARTING)
        row.transition(DownloadStatus.DOWNLOADING)
        uow.downloads.add(row)
        uow.commit()
    holding, release = threading.Event(), threading.Event()

    def dying_owner() -> None:
        with home.store.model_lock("tiny-v1"):
            holding.set()
            release.wait(5)  # then "dies": the lock goes, the row still says downloading

    threading.Thread(target=dying_owner).start()
    assert holding.wait(5)
    result = []
    asker = threading.Thread(target=lambda: result.append(other.pause(row.id)))
    asker.start()
    _wait_until(lambda: home.store.exists(home.store.stop_request_path("tiny-v1")))
    release.set()
    asker.join(10)
    assert result and result[0].status is DownloadStatus.PAUSED


def test_an_owner_that_never_answers_is_a_conflict_after_the_wait(home, fake, uow) -> None:
    other = make_service(home, fake, uow)
    other._stop_poll_seconds, other._stop_wait_seconds = 0.01, 0.2
    with uow:
        row = uow.downloads.add(Download(model_id="tiny-v1", status=DownloadStatus.PENDING))
        uow.commit()
    with home.store.model_lock("tiny-v1"):
        with pytest.raises(Conflict, match="did not cancel download"):
            other.cancel(row.id)
    assert not home.store.exists(home.store.stop_request_path("tiny-v1"))


def _catch(errors, fn, *args) -> None:
    try:
        fn(*args)
    except BaseException as exc:  # noqa: BLE001 - collected for the test
        errors.append(exc)
