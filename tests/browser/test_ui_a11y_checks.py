"""The accessibility checks themselves can fail: a page with each kind of fault is caught."""

from __future__ import annotations

import pytest

from tests.browser.a11y import page_problems, tab_to

pytestmark = pytest.mark.slow

BROKEN = """<!doctype html><html lang="en"><head><title>broken</title>
<style>button:focus { outline: none; }</style></head><body><main>
<h1>Broken</h1>
<input id="nameless">
<div hidden><select id="hidden-select"><option>a</option></select></div>
<button id="empty"></button>
<p style="color: #bbb; background: #fff">faint text</p>
<div style="width: 2000px">wide</div>
<button id="ringless">no focus ring</button>
</main></body></html>"""

FINE = """<!doctype html><html lang="en"><head><title>fine</title></head><body><main>
<h1>Fine</h1><label for="n">Name</label><input id="n"><button type="button">Save</button>
</main></body></html>"""


def test_each_kind_of_fault_is_reported(page):
    page.set_content(BROKEN)
    problems = "\n".join(page_problems(page))
    assert "label (critical)" in problems  # axe: the input has no label
    assert "button-name (critical)" in problems  # axe: the empty button
    assert "color-contrast (serious)" in problems  # axe: #bbb on white
    assert "unlabelled select#hidden-select" in problems  # ours: hidden controls too
    assert "button without a name" in problems
    assert "1280px: the page scrolls sideways" in problems and "390px: the page scrolls sideways" in problems
    with pytest.raises(AssertionError, match="no visible focus indicator"):
        tab_to(page, "#ringless")


def test_a_clean_page_passes(page):
    page.set_content(FINE)
    assert page_problems(page) == []
    stops = tab_to(page, "button")
    assert [s["tag"] for s in stops] == ["input", "button"]
