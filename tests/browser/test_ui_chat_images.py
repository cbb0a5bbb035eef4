"""Chat with images in real headless Chromium: a tiny Qwen2-VL (mlx-vlm) the test builds, a real server.

The image picker shows only for vision models; a picked PNG goes with the message as a data: URL and the
streamed answer is what mlx-vlm itself generates for that image and prompt.
"""

from __future__ import annotations

import io
import json

import pytest
from click.testing import CliRunner

from entrypoints.cli.main import cli
from entrypoints.http.app import create_app
from tests.browser.a11y import page_problems, tab_to
from tests.browser.conftest import screenshot
from tests.support.frontends import real_container, serve_in_thread
from tests.support.tiny_models import cached_model

pytestmark = pytest.mark.slow

MAX_TOKENS = 300  # long enough to stream over many paints (this model and image do not stop early)


def _png(color, size=(40, 30)) -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", size, color).save(buffer, format="PNG")
    return buffer.getvalue()


def _mlx_vlm_answer(model_dir, prompt: str, image: bytes, max_tokens: int) -> str:
    """What mlx-vlm generates (greedy) for one user turn of an image and a text, straight from the library."""
    import mlx.core as mx
    from mlx_vlm import generate, load
    from mlx_vlm.prompt_utils import apply_chat_template
    from PIL import Image

    model, processor = load(str(model_dir))
    messages = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": prompt}]}]
    rendered = apply_chat_template(processor, model.config, messages, num_images=1)
    return generate(model, processor, rendered, image=[Image.open(io.BytesIO(image)).convert("RGB")],
                    max_tokens=max_tokens, sampler=lambda x: mx.argmax(x, axis=-1)).text


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    root = tmp_path_factory.getbasetemp() / "tiny-models"
    return {"vlm": cached_model("qwen2_vl", root), "llama": cached_model("llama", root)}


@pytest.fixture(scope="module")
def server(tmp_path_factory, models):
    container = real_container(tmp_path_factory.mktemp("ui-vision-home"))
    for name, kind in (("tiny-vlm", "vlm"), ("tiny-llama", "llama")):
        result = CliRunner().invoke(cli, ["import", str(models[kind]), "--name", name], obj=container)
        assert result.exit_code == 0, result.output
    try:
        with serve_in_thread(create_app(container)) as url:
            yield url
    finally:
        container.model_pool().shutdown()


def test_image_picker_only_for_vision_models_and_an_image_reaches_the_model(page, server, models, tmp_path):
    url = server
    green = _png((20, 200, 20))
    (tmp_path / "green.png").write_bytes(green)
    page.goto(url + "/ui/chat?target=tiny-llama")
    page.wait_for_function("document.getElementById('target').options.length > 0")
    picker = page.locator("#images")
    assert not picker.is_visible() and picker.is_disabled()  # a text model takes no images

    page.get_by_label("Profile or model").select_option("tiny-vlm")
    images = page.get_by_label("Images", exact=True)
    assert images.is_visible() and images.is_enabled()
    tab_to(page, "#images")  # reachable with the keyboard (the native picker opens on Space/Enter)
    images.set_input_files(str(tmp_path / "green.png"))
    attached = page.get_by_role("list", name="Images to send")
    attached.get_by_role("img", name="green.png").wait_for()
    # Removing a picked image works from the keyboard too; focus returns to the picker.
    tab_to(page, 'button[aria-label="Remove green.png"]')
    page.keyboard.press("Enter")
    assert attached.get_by_role("listitem").count() == 0
    assert page.evaluate("document.activeElement.id") == "images"
    images.set_input_files(str(tmp_path / "green.png"))
    attached.get_by_role("img", name="green.png").wait_for()
    assert attached.get_by_role("button", name="Remove green.png").is_visible()
    problems = page_problems(page)  # the picker and the image to send
    assert not problems, "\n".join(problems)

    page.get_by_label("Temperature").fill("0")
    page.get_by_label("Max tokens").fill(str(MAX_TOKENS))
    page.get_by_label("Message").fill("describe")
    # Count the paints of the answer while it streams in (the page paints at most every 50 ms).
    page.evaluate("""() => { window.__answerLengths = [];
        new MutationObserver(() => { const t = document.querySelector('.msg.assistant .text');
            if (t) window.__answerLengths.push(t.textContent.length); })
          .observe(document.getElementById('transcript'), {subtree: true, childList: true, characterData: true}); }""")
    with page.expect_request(lambda r: r.url.endswith("/api/chat") and r.method == "POST") as sent:
        page.get_by_role("button", name="Send").click()
    body = json.loads(sent.value.post_data)
    assert body["stream"] is True and body["model"] == "tiny-vlm"
    assert body["messages"][-1]["content"] == "describe"
    assert len(body["messages"][-1]["images"]) == 1
    assert body["messages"][-1]["images"][0].startswith("data:image/png;base64,")

    page.wait_for_function("document.getElementById('chat-status').textContent.startsWith('Done')", timeout=120_000)
    answer = page.locator(".msg.assistant .text").last.text_content()
    assert answer and answer == _mlx_vlm_answer(models["vlm"], "describe", green, MAX_TOKENS)
    assert page.get_by_role("log", name="Conversation").get_by_role("img", name="green.png").is_visible()
    assert attached.get_by_role("listitem").count() == 0  # sent: the next message starts without images
    lengths = page.evaluate("window.__answerLengths.filter((n) => n > 0)")
    assert len(set(lengths)) >= 2, lengths  # the answer grew in steps: it streamed
    screenshot(page, "chat-image")

    # Back to a text model: the picker hides again, and the conversation goes on without the earlier image
    # (the API refuses images for a text model), which the page says.
    page.get_by_label("Profile or model").select_option("tiny-llama")
    assert not picker.is_visible() and picker.is_disabled()
    page.get_by_label("Max tokens").fill("8")
    page.get_by_label("Message").fill("and you?")
    with page.expect_request(lambda r: r.url.endswith("/api/chat") and r.method == "POST") as sent:
        page.get_by_role("button", name="Send").click()
    body = json.loads(sent.value.post_data)
    assert body["model"] == "tiny-llama" and [m["role"] for m in body["messages"]] == ["user", "assistant", "user"]
    assert not any("images" in m for m in body["messages"])
    page.wait_for_function("document.getElementById('chat-status').textContent.startsWith('Done')", timeout=120_000)
    assert "earlier images were not sent: tiny-llama is not a vision model" in page.locator("#chat-status").inner_text()
    assert page.locator(".msg .notice.bad").count() == 0  # no error from the server
