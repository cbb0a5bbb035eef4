import pytest

from domain.downloads.model import ALLOWED_TRANSITIONS, Download
from domain.enums import BackendType, DownloadStatus as S, PatternType, UserStatus
from domain.errors import IllegalTransition, InvalidPattern
from domain.routing.model import BackendMapping, route, validate_pattern


def test_happy_path_and_completion_fills_bytes():
    d = Download("m-v1", total_bytes=100)
    for status in (S.STARTING, S.DOWNLOADING, S.PAUSED, S.DOWNLOADING, S.COMPLETED):
        d.transition(status)
    assert d.status is S.COMPLETED and d.downloaded_bytes == 100


def test_completed_is_terminal():
    d = Download("m-v1", status=S.COMPLETED)
    for target in S:
        with pytest.raises(IllegalTransition):
            d.transition(target)
    assert ALLOWED_TRANSITIONS[S.COMPLETED] == frozenset()


def test_failed_goes_back_to_pending_on_retry_and_clears_error():
    d = Download("m-v1", status=S.DOWNLOADING)
    d.transition(S.FAILED, error="hub down")
    assert d.error == "hub down"
    with pytest.raises(IllegalTransition):
        d.transition(S.DOWNLOADING)
    d.transition(S.PENDING)
    assert d.status is S.PENDING and d.error is None


def test_crash_reconciliation_pauses_active_downloads_only():
    active = Download("a-v1", status=S.DOWNLOADING)
    done = Download("b-v1", status=S.COMPLETED)
    assert active.reconcile_after_crash() and active.status is S.PAUSED
    assert not done.reconcile_after_crash() and done.status is S.COMPLETED


def mapping(pattern, ptype, backend, priority=0, enabled=True, fallback=None):
    return BackendMapping(pattern, ptype, backend, priority=priority, enabled=enabled, fallback_backend=fallback)


def test_routing_highest_priority_enabled_match_wins():
    mappings = [
        mapping("gpt-", PatternType.PREFIX, BackendType.OPENAI, priority=1),
        mapping("gpt-4o", PatternType.EXACT, BackendType.ANTHROPIC, priority=5, enabled=False),
        mapping(r"gpt-4.*", PatternType.REGEX, BackendType.OPENAI_COMPATIBLE, priority=3, fallback=BackendType.LOCAL),
    ]
    decision = route("gpt-4o", mappings)
    assert decision.backend_type is BackendType.OPENAI_COMPATIBLE
    assert decision.fallback_backend is BackendType.LOCAL
    assert route("gpt-3.5", mappings).backend_type is BackendType.OPENAI
    assert route("qwen3-4b", mappings).backend_type is BackendType.LOCAL


@pytest.mark.parametrize("pattern", [r"(a+)+$", r"(\w*)*x", r"(a|aa)+", r"(.*){2,}", r"(x)\1", "a" * 201, "(unclosed"])
def test_unsafe_or_invalid_regexes_are_rejected(pattern):
    with pytest.raises(InvalidPattern):
        validate_pattern(PatternType.REGEX, pattern)


@pytest.mark.parametrize(
    "pattern",
    [
        r"((a+))+b",  # nested quantifier hidden behind an extra group
        r"(?:(?:\w+)-)+x",  # nested quantifier through non-capturing groups
        r"(?=(a+)+)b",  # nested quantifier inside a lookahead
        r"(?>a+)+",  # atomic group under a repeat
        r"(a|ab|abc){2,}x",  # alternation under a counted repeat
        ".*.*.*.*.*.*.*.*=",  # polynomial blow-up: many unbounded repeats in a row
        r"(a|a)" * 30,  # no repeat at all, yet 2**30 ways to backtrack
        "a?" * 30 + "a" * 30,  # exponential chain of optionals
        r"(?P<n>a)(?(n)b|c)",  # conditional group refers back like a backreference
        r"(?P<n>a)(?P=n)",  # named backreference
    ],
)
def test_redos_shapes_that_fooled_the_text_scan_are_rejected(pattern):
    with pytest.raises(InvalidPattern):
        validate_pattern(PatternType.REGEX, pattern)


@pytest.mark.parametrize(
    "pattern",
    [r"gpt-4.*", r"claude-[a-z0-9.-]+", r".*-.*", r"(llama|qwen)-\d+b", r"(?:mlx-community/)?Qwen.*", r"(a+)?x"],
)
def test_ordinary_regexes_still_pass_the_vetting(pattern):
    assert validate_pattern(PatternType.REGEX, pattern) == pattern


def test_safe_regex_matches_quickly_on_hostile_input():
    m = mapping(r"claude-[a-z0-9.-]+", PatternType.REGEX, BackendType.ANTHROPIC)
    # Over-long names never reach the regex engine, so hostile input stays cheap.
    assert not m.matches("claude-" + "a" * 100_000 + "!")
    assert m.matches("claude-3.5-sonnet")


def test_user_status_parses_legacy_upper_case():
    assert UserStatus.parse("APPROVED") is UserStatus.APPROVED
