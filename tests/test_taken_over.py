"""A person who takes over while the bot is still writing its reply: the draft is not sent."""

from __future__ import annotations

import pytest

from nicobot import IncomingMessage, hookimpl
from nicobot.testing import FakeChannelPlugin


class OperatorRepliesMeanwhile:
    """Pauses the conversation while the reply is being written, as an operator's reply
    from the chat page does."""

    @hookimpl
    async def before_reply(self, bot, context):
        await bot.pause(context.session.id, minutes=30)


@pytest.fixture
def nicobot_env(fake_llm):
    return fake_llm.env


@pytest.fixture
def nicobot_plugins():
    return [(FakeChannelPlugin(), "nicobot-fake-channel"), (OperatorRepliesMeanwhile(), "operator")]


async def test_a_reply_written_while_a_person_took_over_is_not_sent(
    nicobot_bot, fake_llm, fake_channel
):
    message = IncomingMessage("fake", "5491100000077", "hola", "t-1")
    turn = await nicobot_bot.converse(message)
    assert fake_llm.requests  # the model was asked
    assert turn.reply is None
    await nicobot_bot.pipeline.wait_idle(10)
    assert fake_channel.sent == []
    messages = await nicobot_bot.store.list_messages(turn.session.id)
    assert [m.role for m in messages] == ["user"]
