"""Allow and deny lists, and the per-sender rate limit (nothing lost, answered later)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from nicobot.config import ConfigError, Settings, load_settings
from nicobot.contacts import RATE_NOTICE_MODE, ContactRules, Rate, check_rate
from nicobot.testing import FAKE_SECRET, make_project

HEADERS = {"Authorization": "", "X-Fake-Secret": FAKE_SECRET}
NOW = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
MINUTE = timedelta(minutes=1)


def rules(**contacts: object) -> ContactRules:
    return ContactRules.from_settings(Settings.model_validate({"contacts": contacts}))


def test_deny_wins_and_numbers_compare_by_digits():
    deny = rules(deny=["+54 9 11 1234-5678", "99999*"])
    assert not deny.answers("5491112345678", "5491112345678")
    assert not deny.answers("999990001", None)
    assert deny.answers("5491100000000", "5491100000000")
    assert deny.answers("12345@lid", None)


def test_an_allow_list_answers_only_its_numbers():
    pilot = rules(allow=["5491100000001", "54351*", "777@lid"], deny=["5435100000009"])
    assert pilot.answers("5491100000001", "5491100000001")
    assert pilot.answers("5435100000002", "5435100000002")
    assert pilot.answers("777@LID", None)
    assert not pilot.answers("5435100000009", "5435100000009")
    assert not pilot.answers("5491100000002", "5491100000002")
    assert not pilot.answers("12345@lid", None)  # no number known: not on the list
    assert pilot.answers("12345@lid", "5491100000001")


def test_a_list_entry_without_digits_stops_startup(tmp_path):
    project = make_project(tmp_path / "p", contacts='[contacts]\ndeny = ["proveedor"]')
    with pytest.raises(ConfigError, match=r"contacts\.deny: 'proveedor' is not a phone number"):
        load_settings(project, environ={})


def test_the_rate_limit_counts_replies_in_the_window():
    replies = [(NOW - timedelta(seconds=s), "llm") for s in (90, 50, 30, 10)]
    allowed = check_rate(replies, limit=4, window=MINUTE, now=NOW)
    assert allowed.verdict is Rate.ANSWER
    over = check_rate(replies, limit=3, window=MINUTE, now=NOW)
    assert over.verdict is Rate.NOTICE
    assert over.retry_at == NOW - timedelta(seconds=50) + MINUTE
    told = [*replies, (NOW - timedelta(seconds=5), RATE_NOTICE_MODE)]
    assert check_rate(told, limit=3, window=MINUTE, now=NOW).verdict is Rate.WAIT
    assert check_rate(told, limit=0, window=MINUTE, now=NOW).verdict is Rate.ANSWER


async def deliver(client, message_id: str, address: str, text: str) -> None:
    response = await client.post(
        "/api/webhooks/fake",
        json={"id": message_id, "address": address, "text": text},
        headers=HEADERS,
    )
    assert response.status_code == 200


class TestLists:
    @pytest.fixture
    def nicobot_project(self, tmp_path):
        return make_project(
            tmp_path / "project",
            contacts='[contacts]\ndeny = ["+54 9 11 0000-0666"]',
        )

    @pytest.fixture
    def nicobot_env(self, fake_llm):
        return fake_llm.env

    async def test_a_denied_number_gets_no_reply(
        self, nicobot_client, nicobot_bot, fake_channel, fake_llm
    ):
        await deliver(nicobot_client, "d1", "5491100000666", "hola")
        await deliver(nicobot_client, "ok1", "5491100000001", "hola")
        await nicobot_bot.pipeline.wait_idle(20)
        assert [(m.address, m.text) for m in fake_channel.sent] == [("5491100000001", "Echo: hola")]
        assert len(fake_llm.requests) == 1
        denied = [s for s in await nicobot_bot.store.list_sessions() if s.address.endswith("666")]
        assert [m.text for m in await nicobot_bot.store.list_messages(denied[0].id)] == ["hola"]


class TestRateLimit:
    @pytest.fixture
    def nicobot_env(self, fake_llm):
        return {
            **fake_llm.env,
            "NICOBOT_CONTACTS__RATE_LIMIT_PER_MINUTE": "3",
            "NICOBOT_CONTACTS__RATE_WINDOW_SECONDS": "2",
        }

    async def test_twenty_messages_get_the_limit_one_notice_and_the_rest_later(
        self, nicobot_client, nicobot_bot, fake_channel, fake_llm
    ):
        for n in range(20):
            await deliver(nicobot_client, f"r{n}", "5491100000007", f"msg {n}")
        await nicobot_bot.pipeline.wait_idle(30)
        texts = [m.text for m in fake_channel.sent]
        notice = (
            "You're writing faster than I can answer. I'll reply to your latest messages "
            "in a moment."
        )
        replies = [t for t in texts if t != notice]
        assert texts.count(notice) == 1
        assert texts.index(notice) == 3
        assert [t for t in replies[:3]] == [f"Echo: msg {n}" for n in range(3)]
        # the rest waited in the inbox and were answered once the window passed, together
        # (in one turn, unless the webhooks themselves took longer than the window)
        later = "\n".join(replies[3:]).replace("Echo: ", "").splitlines()
        assert later == [f"msg {n}" for n in range(3, 20)]
        assert len(replies) - 3 <= 2
        assert len(fake_llm.requests) == len(replies)
        [session] = await nicobot_bot.store.list_sessions(channel="fake")
        stored = await nicobot_bot.store.list_messages(session.id)
        assert sum(m.role.value == "user" for m in stored) == 20
        assert [m.meta.get("mode") for m in stored if m.role.value == "assistant"].count(
            RATE_NOTICE_MODE
        ) == 1


class TestRateLimitInTheSimulator:
    @pytest.fixture
    def nicobot_env(self, fake_llm):
        return {
            **fake_llm.env,
            "NICOBOT_CONTACTS__RATE_LIMIT_PER_MINUTE": "1",
            "NICOBOT_CONTACTS__RATE_WINDOW_SECONDS": "600",
        }

    async def test_the_page_gets_the_notice_at_once(self, nicobot_client):
        import asyncio

        async def chat(text: str, within: float = 15) -> dict:
            body = {"phone_number": "5491100000042", "message": text}
            async with asyncio.timeout(within):  # not the LLM timeout and more
                return await (await nicobot_client.post("/api/chat", json=body)).get_json()

        first = await chat("hola", within=120)  # litellm may still be importing
        second = await chat("¿sigue?")
        assert (first["reply"], first["mode"]) == ("Echo: hola", "llm")
        assert second["mode"] == RATE_NOTICE_MODE and second["reply"].startswith("You're writing")
