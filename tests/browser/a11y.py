"""Accessibility checks the browser tests run on every page.

- axe-core (vendored under tests/browser/vendor/axe-core, tests only; MPL-2.0, licence beside it): the WCAG 2.0/2.1
  A and AA rules plus axe's best practices (labels, names of buttons/links/images, contrast, ARIA, landmarks...).
- Our own: every form control and button in the DOM has an accessible name, hidden ones too (axe skips what is
  hidden, and the UI hides type-specific fields until they apply), and the page never scrolls sideways.
- Each check runs at 1280×800 and at 390 px wide.
- Keyboard: `tab_to` moves focus with the Tab key only and checks that each element it lands on shows a focus ring.
"""

from __future__ import annotations

from pathlib import Path

AXE_JS = Path(__file__).resolve().parent / "vendor" / "axe-core" / "axe.min.js"
AXE_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "best-practice"]
VIEWPORTS = ({"width": 1280, "height": 800}, {"width": 390, "height": 844})

_AXE_RUN = """async (tags) => {
  const result = await axe.run(document, {runOnly: {type: "tag", values: tags}, resultTypes: ["violations"]});
  return result.violations.map((v) => `${v.id} (${v.impact}): ${v.help} -- ` + v.nodes.slice(0, 4).map(
    (n) => n.target.join(" ") + ": " + (n.failureSummary || "").replace(/\\s+/g, " ")).join(" | "));
}"""

_UNNAMED = """() => {
  const out = [];
  const nameOf = (el) => (el.getAttribute("aria-label") || "").trim()
    || (el.getAttribute("aria-labelledby") || "").split(/\\s+/).filter(Boolean)
         .map((id) => (document.getElementById(id) || {}).textContent || "").join(" ").trim()
    || Array.from(el.labels || []).map((l) => l.textContent).join(" ").trim();
  for (const el of document.querySelectorAll("input, select, textarea")) {
    if (el.type === "hidden") continue;
    if (!nameOf(el)) out.push(`unlabelled ${el.tagName.toLowerCase()}#${el.id || "?"}[name=${el.name || "?"}]`);
  }
  for (const el of document.querySelectorAll("button, [role=button], a[href]")) {
    if (!nameOf(el) && !el.textContent.trim() && !el.querySelector("img[alt]:not([alt=''])"))
      out.push(`${el.tagName.toLowerCase()} without a name: ${el.outerHTML.slice(0, 80)}`);
  }
  return out;
}"""

_SIDEWAYS = """() => {
  const width = document.documentElement.clientWidth;
  const scroll = document.documentElement.scrollWidth;
  return scroll > width ? [`the page scrolls sideways: ${scroll}px of content in ${width}px`] : [];
}"""


_TWO_FRAMES = "() => new Promise((done) => requestAnimationFrame(() => requestAnimationFrame(done)))"


def axe_violations(page) -> list[str]:
    if not page.evaluate("() => typeof window.axe === 'object'"):
        page.add_script_tag(path=str(AXE_JS))
    return page.evaluate(_AXE_RUN, AXE_TAGS)


def page_problems(page) -> list[str]:
    """Everything wrong on the page as it is now, at each of the two widths (the viewport is put back)."""
    original = page.viewport_size
    problems: list[str] = []
    try:
        for size in VIEWPORTS:
            page.set_viewport_size(size)
            page.evaluate(_TWO_FRAMES)  # what the page does on resize (e.g. marking scroll regions) is done
            found = axe_violations(page) + page.evaluate(_UNNAMED) + page.evaluate(_SIDEWAYS)
            problems += [f"{size['width']}px: {p}" for p in found]
    finally:
        page.set_viewport_size(original)
    return problems


def assert_accessible(page, what: str) -> None:
    problems = page_problems(page)
    assert not problems, f"{what} ({page.url}):\n" + "\n".join(problems)


_FOCUSED = """() => {
  const el = document.activeElement;
  if (!el || el === document.body) return null;
  const style = getComputedStyle(el);
  const ring = (style.outlineStyle !== "none" && parseFloat(style.outlineWidth) > 0) || style.boxShadow !== "none";
  return {tag: el.tagName.toLowerCase(), id: el.id, name: el.getAttribute("aria-label") || el.textContent.trim().slice(0, 40),
          ring, matches: false};
}"""


def tab_to(page, selector: str, *, limit: int = 60, backwards: bool = False) -> list[dict]:
    """Press Tab (or Shift+Tab) until the focused element matches `selector`; every stop must show a focus ring.

    Returns the stops passed on the way; fails if `selector` is not reached within `limit` presses.
    """
    stops: list[dict] = []
    for _ in range(limit):
        page.keyboard.press("Shift+Tab" if backwards else "Tab")
        stop = page.evaluate(_FOCUSED)
        if stop is None:
            continue
        stops.append(stop)
        assert stop["ring"], f"no visible focus indicator on {stop}"
        if page.evaluate("(s) => document.activeElement.matches(s)", selector):
            return stops
    raise AssertionError(f"{selector} not reached with the keyboard in {limit} presses; stops: {stops}")
