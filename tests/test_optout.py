"""Opt-out: "baja" stops the bot in that chat (one confirmation, then silence) until "alta"."""

from __future__ import annotations

import asyncio
import json

import pytest
from click.testing import CliRunner

from nicobot.config import Settings
from nicobot.optout import OptOutKeywords, normalise
from nicobot.testing import FAKE_SECRET

HEADERS = {"Authorization": "", "X-Fake-Secret": FAKE_SECRET}


def keywords(language: str = "es", **optout: object) -> OptOutKeywords:
    return OptOutKeywords.from_settings(
        Settings.model_validate({"bot": {"language": language}, "optout": optout})
    )


@pytest.mark.parametrize(
    "text", ["baja", "BAJA", "Baja.", "¡baja!", "  baja  ", "No me escribas más", "STOP", "stop 🙏"]
)
def test_whole_message_keywords_opt_out(text):
    assert keywords().wants_out(text)


@pytest.mark.parametrize(
    "text",
    ["no quiero darme de baja", "¿cómo me doy de baja del gimnasio?", "bajá el precio", "stopper"],
)
def test_a_keyword_inside_a_longer_message_does_not(text):
    assert not keywords().wants_out(text)


def test_opt_in_keywords_and_languages():
    assert keywords().wants_in("Alta") and keywords().wants_in("start")
    assert keywords("en").wants_out("Unsubscribe!") and not keywords("en").wants_out("baja")
    assert keywords("en").wants_in("START")


def test_configured_keywords_replace_the_defaults():
    custom = keywords(opt_out_keywords=["Chau bot"], opt_in_keywords=["Volví"])
    assert custom.wants_out("chau, bot") and not custom.wants_out("baja")
    assert custom.wants_in("volvi") and custom.opt_in_word == "volvi"
    off = keywords(enabled=False)
    assert not off.wants_out("baja") and not off.wants_in("alta")


def test_normalise():
    assert normalise("  ¡NO me escribás MÁS!! ") == "no me escribas mas"


async def deliver(client, message_id: str, text: str, address: str = "5491100000001") -> None:
    response = await client.post(
        "/api/webhooks/fake",
        json={"id": message_id, "address": address, "text": text},
        headers=HEADERS,
    )
    assert response.status_code == 200


class TestInAConversation:
    @pytest.fixture
    def nicobot_env(self, fake_llm):
        return {**fake_llm.env, "NICOBOT_LANGUAGE": "es"}

    async def test_baja_confirms_once_then_silence_until_alta(
        self, nicobot_client, nicobot_bot, fake_channel, fake_llm
    ):
        await deliver(nicobot_client, "m1", "hola")
        await nicobot_bot.pipeline.wait_idle(20)
        await deliver(nicobot_client, "m2", "Baja")
        await nicobot_bot.pipeline.wait_idle(20)
        assert [m.text for m in fake_channel.sent] == [
            "Echo: hola",
            "Listo, no te vamos a escribir más. Si querés volver a hablar con nosotros, "
            "escribí ALTA.",
        ]
        [session] = await nicobot_bot.store.list_sessions(channel="fake")
        assert session.opted_out

        for n, text in enumerate(["¿sigue ahí?", "baja", "una consulta"]):
            await deliver(nicobot_client, f"quiet-{n}", text)
        await nicobot_bot.pipeline.wait_idle(20)
        assert len(fake_channel.sent) == 2  # silence, not even a second confirmation
        assert len(fake_llm.requests) == 1
        stored = [m.text for m in await nicobot_bot.store.list_messages(session.id)]
        assert stored[-3:] == ["¿sigue ahí?", "baja", "una consulta"]

        listing = await (await nicobot_client.get("/api/sessions?channel=fake")).get_json()
        assert listing["sessions"][0]["opted_out"] is True

        await deliver(nicobot_client, "m3", "alta")
        await nicobot_bot.pipeline.wait_idle(20)
        await deliver(nicobot_client, "m4", "¿abren hoy?")
        await nicobot_bot.pipeline.wait_idle(20)
        assert [m.text for m in fake_channel.sent[2:]] == [
            "¡Hola de nuevo! ¿En qué te puedo ayudar?",
            "Echo: ¿abren hoy?",
        ]
        assert not (await nicobot_bot.store.get_session(session.id)).opted_out

    async def test_baja_and_alta_count_while_a_person_has_the_conversation(
        self, nicobot_client, nicobot_bot, fake_channel, fake_llm
    ):
        await deliver(nicobot_client, "p1", "hola")
        await nicobot_bot.pipeline.wait_idle(20)
        [session] = await nicobot_bot.store.list_sessions(channel="fake")
        assert await nicobot_bot.pause(session.id, 30)
        await deliver(nicobot_client, "p2", "baja")
        await nicobot_bot.pipeline.wait_idle(20)
        assert (await nicobot_bot.store.get_session(session.id)).opted_out
        assert [m.text for m in fake_channel.sent] == ["Echo: hola"]  # the person answers
        await nicobot_bot.resume(session.id)
        await deliver(nicobot_client, "p3", "una consulta")
        await nicobot_bot.pipeline.wait_idle(20)
        assert [m.text for m in fake_channel.sent] == ["Echo: hola"]  # opted out: silence
        assert await nicobot_bot.pause(session.id, 30)
        await deliver(nicobot_client, "p4", "alta")
        await nicobot_bot.pipeline.wait_idle(20)
        assert not (await nicobot_bot.store.get_session(session.id)).opted_out
        assert len(fake_llm.requests) == 1

    async def test_a_longer_message_is_answered(self, nicobot_client, nicobot_bot, fake_channel):
        await deliver(nicobot_client, "x1", "no quiero darme de baja")
        await nicobot_bot.pipeline.wait_idle(20)
        assert [m.text for m in fake_channel.sent] == ["Echo: no quiero darme de baja"]


def test_opted_out_is_persisted_and_exported(nicobot_project):
    from nicobot.cli import cli
    from nicobot.config import load_settings
    from nicobot.store.sqlite import SQLiteStore

    async def opt_out() -> None:
        store = SQLiteStore.from_settings(load_settings(nicobot_project, environ={}))
        await store.open()
        session, _ = await store.get_or_create_session("whatsapp", "5491100000002")
        assert await store.set_opted_out(session.id, True)
        await store.close()

    asyncio.run(opt_out())

    result = CliRunner().invoke(
        cli, ["sessions", "export", "--project", str(nicobot_project)], catch_exceptions=False
    )
    assert result.exit_code == 0, result.output
    [exported] = json.loads(result.stdout)
    assert exported["opted_out"] is True and exported["opted_out_at"]
    shown = CliRunner().invoke(
        cli, ["sessions", "show", exported["id"], "--project", str(nicobot_project)]
    )
    assert "Opted out on " in shown.stdout and "the bot stays silent" in shown.stdout
    csv = CliRunner().invoke(
        cli, ["sessions", "export", "--format", "csv", "--project", str(nicobot_project)]
    )
    assert csv.stdout.splitlines()[0].endswith(",opted_out")
