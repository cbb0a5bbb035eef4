"""SQLAlchemy repositories of the library pipelines. Write-through on the unit of work's session:
they add and delete records but never commit (the unit of work does)."""

from __future__ import annotations

from sqlalchemy import delete, select
from sqlalchemy.orm import Session, selectinload

from adapters.sqlalchemy.library_tables import (
    DependencyBindingRecord,
    DependencyProfileRecord,
    DependencyRequirementRecord,
    ModelLinkRecord,
)
from domain.library.dependency_model import DependencyBinding, DependencyProfile, Requirement
from domain.library.mapping import LinkMethod, LinkRecord


def _link_from_record(record: ModelLinkRecord) -> LinkRecord:
    return LinkRecord(
        app=record.app,
        model_id=record.model_id,
        rule_target=record.rule_target,
        folder=record.folder,
        source_path=record.source_path,
        target_path=record.target_path,
        method=LinkMethod(record.method),
        created_at=record.created_at,
        id=record.id,
        fingerprint=record.fingerprint,
    )


class SqlAlchemyLinkRepository:
    def __init__(self, session: Session) -> None:
        self._session = session

    def add(self, record: LinkRecord) -> LinkRecord:
        row = self._session.scalar(select(ModelLinkRecord).where(ModelLinkRecord.target_path == record.target_path))
        if row is None:
            row = ModelLinkRecord(target_path=record.target_path)
            self._session.add(row)
        row.app = record.app
        row.model_id = record.model_id
        row.rule_target = record.rule_target
        row.folder = record.folder
        row.source_path = record.source_path
        row.method = LinkMethod(record.method).value
        row.fingerprint = record.fingerprint
        if record.created_at is not None:
            row.created_at = record.created_at
        self._session.flush()
        return _link_from_record(row)

    def list(self, app: str | None = None, model_id: str | None = None) -> list[LinkRecord]:
        statement = select(ModelLinkRecord).order_by(ModelLinkRecord.target_path)
        if app is not None:
            statement = statement.where(ModelLinkRecord.app == app)
        if model_id is not None:
            statement = statement.where(ModelLinkRecord.model_id == model_id)
        return [_link_from_record(r) for r in self._session.scalars(statement)]

    def remove(self, target_path: str) -> None:
        self._session.execute(delete(ModelLinkRecord).where(ModelLinkRecord.target_path == target_path))


def _profile_from_record(record: DependencyProfileRecord) -> DependencyProfile:
    return DependencyProfile(
        profile_id=record.profile_id,
        version=record.version,
        environment_kind=record.environment_kind,
        requirements=tuple(
            Requirement(name=r.name, pin=r.pin, extras=tuple(r.extras or ()), markers=r.markers,
                        python_requires=r.python_requires)
            for r in record.requirements
        ),
        description=record.description or "",
    )


class SqlAlchemyDependencyProfileRepository:
    def __init__(self, session: Session) -> None:
        self._session = session

    def _select(self):
        return select(DependencyProfileRecord).options(selectinload(DependencyProfileRecord.requirements))

    def add(self, profile: DependencyProfile) -> DependencyProfile:
        row = self._session.scalar(self._select().where(
            DependencyProfileRecord.profile_id == profile.profile_id, DependencyProfileRecord.version == profile.version))
        if row is None:
            row = DependencyProfileRecord(profile_id=profile.profile_id, version=profile.version)
            self._session.add(row)
        row.environment_kind = profile.environment_kind
        row.description = profile.description
        row.requirements = [
            DependencyRequirementRecord(position=i, name=r.name, extras=list(r.extras), pin=r.pin, markers=r.markers,
                                        python_requires=r.python_requires)
            for i, r in enumerate(profile.requirements)
        ]
        self._session.flush()
        return profile

    def get(self, profile_id: str, version: int | None = None) -> DependencyProfile | None:
        statement = self._select().where(DependencyProfileRecord.profile_id == profile_id)
        if version is None:
            statement = statement.order_by(DependencyProfileRecord.version.desc()).limit(1)
        else:
            statement = statement.where(DependencyProfileRecord.version == version)
        row = self._session.scalar(statement)
        return _profile_from_record(row) if row is not None else None

    def list(self) -> list[DependencyProfile]:
        statement = self._select().order_by(DependencyProfileRecord.profile_id, DependencyProfileRecord.version)
        return [_profile_from_record(r) for r in self._session.scalars(statement)]


def _binding_from_record(record: DependencyBindingRecord) -> DependencyBinding:
    return DependencyBinding(
        binding_id=record.binding_id,
        model_id=record.model_id,
        profile_id=record.profile_id,
        profile_version=record.profile_version,
        environment_kind=record.environment_kind,
        platform_selector=record.platform_selector,
        backend_key=record.backend_key,
    )


class SqlAlchemyDependencyBindingRepository:
    def __init__(self, session: Session) -> None:
        self._session = session

    def add(self, binding: DependencyBinding) -> DependencyBinding:
        row = self._session.scalar(
            select(DependencyBindingRecord).where(DependencyBindingRecord.binding_id == binding.binding_id))
        if row is None:
            row = DependencyBindingRecord(binding_id=binding.binding_id)
            self._session.add(row)
        row.model_id = binding.model_id
        row.profile_id = binding.profile_id
        row.profile_version = binding.profile_version
        row.environment_kind = binding.environment_kind
        row.platform_selector = binding.platform_selector
        row.backend_key = binding.backend_key
        self._session.flush()
        return binding

    def get(self, binding_id: str) -> DependencyBinding | None:
        row = self._session.scalar(select(DependencyBindingRecord).where(DependencyBindingRecord.binding_id == binding_id))
        return _binding_from_record(row) if row is not None else None

    def list(self, model_id: str | None = None) -> list[DependencyBinding]:
        statement = select(DependencyBindingRecord).order_by(DependencyBindingRecord.binding_id)
        if model_id is not None:
            statement = statement.where(DependencyBindingRecord.model_id == model_id)
        return [_binding_from_record(r) for r in self._session.scalars(statement)]

    def remove(self, binding_id: str) -> None:
        self._session.execute(delete(DependencyBindingRecord).where(DependencyBindingRecord.binding_id == binding_id))
