"""The admin's Knowledge tab in headless Chromium: list, upload, search, delete."""

from __future__ import annotations

import asyncio
import importlib
import os
import shutil
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import nicobot
from nicobot.testing import free_port, make_project

PLUGIN = "nicobot.builtins.chroma_knowledge"

pytestmark = pytest.mark.browser


@pytest.fixture
def server_url(tmp_path: Path) -> Iterator[str]:
    """The app served by uvicorn on 127.0.0.1 from a thread, with this plugin loaded."""
    import uvicorn

    from nicobot.app import create_app
    from nicobot.plugins import make_plugin_manager

    project = make_project(tmp_path / "project", language="es")
    pm = make_plugin_manager(load_entry_points=False)
    if pm.get_plugin(PLUGIN) is None:
        pm.register(importlib.import_module(PLUGIN), name=PLUGIN)
    app = create_app(nicobot.load_settings(project), pm=pm)
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "the server did not start"
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(10)


def chromium() -> str:
    path = os.environ.get("NICOBOT_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
    if not Path(path).exists():
        pytest.fail(
            "browser tests need Chromium: apt-get install chromium (or set NICOBOT_CHROMIUM)"
        )
    return path


async def test_knowledge_tab(server_url: str):
    """Its own async browser, so that no sync Playwright loop outlives the test."""
    from playwright.async_api import async_playwright

    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=chromium(), headless=True, args=["--no-sandbox", "--disable-gpu"]
        )
        try:
            page = await browser.new_page(viewport={"width": 1280, "height": 900})
            page.set_default_timeout(15000)
            await drive(page, server_url)
        finally:
            await browser.close()


async def drive(page: Any, server_url: str) -> None:
    page.on("dialog", lambda dialog: asyncio.ensure_future(dialog.accept()))
    await page.goto(f"{server_url}/login?next=/admin?tab=knowledge")
    await page.fill("#password", "test-password")
    await page.click("button[type=submit]")
    rows = page.locator("#knowledge-documents tbody tr")
    await rows.first.wait_for()
    assert (await rows.all_inner_texts())[0].startswith("nosotros.md")
    summary = await page.locator("#knowledge-summary").inner_text()
    assert summary.startswith("Documentos: 1 · ")

    text = "# Envíos <img src=x onerror=alert(1)>\n\nEl envío es <b>gratis</b> desde $ 60.000."
    await page.set_input_files(
        "#knowledge-file",
        files=[{"name": "envios.md", "mimeType": "text/markdown", "buffer": text.encode()}],
    )
    await page.click("#knowledge-upload")
    uploaded = page.locator("#knowledge-documents tbody tr", has_text="envios.md")
    await uploaded.wait_for()
    assert "envios.md" in await page.locator("#knowledge-notice").inner_text()

    await page.fill("#knowledge-q", "envio gratis?")
    await page.click("#knowledge-search")
    first = page.locator("#knowledge-results li").first
    await first.wait_for()
    shown = await first.inner_text()
    assert "envios.md > Envíos <img src=x onerror=alert(1)>" in shown
    assert "El envío es <b>gratis</b>" in shown  # shown as text, not HTML
    assert "se usa" in shown
    assert await page.locator("#knowledge-results img, #knowledge-results b").count() == 0
    assert not await page.locator("#knowledge-searched").is_visible()  # searched as written

    await page.fill("#knowledge-q", "q sale el envio?")  # chat shorthand, spelled out
    await page.click("#knowledge-search")
    searched = page.locator("#knowledge-searched")
    await searched.wait_for()
    assert await searched.inner_text() == "Se buscó como: que sale el envio?"
    directory = os.environ.get("NICOBOT_SCREENSHOTS")
    if directory:
        await page.screenshot(path=str(Path(directory) / "knowledge-tab.png"), full_page=True)

    await uploaded.locator("button").click()
    await uploaded.wait_for(state="detached")
    assert await page.locator("#knowledge-notice").inner_text() == "Se borró envios.md."
    assert not await page.locator("#knowledge-error").is_visible()
