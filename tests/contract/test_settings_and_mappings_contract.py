"""SettingsRepository and BackendMappingRepository contracts."""

from __future__ import annotations

from dataclasses import replace

from domain.enums import BackendType, PatternType
from domain.routing.model import BackendMapping


def test_settings_get_set_overwrite(uow_factory):
    with uow_factory() as uow:
        assert uow.settings.get("selected_model") is None
        uow.settings.set("selected_model", "qwen3-4b")
        uow.settings.set("other", "")
        uow.commit()
    with uow_factory() as uow:
        assert uow.settings.get("selected_model") == "qwen3-4b"
        assert uow.settings.get("other") == ""
        uow.settings.set("selected_model", "gemma-3-1b")
        uow.commit()
    with uow_factory() as uow:
        assert uow.settings.get("selected_model") == "gemma-3-1b"


def test_mappings_add_get_list_update_remove(uow_factory):
    gpt = BackendMapping("gpt-", PatternType.PREFIX, BackendType.OPENAI, backend_model=None,
                         fallback_backend=BackendType.LOCAL, priority=10, fallback_model="qwen3-4b")
    claude = BackendMapping("claude-.*", PatternType.REGEX, BackendType.ANTHROPIC, backend_model="claude-x",
                            priority=5, enabled=False)
    with uow_factory() as uow:
        gpt = uow.backend_mappings.add(gpt)
        claude = uow.backend_mappings.add(claude)
        uow.commit()
    assert gpt.id is not None and claude.id is not None and gpt.id != claude.id
    with uow_factory() as uow:
        assert uow.backend_mappings.list() == [gpt, claude]
        assert uow.backend_mappings.get(claude.id) == claude
        assert uow.backend_mappings.get(12345) is None
        uow.backend_mappings.add(replace(claude, enabled=True, priority=50))
        uow.commit()
    with uow_factory() as uow:
        assert uow.backend_mappings.get(claude.id) == replace(claude, enabled=True, priority=50)
        uow.backend_mappings.remove(gpt.id)
        uow.commit()
    with uow_factory() as uow:
        assert [m.id for m in uow.backend_mappings.list()] == [claude.id]


def test_mappings_find_same_finds_an_exact_duplicate_only(uow_factory):
    gpt = BackendMapping("gpt-", PatternType.PREFIX, BackendType.OPENAI, fallback_backend=BackendType.LOCAL,
                         priority=3, fallback_model="qwen3-4b")
    with uow_factory() as uow:
        assert uow.backend_mappings.find_same(gpt) is None
        stored = uow.backend_mappings.add(gpt)
        uow.commit()
    with uow_factory() as uow:
        assert uow.backend_mappings.find_same(gpt) == stored  # a new (id-less) copy of a stored mapping
        assert uow.backend_mappings.find_same(stored) is None  # a mapping is no duplicate of itself
        for differs in (dict(model_pattern="gpt-4"), dict(pattern_type=PatternType.EXACT),
                        dict(backend_type=BackendType.ANTHROPIC), dict(backend_model="up"),
                        dict(fallback_backend=None, fallback_model=None), dict(fallback_model="other"),
                        dict(priority=4), dict(enabled=False)):
            assert uow.backend_mappings.find_same(replace(gpt, **differs)) is None, differs
