"""before_reply: each implementation edits the LLM's messages in turn; a failing one is skipped."""

from __future__ import annotations

import pytest

from nicobot import IncomingMessage, hookimpl


class Shout:
    @hookimpl
    async def before_reply(self, bot, context):
        context.llm_messages.insert(1, {"role": "system", "content": "Shout."})


class Raises:
    @hookimpl
    def before_reply(self, context):
        raise ValueError("no")


@pytest.fixture
def nicobot_env(fake_llm):
    return fake_llm.env


@pytest.fixture
def nicobot_plugins():
    return [(Shout(), "shout"), (Raises(), "raiser")]


async def test_hook_before_reply(nicobot_bot, fake_llm, caplog):
    turn = await nicobot_bot.converse(IncomingMessage("simulator", "5550001", "hola", "m-1"))
    assert turn.reply == "Echo: hola"
    assert fake_llm.last_messages()[1] == {"role": "system", "content": "Shout."}
    assert "plugin 'raiser': before_reply failed" in caplog.text
