"""ProfileRepository contract: profiles load as their subclass with every default."""

from __future__ import annotations

from domain.enums import ModelType, ProfileType
from domain.profiles.constraints import OutputConstraint
from domain.profiles.params import AudioDefaults, InferenceContext, InferenceParams
from domain.profiles.model import AudioProfile, ExecutionProfile, InferenceProfile, make_profile


def chat_profile() -> ExecutionProfile:
    return make_profile(
        "chat", ModelType.TEXT_GEN, model_id="qwen2.5-0.5b-4bit", description="daily chat", auto_start=True,
        inference=InferenceParams(temperature=0.0, max_tokens=512, top_p=0.9, top_k=40, min_p=0.05,
                                  repetition_penalty=1.1, seed=7, stop=("</s>", "\n\n")),
        context=InferenceContext(context_length=4096, system_prompt="Be brief.", enable_tool_injection=False,
                                 enable_thinking=False,
                                 response_format=OutputConstraint("json_schema", '{"type": "object"}')),
    )


def voice_profile() -> ExecutionProfile:
    return make_profile("voice", ModelType.AUDIO, model_id="kokoro",
                        audio=AudioDefaults(voice="af_heart", speed=1.25, sample_rate=24_000, stt_language="en"))


def embed_profile() -> ExecutionProfile:
    return make_profile("embed", ModelType.EMBEDDINGS, model_id="bge-small")


def _strip_times(profile: ExecutionProfile) -> ExecutionProfile:
    profile.created_at = profile.updated_at = None
    return profile


def test_each_type_loads_as_its_subclass_with_every_value(uow_factory):
    with uow_factory() as uow:
        for profile in (chat_profile(), voice_profile(), embed_profile()):
            uow.profiles.add(profile)
        uow.commit()
    with uow_factory() as uow:
        chat, voice, embed = uow.profiles.get("chat"), uow.profiles.get("voice"), uow.profiles.get("embed")
    assert type(chat) is InferenceProfile and chat.profile_type is ProfileType.INFERENCE
    assert type(voice) is AudioProfile and voice.profile_type is ProfileType.AUDIO
    assert type(embed) is ExecutionProfile and embed.profile_type is ProfileType.BASE
    for loaded, built in ((chat, chat_profile()), (voice, voice_profile()), (embed, embed_profile())):
        assert loaded.id is not None
        built.id = loaded.id
        assert _strip_times(loaded) == _strip_times(built)


def test_list_is_ordered_by_name_and_remove(uow_factory):
    with uow_factory() as uow:
        for profile in (voice_profile(), embed_profile(), chat_profile()):
            uow.profiles.add(profile)
        uow.commit()
    with uow_factory() as uow:
        assert [p.name for p in uow.profiles.list()] == ["chat", "embed", "voice"]
        uow.profiles.remove("embed")
        uow.profiles.remove("missing")
        uow.commit()
    with uow_factory() as uow:
        assert [p.name for p in uow.profiles.list()] == ["chat", "voice"]
        assert uow.profiles.get("embed") is None


def test_rename_keeps_the_id(uow_factory):
    with uow_factory() as uow:
        profile = uow.profiles.add(chat_profile())
        uow.commit()
        first_id = profile.id
    with uow_factory() as uow:
        profile = uow.profiles.get("chat")
        profile.name = "talk"
        uow.profiles.add(profile)
        uow.commit()
    with uow_factory() as uow:
        assert uow.profiles.get("chat") is None
        assert uow.profiles.get("talk").id == first_id
        assert [p.name for p in uow.profiles.list()] == ["talk"]


def test_a_new_type_changes_the_subclass_and_keeps_the_id(uow_factory):
    with uow_factory() as uow:
        uow.profiles.add(chat_profile())
        uow.commit()
    with uow_factory() as uow:
        old = uow.profiles.get("chat")
        new = make_profile("chat", ModelType.AUDIO, model_id="kokoro", audio=AudioDefaults(voice="bf_emma"))
        new.id = old.id
        uow.profiles.add(new)
        uow.commit()
    with uow_factory() as uow:
        loaded = uow.profiles.get("chat")
    assert type(loaded) is AudioProfile
    assert loaded.id == old.id
    assert loaded.audio == AudioDefaults(voice="bf_emma")
    assert loaded.inference == InferenceParams()


def test_changes_to_a_loaded_profile_are_saved_by_commit(uow_factory):
    with uow_factory() as uow:
        uow.profiles.add(chat_profile())
        uow.commit()
    with uow_factory() as uow:
        profile = uow.profiles.get("chat")
        profile.description = "changed"
        profile.inference = InferenceParams(temperature=1.5)
        uow.commit()
    with uow_factory() as uow:
        loaded = uow.profiles.get("chat")
    assert loaded.description == "changed"
    assert loaded.inference == InferenceParams(temperature=1.5)
