"""The pages in headless Chromium, against a real `nicobot serve`."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from nicobot.testing import make_project

pytestmark = pytest.mark.browser

EXAMPLE_KNOWLEDGE = Path(__file__).resolve().parents[1] / "examples" / "laformula" / "knowledge"


def log_in(page, server) -> None:
    page.goto(server.url + "/")
    page.wait_for_url(re.compile(r"/login"))
    page.fill("#password", server.password)
    page.click("button[type=submit]")
    page.wait_for_url(server.url + "/")


def test_log_in_start_a_simulated_chat_and_see_the_reply(
    tmp_path, nicobot_server, page, screenshot
):
    server = nicobot_server(make_project(tmp_path / "p"))
    log_in(page, server)
    page.fill("#phone_number", "5491100000042")
    page.fill("#sender_name", "Ana <b>Test</b>")
    page.fill("#first_message", "hola")
    screenshot("chat-new")
    page.click("#new-chat button[type=submit]")
    page.wait_for_url(re.compile(r"session="))
    reply = page.locator(".msg-assistant .msg-text").first
    reply.wait_for()
    assert reply.inner_text().strip()
    assert page.locator(".msg-user .msg-text").first.inner_text() == "hola"
    assert "Ana <b>Test</b>" in page.locator(".session-name").first.inner_text()
    page.fill("#message", "y los sábados?")
    page.press("#message", "Enter")
    page.locator(".msg-assistant:not(.typing)").nth(1).wait_for()
    assert page.locator(".msg-user").count() == 2
    screenshot("chat-conversation")


def test_wrong_password_stays_on_the_login_page(tmp_path, nicobot_server, page):
    server = nicobot_server(make_project(tmp_path / "p"))
    page.goto(server.url + "/login")
    page.fill("#password", "wrong")
    page.click("button[type=submit]")
    assert page.locator(".alert").inner_text() == "Wrong password. Try again."


def test_admin_page_in_spanish(tmp_path, nicobot_server, page, screenshot):
    server = nicobot_server(make_project(tmp_path / "p", language="es"))
    log_in(page, server)
    page.goto(server.url + "/admin?tab=channels")
    tabs = page.locator(".tab").all_inner_texts()
    assert "Canales" in tabs and "Prompt" in tabs
    assert page.locator("h1").inner_text() == "Administración"
    assert page.locator(".channel-card.available").count() == 0  # every listed plugin is here
    assert page.locator("[data-channel=simulator] .status-text").inner_text() == "Conectado"
    screenshot("admin-channels-es")
    page.goto(server.url + "/admin?tab=prompt")
    assert page.locator("label[for=system_prompt]").inner_text().startswith("Instrucciones")
    screenshot("admin-prompt-es")


def test_the_admin_switches_language_for_this_browser(tmp_path, nicobot_server, page):
    server = nicobot_server(make_project(tmp_path / "p"))
    log_in(page, server)
    assert page.locator(".sidebar h2").inner_text() == "Conversations"
    with page.expect_navigation():
        page.select_option("#lang-select", "es")
    assert page.locator(".sidebar h2").inner_text() == "Conversaciones"
    page.goto(server.url + "/admin")
    assert page.locator("h1").inner_text() == "Administración"


def test_prompt_tab_saves(tmp_path, nicobot_server, page):
    server = nicobot_server(make_project(tmp_path / "p"))
    log_in(page, server)
    page.goto(server.url + "/admin?tab=prompt")
    page.fill("#persona", "a cheerful helper")
    page.click("button.primary")
    page.wait_for_url(re.compile(r"saved=1"))
    assert page.locator("#persona").input_value() == "a cheerful helper"
    assert page.locator(".notice").is_visible()


def test_failed_messages_are_listed_beside_failed_sends_and_retried(tmp_path, nicobot_server, page):
    import asyncio
    from concurrent.futures import ThreadPoolExecutor

    from nicobot import IncomingMessage
    from nicobot.store.sqlite import SQLiteStore

    project = make_project(tmp_path / "p")

    async def park_one() -> None:  # what three failed attempts at answering leave behind
        store = SQLiteStore(project / "data" / "nicobot.sqlite3")
        await store.open()
        message = IncomingMessage("simulator", "5491100000077", "¿abren hoy?", "f-1")
        await store.enqueue(message, debounce=0, max_wait=0)
        [turn] = await store.claim_turns("gone", 1, lease=60)
        await store.park_turn(turn, "RuntimeError: <b>broken</b> plugin", None, {}, [])
        await store.close()

    with ThreadPoolExecutor(1) as pool:  # Playwright's own event loop runs in this thread
        pool.submit(asyncio.run, park_one()).result()
    server = nicobot_server(project)
    log_in(page, server)
    page.goto(server.url + "/admin?tab=deliveries")
    row = page.locator("#turns-rows tr")
    row.wait_for()
    assert row.locator(".text").inner_text() == "¿abren hoy?"
    assert row.locator(".error").inner_text() == "RuntimeError: <b>broken</b> plugin"  # as text
    assert page.locator("#outbox-empty").is_visible()  # no failed sends beside it
    row.locator("button").click()
    page.locator("#turns-empty").wait_for(state="visible")
    assert page.locator("#turns-rows tr").count() == 0


@pytest.mark.parametrize("width", [390, 1280])
def test_the_knowledge_tab_shows_whole_file_names_and_their_delete_button(
    tmp_path, nicobot_server, page, width
):
    project = make_project(tmp_path / "p")
    (project / "knowledge" / "preguntas-frecuentes-de-la-tienda.md").write_text(
        "# Preguntas\n\nAbrimos de 10 a 19.\n", encoding="utf-8"
    )
    server = nicobot_server(project)
    page.set_viewport_size({"width": width, "height": 844})
    log_in(page, server)
    page.goto(server.url + "/admin?tab=knowledge")
    name = page.locator("#knowledge-documents code", has_text="preguntas-frecuentes")
    name.wait_for()
    font_size = float(name.evaluate("e => parseFloat(getComputedStyle(e).fontSize)"))
    assert name.bounding_box()["height"] < 1.8 * font_size  # one line, not cut mid-word
    for button in page.locator("#knowledge-documents button").all():
        box = button.bounding_box()
        assert box is not None and box["x"] + box["width"] <= width  # on screen, no scrolling


def test_a_reply_names_each_document_once_with_the_sections_it_quotes(
    tmp_path, nicobot_server, page
):
    project = make_project(tmp_path / "p", language="es")
    shutil.rmtree(project / "knowledge")
    shutil.copytree(EXAMPLE_KNOWLEDGE, project / "knowledge")
    server = nicobot_server(project)
    log_in(page, server)
    page.fill("#first_message", "hola! a que hora abren los sabados?")
    page.click("#new-chat button[type=submit]")
    page.wait_for_url(re.compile(r"session="))
    line = page.locator(".msg-assistant .msg-sources").first
    line.wait_for()
    session_id = page.url.rpartition("session=")[2]
    with server.client() as client:
        messages = client.get(f"/api/sessions/{session_id}").json()["messages"]
    sources = [s for m in messages for s in m.get("meta", {}).get("sources", [])]
    headings = {s["heading"] for s in sources if s["source"] == "horarios.md"}
    assert len(headings) >= 2  # two sections of one document are quoted
    shown = line.inner_text()
    assert shown.count("horarios.md") == 1
    assert all(heading in shown for heading in headings)
