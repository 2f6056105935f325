"""The operator inbox in headless Chromium: a real `nicobot serve`, the fake Evolution
gateway as a process, live updates without reloads, and the layout at phone and laptop
sizes."""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
from nicobot_whatsapp_evolution.testing import GatewayProcess

from nicobot.testing import ServerProcess, free_port, make_project

pytestmark = pytest.mark.browser

SCHEMAS = (
    Path(__file__).resolve().parents[1].parent / "shared" / "fixtures" / "evolution" / "schemas"
)
API_KEY = "inbox-browser-key"
CUSTOMER = "5491100000777"
SIZES = ((390, 844), (1366, 900))


@pytest.fixture
def gateway() -> Iterator[GatewayProcess]:
    gw = GatewayProcess(API_KEY, SCHEMAS)
    yield gw
    gw.stop()


def eventually(what: str, check: Callable[[], Any], page: Any, seconds: float = 30.0) -> Any:
    """Poll ``check`` (a gateway or API call) while the page keeps running."""
    deadline = time.monotonic() + seconds
    while not (result := check()):
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {seconds:.0f} s waiting for {what}")
        page.wait_for_timeout(50)
    return result


def log_in(page: Any, server: ServerProcess) -> None:
    page.goto(server.url + "/login")
    page.fill("#password", server.password)
    page.click("button[type=submit]")
    page.wait_for_url(server.url + "/")


def test_an_operator_answers_a_whatsapp_customer_from_the_page(
    tmp_path, nicobot_server, gateway, page, screenshot
):
    port = free_port()
    server = nicobot_server(
        make_project(tmp_path / "bot"),
        {
            "EVOLUTION_API_URL": gateway.url,
            "EVOLUTION_API_KEY": API_KEY,
            "NICOBOT_PUBLIC_URL": f"http://127.0.0.1:{port}",
            "NICOBOT_CHANNELS__WHATSAPP__DEBOUNCE_SECONDS": "0",
            "NICOBOT_CHANNELS__WHATSAPP__TYPING_MAX_SECONDS": "0",
        },
        port=port,
    )
    log_in(page, server)

    # pair from the Channels tab; the card follows the scan without a reload
    page.goto(server.url + "/admin?tab=channels")
    card = page.locator("[data-channel=whatsapp]")
    card.locator("button.connect").click()
    card.locator("img.qr").wait_for()
    gateway.control("scan")
    page.locator("[data-channel=whatsapp][data-view=connected]").wait_for()

    # a customer writes; the bot answers on WhatsApp; the page shows it live
    page.goto(server.url + "/")
    gateway.control("deliver", text="Hola, ¿tienen envíos?", number=CUSTOMER, push_name="Ana")
    eventually("the bot's reply", lambda: gateway.texts_to(CUSTOMER), page)
    page.locator(".session-item a", has_text="Ana").click()
    page.wait_for_url(re.compile(r"session="))
    page.locator(".msg-assistant .delivery-sent").wait_for()

    # a person answers from the page: it reaches sendText and is marked sent, live
    page.fill("#message", "Hola Ana, soy Marta: sí, enviamos a todo el país.")
    page.press("#message", "Enter")
    operator = page.locator(".msg-operator", has_text="soy Marta")
    operator.locator(".delivery-sent").wait_for()
    assert gateway.texts_to(CUSTOMER)[-1] == "Hola Ana, soy Marta: sí, enviamos a todo el país."
    assert page.locator("#paused-note").is_visible()
    screenshot("inbox-operator-reply")

    # the bot stays quiet while a person answers; the echo is not a second message
    gateway.control("deliver", text="¡Genial, gracias!", number=CUSTOMER, push_name="Ana")
    page.locator(".msg-user", has_text="Genial").wait_for()
    assert len(gateway.texts_to(CUSTOMER)) == 2
    assert page.locator(".msg-operator").count() == 1
    assert page.locator(".msg-assistant").count() == 1

    # resumed, it answers again
    page.click("#paused-resume")
    page.locator("#paused-note").wait_for(state="hidden")
    gateway.control("deliver", text="¿Y los horarios?", number=CUSTOMER, push_name="Ana")
    page.locator(".msg-assistant").nth(1).wait_for()
    eventually("the bot's second reply", lambda: len(gateway.texts_to(CUSTOMER)) == 3, page)
    with server.client() as api:
        [session] = api.get("/api/sessions", params={"q": CUSTOMER}).json()["sessions"]
        roles = [m["role"] for m in api.get(f"/api/sessions/{session['id']}").json()["messages"]]
    assert roles == ["user", "assistant", "operator", "user", "user", "assistant"]

    # the Channels tab follows the phone unlinking, and says when the gateway is down
    page.goto(server.url + "/admin?tab=channels")
    card.locator(".status-text", has_text="Connected").wait_for()
    gateway.control("phone-logout")
    page.locator("[data-channel=whatsapp][data-view=disconnected]").wait_for()
    gateway.stop()  # nothing listens at its address any more
    card.locator(".status-text", has_text="Unreachable").wait_for()
    card.locator("button.connect").click()  # Connect with the gateway down: no endless wait
    card.locator(".status-text", has_text="Unreachable").wait_for()
    assert page.locator("[data-channel=whatsapp][data-view=disconnected]").is_visible()
    assert card.locator(".details").inner_text().strip()


def no_horizontal_overflow(page: Any) -> bool:
    return bool(
        page.evaluate(
            "document.documentElement.scrollWidth <= document.documentElement.clientWidth"
        )
    )


def test_every_page_fits_phones_and_laptops(tmp_path, nicobot_server, browser):
    # in Spanish: its labels are the longer ones
    project = make_project(tmp_path / "bot", language="es")
    with ThreadPoolExecutor(1) as pool:  # Playwright's own event loop runs in this thread
        session = pool.submit(asyncio.run, seed_long_conversation(project)).result()
    server = nicobot_server(project)
    pages = {
        "chat": "/",
        "conversation": f"/?session={session}",
        "new-chat": "/?new=1",
        **{f"admin-{tab}": f"/admin?tab={tab}" for tab in _admin_tabs(server)},
    }
    for width, height in SIZES:
        context = browser.new_context(viewport={"width": width, "height": height})
        page = context.new_page()
        page.set_default_timeout(15000)
        page.goto(server.url + "/login")
        assert no_horizontal_overflow(page), f"/login at {width}px"
        page.fill("#password", server.password)
        page.click("button[type=submit]")
        page.wait_for_url(server.url + "/")
        for name, path in pages.items():
            page.goto(server.url + path)
            page.wait_for_load_state("load")
            assert no_horizontal_overflow(page), f"{path} at {width}px"
            if name == "conversation":
                page.locator(".msg").nth(199).wait_for()
                composer = page.locator("#composer").bounding_box()
                assert composer is not None
                assert composer["y"] >= 0 and composer["y"] + composer["height"] <= height
                last = page.locator(".msg").nth(199).bounding_box()
                assert last is not None and last["y"] + last["height"] <= composer["y"] + 1
                assert page.locator(".conversation-head").bounding_box()["y"] >= 0
        context.close()


async def seed_long_conversation(project: Path) -> str:
    """A 200-message simulated conversation, written to the project's store."""
    from nicobot.models import Role
    from nicobot.store.sqlite import SQLiteStore

    store = SQLiteStore(project / "data" / "nicobot.sqlite3")
    await store.open()
    try:
        session, _ = await store.get_or_create_session(
            "simulator", "5491100000900", phone_number="5491100000900", sender_name="Ana Pérez"
        )
        for n in range(100):
            await store.add_message(session.id, Role.USER, f"m{n} " + "bla " * n)
            await store.add_message(session.id, Role.ASSISTANT, f"r{n}", {"mode": "offline"})
    finally:
        await store.close()
    return session.id


def _admin_tabs(server: ServerProcess) -> list[str]:
    html = httpx.get(server.url + "/admin", headers=server.headers).text
    return re.findall(r'href="/admin\?tab=(\w+)"', html)
