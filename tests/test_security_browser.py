"""The pages work under their Content-Security-Policy, and cannot be framed."""

from __future__ import annotations

import re

import pytest

from nicobot.testing import make_project

pytestmark = pytest.mark.browser

TABS = ("dashboard", "prompt", "knowledge", "channels", "business", "deliveries")


def test_every_page_works_under_the_csp_and_none_can_be_framed(tmp_path, nicobot_server, page):
    server = nicobot_server(make_project(tmp_path / "p"))
    violations: list[str] = []
    page.on(
        "console",
        lambda message: (
            violations.append(message.text) if "Content Security Policy" in message.text else None
        ),
    )
    page.goto(server.url + "/")
    page.wait_for_url(re.compile(r"/login"))
    page.fill("#password", server.password)
    page.click("button[type=submit]")
    page.wait_for_url(server.url + "/")
    page.fill("#phone_number", "5491100000042")
    page.fill("#first_message", "hola")
    page.click("#new-chat button[type=submit]")
    page.locator(".msg-assistant .msg-text").first.wait_for()
    for tab in TABS:
        page.goto(f"{server.url}/admin?tab={tab}")
        page.wait_for_load_state("networkidle")
    # the knowledge tab's script ran (it lists the sample document)
    page.goto(f"{server.url}/admin?tab=knowledge")
    page.locator("#knowledge-documents code").first.wait_for()
    # the language menu switches without an inline handler
    page.select_option("#lang-select", "es")
    page.wait_for_load_state("networkidle")
    assert page.locator("html").get_attribute("lang") == "es"
    assert violations == []

    framing = page.context.new_page()  # logged in: the page would show if it could
    framing.set_content(f'<iframe id="f" src="{server.url}/admin"></iframe>')  # waits for load
    [child] = [frame for frame in framing.frames if frame != framing.main_frame]
    assert not child.url.startswith(server.url)
