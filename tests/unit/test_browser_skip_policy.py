"""Without chromium the browser tests skip with the reason, except under CI=true where that is a failure."""

import pytest

from tests.browser.conftest import _missing


def test_a_missing_browser_skips_outside_ci(monkeypatch):
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception, match="chromium is not installed"):
        _missing("Debian's chromium is not installed")


def test_a_missing_browser_fails_under_ci(monkeypatch):
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="cannot run under CI=true"):
        _missing("Debian's chromium is not installed")
