"""Per-host pool state: the fake, SQLite and PostgreSQL behave alike; PoolStatePublisher writes only on change."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from adapters.memory.repositories import FakeClock
from application.inference.pool_state import PoolStatePublisher
from domain.enums import ModelType
from application.inference.ports import HostPoolEntry

T0 = datetime(2026, 5, 1, 8, tzinfo=timezone.utc)


def entry(host: str, model_id: str, uses: int = 1) -> HostPoolEntry:
    return HostPoolEntry(host, model_id, "text-gen", 1000, T0, T0 + timedelta(minutes=uses), uses, T0)


def test_each_host_replaces_only_its_own_rows(uow_factory):
    with uow_factory() as uow:
        uow.pool_state.replace("mac-a", [entry("mac-a", "qwen"), entry("mac-a", "llama")])
        uow.pool_state.replace("mac-b", [entry("mac-b", "qwen", uses=3)])
        uow.commit()
    with uow_factory() as uow:
        assert [(e.host, e.model_id) for e in uow.pool_state.list()] == [
            ("mac-a", "llama"), ("mac-a", "qwen"), ("mac-b", "qwen")]
        assert uow.pool_state.list("mac-b") == [entry("mac-b", "qwen", uses=3)]
        uow.pool_state.replace("mac-a", [])
        uow.commit()
    with uow_factory() as uow:
        assert [e.host for e in uow.pool_state.list()] == ["mac-b"]
        uow.pool_state.replace("mac-b", [])  # not committed: dropped
    with uow_factory() as uow:
        assert len(uow.pool_state.list()) == 1


@dataclass
class _Info:
    model_id: str
    model_type: ModelType
    size_bytes: int
    loaded_at: datetime
    last_used_at: datetime
    use_count: int


class _Pool:
    def __init__(self) -> None:
        self.infos: list[_Info] = []

    def loaded(self):
        return list(self.infos)


def test_the_publisher_writes_when_the_pool_changes_and_clears_at_the_end(uow_factory):
    pool = _Pool()
    publisher = PoolStatePublisher(uow_factory, pool, FakeClock(T0), "mac-a")
    assert publisher.publish() is True  # the first publish always writes (clears rows a crash left)
    assert publisher.publish() is False
    pool.infos.append(_Info("qwen", ModelType.TEXT_GEN, 42, T0, T0, 1))
    assert publisher.publish() is True
    assert [(h, [e.model_id for e in rows]) for h, rows in publisher.hosts().items()] == [("mac-a", ["qwen"])]
    pool.infos[0] = _Info("qwen", ModelType.TEXT_GEN, 42, T0, T0 + timedelta(seconds=5), 2)  # used again
    assert publisher.publish() is True
    assert publisher.hosts()["mac-a"][0].use_count == 2
    publisher.clear()
    assert publisher.hosts() == {}
