"""after_reply: a chain in pluggy's order; a failing or hanging edit leaves the reply as it was."""

from __future__ import annotations

import asyncio
import logging

import pytest

from nicobot import IncomingMessage, hookimpl
from nicobot.testing import FakeChannelPlugin


class Suffix:
    def __init__(self, mark: str) -> None:
        self.mark = mark

    @hookimpl
    def after_reply(self, bot, context, reply):
        return f"{reply} [{self.mark}]"


class AsyncSuffix(Suffix):
    @hookimpl(tryfirst=True)
    async def after_reply(self, bot, context, reply):
        return f"{reply} [{self.mark}]"


class Raises:
    @hookimpl
    async def after_reply(self, reply):
        raise RuntimeError("boom")


class Hangs:
    @hookimpl
    async def after_reply(self, reply):
        await asyncio.Event().wait()


@pytest.fixture
def nicobot_env(fake_llm):
    return {**fake_llm.env, "NICOBOT_PLUGINS__HOOK_TIMEOUT_SECONDS": "0.3"}


@pytest.fixture
def nicobot_plugins():
    return [
        FakeChannelPlugin(),
        (Suffix("alpha"), "alpha"),
        (Raises(), "raiser"),
        (Hangs(), "hanger"),
        (Suffix("omega"), "omega"),
        (AsyncSuffix("first"), "first"),
    ]


async def test_hook_after_reply(nicobot_bot, caplog):
    caplog.set_level(logging.WARNING, logger="nicobot.plugins")
    turn = await nicobot_bot.converse(IncomingMessage("simulator", "5550001", "hola", "m-1"))
    # tryfirst first, then the last registered plugin to the first; every edit applies
    assert turn.reply == "Echo: hola [first] [omega] [alpha]"
    messages = await nicobot_bot.store.list_messages(turn.session.id)
    [stored] = [m.text for m in messages if m.role == "assistant"]
    assert stored == turn.reply
    logged = caplog.text
    assert "plugin 'raiser': after_reply failed" in logged
    assert "plugin 'hanger': after_reply took longer than 0.3 s" in logged


class NotAString:
    @hookimpl
    def after_reply(self, reply):
        return 42


@pytest.mark.parametrize("nicobot_plugins", [[(NotAString(), "numbers")]])
async def test_a_value_that_is_not_a_string_is_ignored_and_logged(nicobot_bot, fake_llm, caplog):
    turn = await nicobot_bot.converse(IncomingMessage("simulator", "5550002", "hola", "m-2"))
    assert turn.reply == "Echo: hola"
    assert "plugin 'numbers': after_reply returned int" in caplog.text
