"""The execution-profile repository (profiles context): one record class per profile type."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from adapters.sqlalchemy.profile_tables import AudioProfileRecord, InferenceProfileRecord, ProfileRecord
from adapters.sqlalchemy.tracking import _flush, _now, _Tracker
from domain.enums import ProfileType
from domain.profiles.constraints import OutputConstraint
from domain.profiles.params import AudioDefaults, InferenceContext, InferenceParams
from domain.profiles.model import ExecutionProfile, PROFILE_CLASSES


PROFILE_RECORDS: dict[ProfileType, type[ProfileRecord]] = {
    ProfileType.BASE: ProfileRecord,
    ProfileType.INFERENCE: InferenceProfileRecord,
    ProfileType.AUDIO: AudioProfileRecord,
}


def _profile_from_record(record: ProfileRecord) -> ExecutionProfile:
    profile_type = ProfileType(record.profile_type)
    inference, context, audio = InferenceParams(), InferenceContext(), AudioDefaults()
    if isinstance(record, InferenceProfileRecord):
        inference = InferenceParams(
            temperature=record.temperature, max_tokens=record.max_tokens, top_p=record.top_p, top_k=record.top_k,
            min_p=record.min_p, repetition_penalty=record.repetition_penalty, seed=record.seed,
            stop=tuple(record.stop) if record.stop is not None else None,
        )
        context = InferenceContext(
            context_length=record.context_length, system_prompt=record.system_prompt,
            enable_tool_injection=record.enable_tool_injection, enable_thinking=record.enable_thinking,
            response_format=OutputConstraint(**record.output_constraint) if record.output_constraint else None,
        )
    elif isinstance(record, AudioProfileRecord):
        audio = AudioDefaults(
            voice=record.voice, speed=record.speed, sample_rate=record.sample_rate, stt_language=record.stt_language
        )
    return PROFILE_CLASSES[profile_type](
        name=record.name, model_id=record.model_id, description=record.description,
        auto_start=bool(record.auto_start), id=record.id, created_at=record.created_at,
        updated_at=record.updated_at, inference=inference, context=context, audio=audio,
    )


class SqlAlchemyProfileRepository:
    """Profiles load as their subclass (joined-table inheritance, polymorphic on `profile_type`)."""

    def __init__(self, session: Session) -> None:
        self._session = session
        self._tracker: _Tracker[ExecutionProfile] = _Tracker()

    def _to_domain(self, record: ProfileRecord) -> ExecutionProfile:
        return self._tracker.track(record.id, _profile_from_record(record))

    def get(self, name: str) -> ExecutionProfile | None:
        record = self._session.scalars(select(ProfileRecord).where(ProfileRecord.name == name)).first()
        return self._to_domain(record) if record is not None else None

    def list(self) -> list[ExecutionProfile]:
        return [self._to_domain(r) for r in self._session.scalars(select(ProfileRecord).order_by(ProfileRecord.name))]

    def add(self, profile: ExecutionProfile) -> ExecutionProfile:
        record = self._session.get(ProfileRecord, profile.id) if profile.id is not None else None
        if record is None:
            record = self._session.scalars(select(ProfileRecord).where(ProfileRecord.name == profile.name)).first()
        wanted_cls = PROFILE_RECORDS[ProfileType(profile.profile_type)]
        created_at = profile.created_at or (record.created_at if record is not None else None) or _now()
        if record is not None and type(record) is not wanted_cls:
            # The type follows the model's type; a new type means a new subclass row, same id.
            keep_id, launchd = record.id, record.launchd_installed
            self._session.delete(record)
            _flush(self._session)
            record = wanted_cls(id=keep_id, launchd_installed=launchd)
            self._session.add(record)
        elif record is None:
            record = wanted_cls(launchd_installed=False)
            self._session.add(record)
        record.name = profile.name
        record.description = profile.description
        record.model_id = profile.model_id
        record.auto_start = profile.auto_start
        record.created_at = created_at
        record.updated_at = profile.updated_at or _now()
        if isinstance(record, InferenceProfileRecord):
            p, c = profile.inference, profile.context
            record.temperature, record.max_tokens, record.top_p, record.top_k = p.temperature, p.max_tokens, p.top_p, p.top_k
            record.min_p, record.repetition_penalty, record.seed = p.min_p, p.repetition_penalty, p.seed
            record.stop = list(p.stop) if p.stop is not None else None
            record.context_length, record.system_prompt = c.context_length, c.system_prompt
            record.enable_tool_injection = c.enable_tool_injection
            record.enable_thinking = c.enable_thinking
            record.output_constraint = c.response_format.to_dict() if c.response_format is not None else None
        elif isinstance(record, AudioProfileRecord):
            a = profile.audio
            record.voice, record.speed, record.sample_rate, record.stt_language = a.voice, a.speed, a.sample_rate, a.stt_language
        _flush(self._session)
        profile.id = record.id
        profile.created_at = record.created_at
        profile.updated_at = record.updated_at
        self._tracker.retrack(record.id, profile)
        return profile

    def remove(self, name: str) -> None:
        record = self._session.scalars(select(ProfileRecord).where(ProfileRecord.name == name)).first()
        if record is not None:
            self._tracker.forget(record.id)
            self._session.delete(record)
            _flush(self._session)

    def save_changes(self) -> None:
        for profile in self._tracker.changed():
            self.add(profile)
