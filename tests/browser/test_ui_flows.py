"""The web UI in real headless Chromium against a real server (uvicorn, SQLite, MLX, the loopback hub).

Auth off on loopback: hub search + pull with live progress to 100 %, an audio profile's validation
error next to its field, chat with a tiny model streaming and a stop that stops generation.
"""

from __future__ import annotations

import os
import re
import time

import httpx
import pytest
from click.testing import CliRunner

from domain.enums import ModelType
from domain.library.models import Model
from entrypoints.cli.main import cli
from entrypoints.http.app import create_app
from tests.browser.a11y import page_problems, tab_to
from tests.browser.conftest import screenshot
from tests.support.fake_hub import FakeHub, Fault
from tests.support.frontends import real_container, serve_in_thread
from tests.support.tiny_models import cached_model

pytestmark = pytest.mark.slow

PULL_REPO = "mlx-community/Tiny-Demo-4bit"
PULL_BYTES = 3 * 1024 * 1024


@pytest.fixture(scope="module")
def hub():
    with FakeHub() as h:
        h.add_repo(PULL_REPO, {"config.json": b'{"model_type": "llama"}', "model.safetensors": os.urandom(PULL_BYTES),
                               "tokenizer.json": b"{}"},
                   downloads=1234, likes=56, pipeline_tag="text-generation", library_name="mlx")
        h.add_repo("mlx-community/Other-Tiny-8bit", {"config.json": b"{}"}, downloads=10, likes=1,
                   pipeline_tag="text-generation")
        yield h


@pytest.fixture(scope="module")
def server(hub, tmp_path_factory):
    previous = os.environ.get("HF_ENDPOINT")
    os.environ["HF_ENDPOINT"] = hub.url  # read at call time by the downloader and the hub search
    home = tmp_path_factory.mktemp("ui-home")
    # Untied embeddings: greedy output is varied visible text (tied ones repeat one token, often a newline).
    # A long context: the chat test asks for far more tokens than it waits for (the server refuses
    # max_tokens beyond the model's context), so only Stop can end that generation.
    llama = cached_model("llama", tmp_path_factory.getbasetemp() / "tiny-models", tie_word_embeddings=False,
                         max_position_embeddings=65536)
    container = real_container(home)
    result = CliRunner().invoke(cli, ["import", str(llama), "--name", "tiny-llama"], obj=container)
    assert result.exit_code == 0, result.output
    voice = home / "external" / "kokoro-tiny"
    voice.mkdir(parents=True)
    with container.uow_factory() as uow:  # an audio model row (the profile form only needs its type)
        uow.models.add(Model("kokoro-tiny", model_type=ModelType.AUDIO, local_path=str(voice), size_bytes=1000,
                             managed=False))
        uow.commit()
    try:
        with serve_in_thread(create_app(container)) as url:
            yield url, container
    finally:
        container.model_pool().shutdown()
        if previous is None:
            os.environ.pop("HF_ENDPOINT", None)
        else:
            os.environ["HF_ENDPOINT"] = previous


def test_library_lists_models_and_shows_details(page, server):
    url, _ = server
    page.goto(url + "/")
    page.get_by_role("row", name=re.compile("tiny-llama")).wait_for()
    page.get_by_label("Search models").fill("kok")
    page.get_by_role("row", name=re.compile("kokoro-tiny")).wait_for()
    page.wait_for_function("document.querySelectorAll('#models tbody tr').length === 1")
    page.get_by_label("Search models").fill("")
    page.get_by_role("button", name="Details of tiny-llama").click()
    details = page.locator("#details")
    details.get_by_role("heading", name="tiny-llama").wait_for()
    assert "model.safetensors" in details.inner_text()
    assert re.search(r"\b[0-9a-f]{64}\b", details.inner_text())  # the file's sha256
    screenshot(page, "library")
    page.set_viewport_size({"width": 390, "height": 844})
    screenshot(page, "library-390px")


def test_hub_search_and_pull_with_live_progress(page, server, hub):
    url, container = server
    hub.inject(f"/{PULL_REPO}/resolve/*", Fault.slow(bytes_per_sec=1_000_000))  # ~3 s: progress is visible
    page.goto(url + "/ui/discover")
    page.get_by_label("Search Hugging Face").fill("tiny")
    page.get_by_label("Author").fill("mlx-community")
    page.get_by_role("button", name="Search").click()
    page.locator("#hub-results tbody tr", has_text=PULL_REPO).wait_for()  # (a "/" breaks role-name regexes)
    assert "1,234" in page.locator("#hub-results").inner_text()
    page.get_by_role("button", name=f"Pull {PULL_REPO}").click()
    card = page.locator("article.pull").first
    # Live progress over SSE: a partial percentage with bytes, rate and the current file.
    page.wait_for_function(
        "() => { const p = document.querySelector('article.pull .pct');"
        " return p && parseFloat(p.textContent) > 5 && parseFloat(p.textContent) < 95; }", timeout=60_000)
    assert "current: " in card.inner_text() and "/s" in card.inner_text() and "ETA " in card.inner_text()
    # Each file's bytes against its size: the weights part-way (3.0 MB in all), the small files done.
    weights = card.locator('li[data-file="model.safetensors"]')
    page.wait_for_function(
        """() => { const li = document.querySelector('article.pull li[data-file="model.safetensors"]');
                   return li && li.dataset.state === "active" && li.textContent.includes("of 3.0 MB"); }""")
    assert re.search(r"[\d.]+ (KB|MB|B) of 3\.0 MB", weights.inner_text()), weights.inner_text()
    assert 0 < float(weights.locator("progress").get_attribute("value")) < 100
    assert card.get_by_role("list", name=f"Files of {PULL_REPO}").get_by_role("listitem").count() == 3
    screenshot(page, "pull-in-progress")
    card.locator('[data-status="completed"]').wait_for(timeout=120_000)
    assert card.locator(".pct").inner_text() == "100.0 %"
    assert "files 3/3" in card.inner_text(), card.inner_html()
    states = card.locator("li[data-file]").evaluate_all("items => items.map(li => li.dataset.state)")
    assert states == ["done", "done", "done"], card.inner_html()
    assert "3.0 MB of 3.0 MB" in weights.inner_text()
    screenshot(page, "pull-complete")
    problems = page_problems(page)  # with a pull card and its file list
    assert not problems, "\n".join(problems)
    hub.clear_faults()
    listed = httpx.get(url + "/api/models", params={"q": "Tiny-Demo"}).json()
    assert [m["repo_id"] for m in listed["data"]] == [PULL_REPO]


def test_pull_failure_shows_its_reason(page, server, hub):
    url, _ = server
    hub.add_repo("mlx-community/Broken-4bit", {"config.json": b"{}", "model.safetensors": b"x" * 5000})
    hub.inject("/mlx-community/Broken-4bit/resolve/*", Fault.status(500))
    page.goto(url + "/ui/discover")
    page.get_by_label("Search Hugging Face").fill("broken")
    page.get_by_role("button", name="Search").click()
    page.get_by_role("button", name="Pull mlx-community/Broken-4bit").click()
    card = page.locator("article.pull", has_text="Broken").first
    card.locator('[data-status="failed"]').wait_for(timeout=120_000)
    assert "Failed:" in card.inner_text()
    assert "null" not in card.inner_text() and "undefined" not in card.inner_text()
    assert card.get_by_role("button", name="Resume").is_visible()
    hub.clear_faults()


def test_audio_profile_form_follows_the_type_and_shows_errors_next_to_the_field(page, server):
    url, _ = server
    page.goto(url + "/ui/profiles")
    page.get_by_label("Model").select_option("kokoro-tiny")
    assert page.get_by_role("group", name="Audio defaults").is_visible()
    assert not page.get_by_role("group", name="Inference defaults").is_visible()
    page.get_by_label("Name").fill("narrator")
    page.get_by_label("Voice").fill("af_heart")
    page.get_by_label("Speed").fill("-1")
    page.get_by_role("button", name="Create profile").click()
    error = page.locator("#err-audio-speed")
    error.wait_for()
    page.wait_for_function("document.getElementById('err-audio-speed').textContent.length > 0")
    assert "between" in error.inner_text()
    assert page.get_by_label("Speed").get_attribute("aria-invalid") == "true"
    screenshot(page, "profile-validation-error")
    page.get_by_label("Speed").fill("1.2")
    page.get_by_role("button", name="Create profile").click()
    page.get_by_role("row", name=re.compile("narrator")).wait_for()
    assert "speed=1.2" in page.get_by_role("row", name=re.compile("narrator")).inner_text()
    # A text model brings the inference fields instead.
    page.get_by_label("Model").select_option("tiny-llama")
    assert page.get_by_role("group", name="Inference defaults").is_visible()
    assert not page.get_by_role("group", name="Audio defaults").is_visible()


def _audit_statuses(url: str) -> list[str]:
    return [row["status"] for row in httpx.get(url + "/api/audit", params={"model": "tiny-llama"}).json()["items"]]


def test_chat_streams_tokens_and_stop_stops_generation(page, server):
    url, container = server
    page.goto(url + "/ui/chat?target=tiny-llama")
    page.get_by_label("Temperature").fill("0")
    page.get_by_label("Max tokens").fill("20000")  # far more than the test waits for: only Stop ends it
    page.wait_for_function("document.getElementById('r-temperature').textContent.includes('(request)')")
    assert "system" in page.locator("#r-top_p").inner_text()  # not overridden: the server default applies
    page.get_by_label("Message").fill("Hello there")
    page.get_by_role("button", name="Send").click()
    assistant = page.locator(".msg.assistant .text").last
    text_length = "document.querySelector('.msg.assistant .text').textContent.length"
    page.wait_for_function(f"{text_length} > 10", timeout=120_000)  # the first request loads the model
    first = page.evaluate(text_length)
    page.wait_for_function(f"{text_length} > {first + 10}", timeout=60_000)  # still streaming in
    screenshot(page, "chat-streaming")
    page.get_by_role("button", name="Stop").click()
    page.wait_for_function("document.getElementById('chat-status').textContent.startsWith('Stopped')")
    stopped_at = page.evaluate(text_length)
    # The server really stopped: the request is recorded as cancelled, and nothing is left generating.
    deadline = time.monotonic() + 20
    while "cancelled" not in _audit_statuses(url) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert "cancelled" in _audit_statuses(url)
    pool = httpx.get(url + "/api/pool").json()
    assert all(m["in_use"] == 0 for m in pool["loaded"])
    page.wait_for_timeout(500)
    assert page.evaluate(text_length) == stopped_at
    assert page.get_by_role("button", name="Send").is_enabled()


def test_server_and_audit_pages(page, server):
    url, _ = server
    page.goto(url + "/ui/server")
    page.get_by_role("row", name=re.compile("tiny-llama")).wait_for()
    assert "eviction policy: lru" in page.locator("#pool-facts").inner_text()
    page.get_by_role("button", name="Unload tiny-llama").click()
    page.get_by_text("No model is loaded.").wait_for()
    page.goto(url + "/ui/audit")
    page.get_by_label("Status").select_option("cancelled")
    page.get_by_role("button", name="Filter").click()
    page.wait_for_function("document.getElementById('audit-count').textContent.includes('of')")
    assert "cancelled" in page.locator("#audit tbody").inner_text()
    assert "requests" in page.locator("#summary").inner_text()


def test_every_page_passes_the_accessibility_checks(page, server):
    """axe-core + our checks (names of every control, no sideways scrolling) at 1280×800 and 390 px, on each
    page in the states users see (auth off on loopback: every page is reachable; login is checked with auth
    on in test_ui_auth.py)."""
    url, _ = server
    problems: list[str] = []

    def check(what: str) -> None:
        problems.extend(f"{what}: {p}" for p in page_problems(page))
        page.set_viewport_size({"width": 390, "height": 844})
        screenshot(page, "a11y-" + re.sub(r"\W+", "-", what) + "-390px")
        page.set_viewport_size({"width": 1280, "height": 800})

    page.goto(url + "/")
    page.get_by_role("row", name=re.compile("tiny-llama")).wait_for()
    page.get_by_role("button", name="Details of tiny-llama").click()
    page.locator("#details").get_by_role("heading", name="tiny-llama").wait_for()
    check("library with details")
    page.goto(url + "/ui/discover")
    page.get_by_label("Search Hugging Face").fill("tiny")
    page.get_by_role("button", name="Search").click()
    page.locator("#hub-results tbody tr").first.wait_for()
    for text in page.locator("#pulls").all_inner_texts():  # downloads of earlier tests, drawn from their rows
        assert "null" not in text and "undefined" not in text, text
    check("discover with results")
    page.goto(url + "/ui/profiles")
    page.get_by_label("Model").select_option("kokoro-tiny")
    page.get_by_label("Name").fill("a11y")
    page.get_by_label("Speed").fill("-1")
    page.get_by_role("button", name="Create profile").click()
    page.wait_for_function("document.getElementById('err-audio-speed').textContent.length > 0")
    check("profiles with a field error")
    page.goto(url + "/ui/chat?target=tiny-llama")
    page.wait_for_function("document.getElementById('r-temperature').textContent.length > 0")
    check("chat")
    page.goto(url + "/ui/server")
    page.wait_for_function("document.getElementById('pool-facts').textContent.length > 0")
    check("server")
    page.goto(url + "/ui/audit")
    page.wait_for_function("document.getElementById('audit-count').textContent.length > 0")
    check("audit")
    page.goto(url + "/ui/keys")
    page.get_by_label("Key name").fill("a11y-key")
    page.get_by_role("button", name="Create key").click()
    # Auth off: creating keys still needs an admin key (403), shown by the form (with auth on: test_ui_auth.py).
    page.wait_for_function("document.getElementById('key-error').textContent.length > 0")
    check("keys and users with an error")
    assert not problems, "\n".join(problems)


def test_create_and_delete_a_profile_with_the_keyboard_only(page, server):
    url, _ = server
    page.goto(url + "/ui/profiles")
    page.wait_for_function("document.getElementById('p-model').options.length > 1")
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.textContent") == "Skip to content"
    page.keyboard.press("Enter")  # past the navigation
    tab_to(page, "#p-name")
    page.keyboard.type("keyboard-made")
    tab_to(page, "#p-model")
    page.keyboard.type("tiny-llama")  # a focused select's type-ahead picks the option
    assert page.locator("#p-model").input_value() == "tiny-llama"
    tab_to(page, "#p-inference-temperature")  # the inference fields appeared for a text model
    page.keyboard.type("0.3")
    page.keyboard.press("Enter")  # submits the form
    row = page.get_by_role("row", name=re.compile("keyboard-made"))
    row.wait_for()
    assert "temperature=0.3" in row.inner_text()
    # Delete it: back to its Delete button, then the confirmation dialog, all with keys.
    tab_to(page, 'button[aria-label="Delete keyboard-made"]', backwards=True)
    page.keyboard.press("Enter")
    dialog = page.get_by_role("dialog", name="Delete profile keyboard-made?")
    dialog.wait_for()
    assert page.evaluate("document.activeElement.textContent") == "Cancel"  # the safe choice has focus
    problems = page_problems(page)
    assert not problems, "\n".join(problems)
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.textContent") == "Delete"
    page.keyboard.press("Enter")
    page.wait_for_function("!document.querySelector('#profiles tbody').textContent.includes('keyboard-made')")


def test_deleting_a_model_whose_folder_is_not_mlxms_says_what_stayed_on_disk(page, server):
    # A pre-redesign download: its row `managed`, its files a real folder at models/<key> (today's mlxm keeps
    # only a link there). The row goes, the folder stays, and the UI says so instead of "Deleted".
    from pathlib import Path

    url, container = server
    folder = Path(container.settings().manager.models_dir) / "legacy-tiny"
    folder.mkdir(parents=True)
    (folder / "model.safetensors").write_bytes(b"w" * 3_355_443)  # 3.2 MB
    with container.uow_factory() as uow:
        uow.models.add(Model("legacy-tiny", model_type=ModelType.TEXT_GEN, local_path=str(folder),
                             size_bytes=3_355_443, managed=True))
        uow.commit()
    page.goto(url + "/")
    page.get_by_role("button", name="Details of legacy-tiny").click()
    page.locator("#details").get_by_role("button", name="Delete…").click()
    dialog = page.get_by_role("dialog", name="Delete legacy-tiny?")
    dialog.wait_for()
    words = dialog.inner_text()
    assert "mlxm deletes only the files it created" in words and "stays on disk" in words, words
    dialog.get_by_role("button", name="Delete", exact=True).click()
    note = page.locator("#toasts .notice", has_text="legacy-tiny")
    note.wait_for()
    assert note.inner_text() == (
        f"Removed legacy-tiny from the library; kept: {folder} (3.2 MB): a folder mlxm did not create (mlxm keeps "
        "only a link there); left alone: delete it yourself to free its space")
    page.wait_for_function("!document.querySelector('#models tbody').textContent.includes('legacy-tiny')")
    assert (folder / "model.safetensors").stat().st_size == 3_355_443
