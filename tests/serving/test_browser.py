"""End to end in a real browser: `serve` on 127.0.0.1 driven by Debian's headless Chromium.

Needs ``/usr/bin/chromium`` (``apt-get install -y chromium``) and the ``playwright`` package;
skipped with the reason otherwise. Run with ``pytest -m browser tests/serving``.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from photodialog.serving.engine import ChatEngine
from photodialog.serving.web import build_app, launch

from .helpers import DRAWN_CAPTION, FAST, free_port

CHROMIUM = Path("/usr/bin/chromium")
pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not CHROMIUM.exists(),
                       reason=f"Debian's chromium is not installed at {CHROMIUM} (apt-get install -y chromium)"),
]
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]
WAIT_MS = 120_000  # a reply on a busy 2-core machine; the tests fail rather than hang past it


@pytest.fixture
def browser():
    sync_api = pytest.importorskip("playwright.sync_api", reason="the playwright package is not installed")
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture
def served(tiny_system, tmp_path, monkeypatch, model_always_draws):
    """The chat page on a free port of 127.0.0.1, stopped after the test."""
    monkeypatch.delenv("GRADIO_TEMP_DIR", raising=False)  # restored after the test: build_app sets it
    app = build_app(ChatEngine(tiny_system), tmp_path / "out", FAST, title="tiny-e2e")
    try:
        yield launch(app, "127.0.0.1", free_port())
    finally:
        app.close()


def _send(page, text: str, attachment: Path | None = None) -> None:
    if attachment is not None:
        page.set_input_files("#message input[type=file]", str(attachment))
        page.locator("#message .thumbnail-item").first.wait_for(timeout=WAIT_MS)  # uploaded
    page.fill("#message textarea", text)
    page.press("#message textarea", "Enter")


def test_chat_upload_reply_with_photo_and_bad_upload(browser, served, tmp_path, world_photo, not_an_image):
    from playwright.sync_api import expect

    page = browser.new_page(viewport={"width": 1100, "height": 900})
    external: list[str] = []
    page.on("request", lambda request: external.append(request.url) if not request.url.startswith(served) else None)
    page.goto(served)

    _send(page, "hello there")
    chat = page.locator("#chat")
    expect(chat.locator("[data-testid=user]").first).to_contain_text("hello there", timeout=WAIT_MS)
    expect(chat.locator("[data-testid=bot] img")).to_have_count(1, timeout=WAIT_MS)  # the reply's drawn photo
    expect(chat).to_contain_text(DRAWN_CAPTION)

    _send(page, "look at mine", world_photo)
    expect(chat.locator("[data-testid=user] img")).to_have_count(1, timeout=WAIT_MS)
    expect(chat.locator("[data-testid=bot] img")).to_have_count(2, timeout=WAIT_MS)
    expect(page.locator("#message textarea")).to_have_value("")

    _send(page, "and this one", not_an_image)
    expect(page.locator("#status")).to_contain_text("'notes.png' cannot be used as a photo", timeout=WAIT_MS)
    expect(chat.locator("[data-testid=user] img")).to_have_count(1)  # nothing was added
    assert not external, f"the page fetched from outside the server: {external}"

    screenshot = tmp_path / "serve.png"
    page.screenshot(path=str(screenshot), full_page=True)
    assert screenshot.stat().st_size > 10_000
