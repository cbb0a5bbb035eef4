"""How the container builds the audit sink: from its configuration, never by opening a unit of work."""

from __future__ import annotations

from dependency_injector import providers

from adapters.threads.audit_writer import ThreadedAuditWriter
from application.audit.service import ImmediateAuditSink
from entrypoints.composition.container import Container
from entrypoints.composition.settings import ManagerSettings, Settings
from tests.support.frontends import fake_container


def test_the_audit_sink_is_built_without_opening_a_unit_of_work(tmp_path):
    container = Container()
    container.settings.override(providers.Object(Settings(manager=ManagerSettings(home=tmp_path))))
    opened = []
    container.uow_factory.override(providers.Callable(lambda: opened.append("uow")))
    sink = container.audit_sink()
    try:
        assert isinstance(sink, ThreadedAuditWriter)
        assert opened == []  # wiring does not start a transaction to find out what kind of store it has
    finally:
        sink.close()


def test_a_test_container_with_the_in_memory_store_overrides_the_sink(tmp_path):
    container, uow = fake_container(tmp_path)
    assert isinstance(container.audit_sink(), ImmediateAuditSink)
