"""ModelRepository contract: the in-memory fake and SqlAlchemyModelRepository behave alike."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from application.library.ports import ModelQuery
from domain.library.capabilities import (
    AudioCapabilities,
    EmbeddingCapabilities,
    TextGenCapabilities,
    VisionCapabilities,
)
from domain.enums import DownloadStatus, ModelType
from domain.library.models import Model, ModelFile

T0 = datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone.utc)


def qwen() -> Model:
    return Model(
        "qwen2.5-0.5b-4bit",
        repo_id="mlx-community/Qwen2.5-0.5B-Instruct-4bit",
        canonical_id="qwen2.5-0.5b-4bit",
        model_type=ModelType.TEXT_GEN,
        family="qwen2",
        local_path="/models/qwen",
        size_bytes=278_000_000,
        revision="abc123",
        source="huggingface_repo",
        aliases=["qwen-small", "Q05"],
        tags=["chat", "small"],
        description="A small chat model",
        downloaded_at=T0,
        capabilities=TextGenCapabilities(probed_at=T0, probe_version=2, model_family="qwen2",
                                         supports_native_tools=True, supports_thinking=False, tool_format="hermes",
                                         practical_max_tokens=8192, tool_parser_id="hermes"),
        files=[ModelFile("config.json", 700, "a" * 64, "abc123", "hf"),
               ModelFile("model.safetensors", 278_000_000, "b" * 64, "abc123", "hf")],
        review_reasons=["license not recorded"],
        display_name="Qwen 2.5 0.5B",  # the user's name (mlxm edit --display-name)
    )


def library() -> list[Model]:
    return [
        qwen(),
        Model("llava-7b", model_type=ModelType.VISION, family="llava", local_path="/m/llava",
              capabilities=VisionCapabilities(probed_at=T0, supports_native_tools=False, supports_multi_image=True)),
        Model("whisper-tiny", model_type=ModelType.AUDIO, family="whisper", local_path="/m/w", tags=["speech"],
              capabilities=AudioCapabilities(probed_at=T0, supports_stt=True, supports_tts=False)),
        Model("bge-small", model_type=ModelType.EMBEDDINGS, local_path="/m/bge",
              capabilities=EmbeddingCapabilities(probed_at=T0, embedding_dimensions=384, is_normalized=True)),
        Model("hermes-3b", model_type=ModelType.TEXT_GEN, family="llama", status=DownloadStatus.DOWNLOADING,
              capabilities=TextGenCapabilities(probed_at=T0, supports_native_tools=True, supports_thinking=True)),
        Model("tinyllama", model_type=ModelType.TEXT_GEN, family="llama", local_path="/m/t"),  # never probed
    ]


def seed(uow_factory, models=None) -> None:
    with uow_factory() as uow:
        for model in models if models is not None else library():
            uow.models.add(model)
        uow.commit()


def test_a_model_round_trips_with_every_value(uow_factory):
    seed(uow_factory, [qwen()])
    with uow_factory() as uow:
        loaded = uow.models.get("qwen2.5-0.5b-4bit")
    expected = qwen()
    expected.id = loaded.id
    assert loaded == expected
    assert loaded.id is not None
    assert loaded.is_installed


def test_get_unknown_is_none_and_remove_unknown_is_quiet(uow_factory):
    with uow_factory() as uow:
        assert uow.models.get("nope") is None
        uow.models.remove("nope")
        assert uow.models.list() == []


@pytest.mark.parametrize("name", ["qwen2.5-0.5b-4bit", "QWEN2.5-0.5B-4BIT", "mlx-community/qwen2.5-0.5b-instruct-4bit",
                                  "qwen-small", "q05", "Qwen-Small"])
def test_find_by_any_name_in_any_case(uow_factory, name):
    seed(uow_factory)
    with uow_factory() as uow:
        found = uow.models.find(name)
    assert found is not None and found.model_id == "qwen2.5-0.5b-4bit"


def test_find_unknown_is_none(uow_factory):
    seed(uow_factory)
    with uow_factory() as uow:
        assert uow.models.find("qwen") is None  # a prefix is not a name


def test_list_is_ordered_by_model_id(uow_factory):
    seed(uow_factory)
    with uow_factory() as uow:
        names = [m.model_id for m in uow.models.list()]
    assert names == sorted(m.model_id for m in library())


def test_add_again_updates_in_place(uow_factory):
    seed(uow_factory, [qwen()])
    with uow_factory() as uow:
        model = uow.models.get("qwen2.5-0.5b-4bit")
        first_id = model.id
        model.aliases = ["q05", "tiny-qwen"]  # one alias kept, one dropped, one new
        model.tags = []
        model.files = [ModelFile("model.safetensors", 1, None)]
        model.capabilities = None
        uow.models.add(model)
        uow.commit()
    with uow_factory() as uow:
        loaded = uow.models.get("qwen2.5-0.5b-4bit")
        assert loaded.id == first_id
        assert loaded.aliases == ["q05", "tiny-qwen"]
        assert loaded.tags == []
        assert loaded.files == [ModelFile("model.safetensors", 1, None)]
        assert loaded.capabilities is None
        assert uow.models.find("qwen-small") is None
        assert uow.models.find("tiny-qwen").model_id == "qwen2.5-0.5b-4bit"
        assert len(uow.models.list()) == 1


def test_a_type_change_replaces_the_capabilities_subclass(uow_factory):
    seed(uow_factory, [qwen()])
    with uow_factory() as uow:
        model = uow.models.get("qwen2.5-0.5b-4bit")
        model.model_type = ModelType.AUDIO
        model.capabilities = AudioCapabilities(probed_at=T0, supports_tts=True)
        uow.commit()
    with uow_factory() as uow:
        loaded = uow.models.get("qwen2.5-0.5b-4bit")
    assert loaded.capabilities == AudioCapabilities(probed_at=T0, supports_tts=True)
    assert loaded.model_type is ModelType.AUDIO


def test_remove(uow_factory):
    seed(uow_factory)
    with uow_factory() as uow:
        uow.models.remove("whisper-tiny")
        uow.commit()
    with uow_factory() as uow:
        assert uow.models.get("whisper-tiny") is None
        assert uow.models.search(ModelQuery(text="whisper")).total == 0
        assert len(uow.models.list()) == len(library()) - 1


def test_text_gen_models_with_native_tools(uow_factory):
    seed(uow_factory)
    with uow_factory() as uow:
        names = [m.model_id for m in uow.models.with_capability("tools", ModelType.TEXT_GEN)]
        any_type = [m.model_id for m in uow.models.with_capability("tools")]
        stt = [m.model_id for m in uow.models.with_capability("stt")]
        unknown = uow.models.with_capability("teleportation")
    assert names == ["hermes-3b", "qwen2.5-0.5b-4bit"]
    assert any_type == ["hermes-3b", "qwen2.5-0.5b-4bit"]  # llava says False
    assert stt == ["whisper-tiny"]
    assert unknown == []


# ----------------------------------------------------------------------------- search


def _ids(page) -> list[str]:
    return [m.model_id for m in page.items]


def test_search_prefix_matches_words(uow_factory):
    seed(uow_factory)
    with uow_factory() as uow:
        assert _ids(uow.models.search(ModelQuery(text="qwe"))) == ["qwen2.5-0.5b-4bit"]
        assert _ids(uow.models.search(ModelQuery(text="QWEN"))) == ["qwen2.5-0.5b-4bit"]
        assert _ids(uow.models.search(ModelQuery(text="whis"))) == ["whisper-tiny"]


def test_search_terms_match_word_starts_never_the_middle_of_a_word(uow_factory):
    seed(uow_factory)
    with uow_factory() as uow:
        assert _ids(uow.models.search(ModelQuery(text="wen"))) == []      # qwen2.5-0.5b-4bit
        assert _ids(uow.models.search(ModelQuery(text="isper"))) == []    # whisper-tiny
        assert uow.models.search(ModelQuery(text="ermes")).total == 0     # hermes-3b
        assert _ids(uow.models.search(ModelQuery(text="herm"))) == ["hermes-3b"]


def test_search_folds_case_and_diacritics_on_both_sides(uow_factory):
    seed(uow_factory, [Model("cafe-model", description="Un modèle très rapide"), Model("plain", description="x")])
    with uow_factory() as uow:
        assert _ids(uow.models.search(ModelQuery(text="MODELE"))) == ["cafe-model"]
        assert _ids(uow.models.search(ModelQuery(text="très rap"))) == ["cafe-model"]
        assert _ids(uow.models.search(ModelQuery(text="modèl"))) == ["cafe-model"]


@pytest.mark.parametrize(
    "text, expected",
    [
        ("llama", ["hermes-3b", "tinyllama"]),            # family (a prefix never matches mid-word)
        ("llama herm", ["hermes-3b"]),                    # several terms: all must match
        ("chat small", ["qwen2.5-0.5b-4bit"]),             # tags
        ("mlx-community", ["qwen2.5-0.5b-4bit"]),          # repo id
        ("speech", ["whisper-tiny"]),                      # tag
        ("embeddings", ["bge-small"]),                     # type
        ("qwen-sm", ["qwen2.5-0.5b-4bit"]),                # alias, dashes split terms
        ("a small chat", ["qwen2.5-0.5b-4bit"]),           # description
        ("zzz", []),
    ],
)
def test_search_fields_and_terms(uow_factory, text, expected):
    seed(uow_factory)
    with uow_factory() as uow:
        assert _ids(uow.models.search(ModelQuery(text=text))) == expected


@pytest.mark.parametrize(
    "hostile",
    ['"', '"qwen', 'qwen"', "qwen*", "*", "-", "--qwen", "qwen:chat", "model_id:qwen", "NEAR(qwen chat)",
     "qwen AND", "OR", "NOT qwen", "(", ")", "^qwen", "'; DROP TABLE models; --", "q\u00e9", "\u0000", "   ",
     "qwe\"n", "{qwen}", "qwen + chat", "%", "_", "\\"],
)
def test_search_never_raises_on_user_input(uow_factory, hostile):
    seed(uow_factory)
    with uow_factory() as uow:
        page = uow.models.search(ModelQuery(text=hostile))
        assert page.total == len(page.items)
        assert len(uow.models.list()) == len(library())  # and nothing was harmed


def test_search_special_characters_still_find_words(uow_factory):
    seed(uow_factory)
    with uow_factory() as uow:
        assert _ids(uow.models.search(ModelQuery(text='"qwe'))) == ["qwen2.5-0.5b-4bit"]
        assert _ids(uow.models.search(ModelQuery(text="qwen*"))) == ["qwen2.5-0.5b-4bit"]
        assert _ids(uow.models.search(ModelQuery(text="hermes:llama"))) == ["hermes-3b"]


def test_search_filters_by_type_status_and_capability(uow_factory):
    seed(uow_factory)
    with uow_factory() as uow:
        assert _ids(uow.models.search(ModelQuery(model_type=ModelType.TEXT_GEN))) == [
            "qwen2.5-0.5b-4bit", "hermes-3b", "tinyllama"]  # in the order added
        assert _ids(uow.models.search(ModelQuery(status=DownloadStatus.DOWNLOADING))) == ["hermes-3b"]
        assert _ids(uow.models.search(ModelQuery(capability="thinking"))) == ["hermes-3b"]
        assert _ids(uow.models.search(ModelQuery(capability="multi_image"))) == ["llava-7b"]
        assert _ids(uow.models.search(ModelQuery(text="llama", capability="tools"))) == ["hermes-3b"]
        assert _ids(uow.models.search(ModelQuery(text="llama", status=DownloadStatus.COMPLETED))) == ["tinyllama"]


def test_filters_apply_before_the_page_is_cut(uow_factory):
    models = [Model(f"m{i:03d}", model_type=ModelType.TEXT_GEN if i % 3 else ModelType.AUDIO, family="fam",
                    capabilities=TextGenCapabilities(supports_native_tools=i % 2 == 0) if i % 3 else None)
              for i in range(60)]
    seed(uow_factory, models)
    expected = [m.model_id for m in models if m.model_type is ModelType.TEXT_GEN and int(m.model_id[1:]) % 2 == 0]
    with uow_factory() as uow:
        first = uow.models.search(ModelQuery(text="fam", capability="tools", limit=7, offset=0))
        second = uow.models.search(ModelQuery(text="fam", capability="tools", limit=7, offset=7))
        last = uow.models.search(ModelQuery(text="fam", capability="tools", limit=7, offset=14))
        beyond = uow.models.search(ModelQuery(text="fam", capability="tools", limit=7, offset=100))
    assert first.total == second.total == last.total == beyond.total == len(expected) == 20
    assert _ids(first) == expected[:7]
    assert _ids(second) == expected[7:14]
    assert _ids(last) == expected[14:] and len(last.items) == 6
    assert _ids(beyond) == []


def test_filters_without_text_page_and_count_every_match(uow_factory):
    models = [Model(f"m{i:03d}", model_type=ModelType.TEXT_GEN if i % 3 else ModelType.AUDIO, family="fam",
                    status=DownloadStatus.PAUSED if i % 5 == 0 else DownloadStatus.COMPLETED,
                    capabilities=TextGenCapabilities(supports_native_tools=i % 2 == 0) if i % 3 else None)
              for i in range(60)]
    seed(uow_factory, models)
    expected = [m.model_id for m in models if m.model_type is ModelType.TEXT_GEN and int(m.model_id[1:]) % 2 == 0
                and m.status is DownloadStatus.COMPLETED]
    with uow_factory() as uow:
        query = dict(model_type=ModelType.TEXT_GEN, capability="tools", status=DownloadStatus.COMPLETED, limit=5)
        pages = [uow.models.search(ModelQuery(**query, offset=offset)) for offset in (0, 5, 10, 15, 100)]
        assert {page.total for page in pages} == {len(expected)} and len(expected) == 16
        assert [m for page in pages for m in _ids(page)] == expected
        assert uow.models.search(ModelQuery(capability="Tools")).total == 0  # unknown spelling matches nothing
        # A change is seen by filter-only pages once committed (index row rewritten in the same transaction).
        changed = uow.models.get(expected[0])
        changed.status = DownloadStatus.PAUSED
        uow.commit()
    with uow_factory() as uow:
        assert _ids(uow.models.search(ModelQuery(**query, offset=0))) == expected[1:6]
        assert uow.models.search(ModelQuery(status=DownloadStatus.PAUSED)).total == 13


def test_in_progress_downloads_appear_in_the_library(uow_factory):
    seed(uow_factory)
    with uow_factory() as uow:
        page = uow.models.search(ModelQuery(text="hermes"))
    assert page.items[0].status is DownloadStatus.DOWNLOADING
    assert not page.items[0].is_installed


def test_search_pages_come_in_the_order_models_were_added(uow_factory):
    names = ["zeta-llama", "alpha-llama", "mid-llama", "beta-llama"]
    seed(uow_factory, [Model(name, family="llama") for name in names])
    with uow_factory() as uow:
        everything = uow.models.search(ModelQuery())
        by_text = uow.models.search(ModelQuery(text="llama", limit=2, offset=1))
    assert _ids(everything) == names and everything.total == 4
    assert _ids(by_text) == names[1:3] and by_text.total == 4


def test_filtered_text_search_follows_changes_to_capabilities_type_and_status(uow_factory):
    seed(uow_factory)
    with uow_factory() as uow:
        assert _ids(uow.models.search(ModelQuery(text="llama", capability="tools"))) == ["hermes-3b"]
        tiny = uow.models.get("tinyllama")
        tiny.capabilities = TextGenCapabilities(probed_at=T0, supports_native_tools=True)
        hermes = uow.models.get("hermes-3b")
        hermes.capabilities.supports_native_tools = False
        hermes.status = DownloadStatus.COMPLETED
        uow.commit()
    with uow_factory() as uow:
        assert _ids(uow.models.search(ModelQuery(text="llama", capability="tools"))) == ["tinyllama"]
        assert _ids(uow.models.search(ModelQuery(text="llama", status=DownloadStatus.COMPLETED))) == [
            "hermes-3b", "tinyllama"]
        assert _ids(uow.models.search(ModelQuery(text="llama", status=DownloadStatus.DOWNLOADING))) == []
        tiny = uow.models.get("tinyllama")
        tiny.model_type = ModelType.AUDIO
        tiny.capabilities = AudioCapabilities(supports_tts=True)
        uow.commit()
    with uow_factory() as uow:
        assert _ids(uow.models.search(ModelQuery(text="llama", model_type=ModelType.AUDIO, capability="tts"))) == [
            "tinyllama"]
        assert _ids(uow.models.search(ModelQuery(text="llama", capability="tools"))) == []
        assert _ids(uow.models.search(ModelQuery(text="llama", capability="teleportation"))) == []


def test_a_search_term_longer_than_postgresql_takes_still_finds_its_word(uow_factory):
    # PostgreSQL refuses a tsquery word over 2046 bytes: such a search was a 500 there.
    word = "\u0436" * 1500  # 3000 bytes in UTF-8 (a letter that case and diacritic folding keep)
    seed(uow_factory)
    with uow_factory() as uow:
        model = uow.models.get("hermes-3b")
        model.description = f"a {word} model"
        uow.models.add(model)
        uow.commit()
    with uow_factory() as uow:
        assert _ids(uow.models.search(ModelQuery(text=word))) == ["hermes-3b"]
        assert _ids(uow.models.search(ModelQuery(text="x" * 5000))) == []
