import pytest

from adapters.catalog.embedded import EmbeddedCatalogProvider
from domain.catalog.model import (
    Catalog,
    CatalogModel,
    ChainExhausted,
    ModelSource,
    failover_plan,
    normalise_selection,
    run_failover,
    validate_canonical_id,
)
from domain.enums import ModelType, SourceKind
from domain.errors import InvalidCanonicalId, InvalidCatalog, UnknownModel

HF = SourceKind.HUGGINGFACE_REPO
MIRROR = SourceKind.HTTP_MIRROR


def model(id_, aliases=(), sources=None, size=None, supersedes=()):
    return CatalogModel(
        id=id_,
        display_name=id_,
        model_type=ModelType.TEXT_GEN,
        family="test",
        aliases=tuple(aliases),
        sources=tuple(sources or (ModelSource(HF, f"org/{id_}"),)),
        size_bytes=size,
        supersedes=tuple(supersedes),
    )


def small_catalog():
    return Catalog(
        [
            model("alpha-1b-v1", aliases=["alpha", "Alpha-Legacy"], size=1000),
            model("beta-7b-v2", aliases=["beta"], size=7000),
            model("gamma-3b-v1", size=3000),
        ],
        default_model_id="beta-7b-v2",
    )


@pytest.mark.parametrize("value", ["qwen3-4b-instruct-2507-4bit-v1", "a-v1", "llama-3.2-1b-v12"])
def test_canonical_ids_accept_versioned_lower_case(value):
    assert validate_canonical_id(value) == value


@pytest.mark.parametrize("value", ["Qwen3-4b-v1", "qwen3-4b", "-x-v1", "qwen3 4b-v1", "qwen3/4b-v1", "", "x-v"])
def test_canonical_ids_reject_unversioned_or_malformed(value):
    with pytest.raises(InvalidCanonicalId):
        validate_canonical_id(value)


def test_catalog_model_rejects_bad_canonical_id():
    with pytest.raises(InvalidCanonicalId):
        model("NotVersioned")


def test_duplicate_canonical_ids_are_rejected_by_name():
    with pytest.raises(InvalidCatalog) as err:
        Catalog([model("a-v1"), model("a-v1")], default_model_id="a-v1")
    assert err.value.offending == ("a-v1",)


def test_alias_colliding_with_another_models_canonical_id():
    with pytest.raises(InvalidCatalog) as err:
        Catalog([model("a-v1"), model("b-v1", aliases=["a-v1"])], default_model_id="a-v1")
    assert "a-v1" in err.value.offending
    assert "collide" in str(err.value)


def test_alias_colliding_with_another_alias_case_insensitively():
    with pytest.raises(InvalidCatalog) as err:
        Catalog([model("a-v1", aliases=["shared"]), model("b-v1", aliases=["SHARED"])], default_model_id="a-v1")
    assert err.value.offending == ("SHARED",)


def test_alias_equal_to_own_id_is_rejected():
    with pytest.raises(InvalidCatalog) as err:
        Catalog([model("a-v1", aliases=["a-v1"])], default_model_id="a-v1")
    assert err.value.offending == ("a-v1",)


def test_model_without_enabled_source_is_rejected():
    disabled = ModelSource(HF, "org/x", enabled=False)
    with pytest.raises(InvalidCatalog) as err:
        Catalog([model("a-v1"), model("b-v1", sources=[disabled])], default_model_id="a-v1")
    assert err.value.offending == ("b-v1",)


def test_model_with_no_sources_at_all_is_rejected():
    with pytest.raises(InvalidCatalog):
        Catalog([CatalogModel("a-v1", "a", ModelType.TEXT_GEN, "f", sources=())], default_model_id="a-v1")


def test_missing_default_model_is_rejected():
    with pytest.raises(InvalidCatalog) as err:
        Catalog([model("a-v1")], default_model_id="zzz-v1")
    assert err.value.offending == ("zzz-v1",)


def test_superseded_id_must_exist():
    with pytest.raises(InvalidCatalog):
        Catalog([model("a-v2", supersedes=["a-v1"])], default_model_id="a-v2")


def test_resolve_by_id_alias_case_insensitive_and_repo_id():
    catalog = small_catalog()
    assert catalog.resolve("alpha-1b-v1").id == "alpha-1b-v1"
    assert catalog.resolve("ALPHA").id == "alpha-1b-v1"
    assert catalog.resolve("alpha-legacy").id == "alpha-1b-v1"
    assert catalog.resolve("org/beta-7b-v2").id == "beta-7b-v2"
    assert catalog.resolve("ORG/Beta-7B-v2@main").id == "beta-7b-v2"


def test_unknown_name_lists_closest_matches():
    catalog = small_catalog()
    with pytest.raises(UnknownModel) as err:
        catalog.resolve("alpah")
    assert "alpha" in err.value.suggestions
    assert "did you mean" in str(err.value)


def test_unknown_name_with_nothing_close_has_no_suggestions():
    with pytest.raises(UnknownModel) as err:
        small_catalog().resolve("zzzzzzzzzzzz")
    assert err.value.suggestions == ()


def test_failover_plan_orders_by_priority_with_stable_ties_and_skips_disabled():
    sources = [
        ModelSource(MIRROR, "m1", priority=20),
        ModelSource(HF, "h1", priority=10),
        ModelSource(HF, "h2", priority=20),
        ModelSource(HF, "off", priority=1, enabled=False),
    ]
    assert [s.value for s in failover_plan(sources)] == ["h1", "m1", "h2"]


def test_chain_stops_at_source_that_disallows_fallback():
    tried = []
    sources = [
        ModelSource(HF, "first", priority=1, allow_fallback=False),
        ModelSource(HF, "second", priority=2),
    ]

    def attempt(source):
        tried.append(source.value)
        raise RuntimeError("boom")

    with pytest.raises(ChainExhausted) as err:
        run_failover(sources, attempt)
    assert tried == ["first"]
    assert [s.value for s, _ in err.value.failures] == ["first"]


def test_chain_falls_through_to_next_source_and_reports_earlier_failures():
    sources = [ModelSource(MIRROR, "mirror", priority=1), ModelSource(HF, "hub", priority=2)]

    def attempt(source):
        if source.value == "mirror":
            raise RuntimeError("not configured")
        return source.value

    result, failures = run_failover(sources, attempt)
    assert result == "hub"
    assert [(s.value, str(e)) for s, e in failures] == [("mirror", "not configured")]


def test_chain_stops_on_fatal_error_even_when_fallback_allowed():
    tried = []

    def attempt(source):
        tried.append(source.value)
        raise ValueError("fatal")

    with pytest.raises(ChainExhausted):
        run_failover([ModelSource(HF, "a", 1), ModelSource(HF, "b", 2)], attempt, is_fatal=lambda e: True)
    assert tried == ["a"]


def test_every_failure_is_listed_when_all_sources_fail():
    def attempt(source):
        raise RuntimeError(f"{source.value} down")

    with pytest.raises(ChainExhausted) as err:
        run_failover([ModelSource(HF, "a", 1), ModelSource(HF, "b", 2)], attempt)
    assert "a down" in str(err.value) and "b down" in str(err.value)


class TestSelectionNormalisation:
    def test_canonical_selection_is_unchanged(self):
        result = normalise_selection(small_catalog(), "gamma-3b-v1", installed=[])
        assert (result.model_id, result.changed) == ("gamma-3b-v1", False)

    def test_legacy_alias_becomes_canonical(self):
        result = normalise_selection(small_catalog(), "Alpha-Legacy", installed=[])
        assert (result.model_id, result.changed) == ("alpha-1b-v1", True)

    def test_unknown_selection_becomes_installed_default_first(self):
        result = normalise_selection(small_catalog(), "gone-v9", installed=["gamma-3b-v1", "beta-7b-v2"])
        assert (result.model_id, result.changed) == ("beta-7b-v2", True)

    def test_unknown_selection_becomes_smallest_installed_without_default(self):
        result = normalise_selection(small_catalog(), "gone-v9", installed=["gamma-3b-v1", "alpha-1b-v1"])
        assert (result.model_id, result.changed) == ("alpha-1b-v1", True)

    def test_empty_selection_without_installed_models_becomes_catalog_default(self):
        for empty in (None, ""):
            result = normalise_selection(small_catalog(), empty, installed=[])
            assert (result.model_id, result.changed) == ("beta-7b-v2", True)

    def test_installed_models_outside_the_catalog_are_ignored(self):
        result = normalise_selection(small_catalog(), None, installed=["my-local-model"])
        assert result.model_id == "beta-7b-v2"

    def test_measured_sizes_override_catalog_sizes(self):
        result = normalise_selection(
            small_catalog(), None, installed=["gamma-3b-v1", "alpha-1b-v1"], sizes={"gamma-3b-v1": 10}
        )
        assert result.model_id == "gamma-3b-v1"


class TestShippedCatalog:
    def test_invariants_hold_and_types_are_covered(self):
        catalog = EmbeddedCatalogProvider().load_catalog()
        types = {m.model_type for m in catalog}
        assert types == {ModelType.TEXT_GEN, ModelType.VISION, ModelType.AUDIO, ModelType.EMBEDDINGS}
        assert len([m for m in catalog if m.model_type is ModelType.TEXT_GEN]) >= 5
        families = {m.family for m in catalog}
        assert {"qwen3", "llama", "gemma3", "smollm3", "whisper", "kokoro"} <= families

    def test_aliases_are_unique_and_every_alias_target_exists(self):
        catalog = EmbeddedCatalogProvider().load_catalog()
        seen = {}
        for m in catalog:
            for alias in m.aliases:
                assert alias.lower() not in seen, f"{alias} used by {seen.get(alias.lower())} and {m.id}"
                assert alias.lower() not in {x.id for x in catalog}
                seen[alias.lower()] = m.id
        for alias, target in catalog.aliases.items():
            assert catalog.get(target) is not None
            assert catalog.resolve(alias).id == target

    def test_every_source_is_an_mlx_community_repo(self):
        catalog = EmbeddedCatalogProvider().load_catalog()
        for m in catalog:
            for source in m.sources:
                assert source.value.startswith("mlx-community/"), source.value

    def test_some_models_have_legacy_aliases(self):
        catalog = EmbeddedCatalogProvider().load_catalog()
        assert catalog.resolve("qwen3-4b").id == "qwen3-4b-instruct-2507-4bit-v1"
        assert sum(1 for m in catalog if m.aliases) >= 5
