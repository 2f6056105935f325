"""transcribe_audio: plugins are asked in order until one returns a text; a failing one is
skipped; the text is answered like a typed message."""

from __future__ import annotations

import asyncio

import pytest

from nicobot import Channel, IncomingMessage, MediaFile, MessageKind, WebhookResult, hookimpl
from nicobot.testing import FakeChannel

VOICE = b"OggS-not-really-a-voice-note"


class VoiceChannel(FakeChannel):
    """Every webhook body is a voice note whose file is ``VOICE``."""

    name = "voice"
    label = "Voice"
    webhook_slug = "voice"

    async def handle_webhook(self, request):
        body = request.json
        message = IncomingMessage(
            channel=self.name,
            address=body["address"],
            text="",
            message_id=body["id"],
            kind=MessageKind.AUDIO,
            media={"type": "audio"},
        )
        return WebhookResult(messages=[message])

    async def fetch_media(self, message, max_bytes):
        return MediaFile(VOICE, "audio/ogg; codecs=opus", "voice.ogg")


class VoicePlugin:
    @hookimpl
    def register_channels(self) -> list[type[Channel]]:
        return [VoiceChannel]


class Declines:
    asked = 0

    @hookimpl
    def transcribe_audio(self, audio):
        type(self).asked += 1


class Raises:
    @hookimpl
    async def transcribe_audio(self, audio):
        raise RuntimeError("boom")


class Transcribes:
    @hookimpl
    async def transcribe_audio(self, bot, session, audio):
        return f"{len(audio.data)} bytes of {audio.mimetype}"


class NeverAsked:
    @hookimpl
    def transcribe_audio(self, audio):
        raise AssertionError("asked after a text was returned")


@pytest.fixture
def nicobot_env(fake_llm):
    return fake_llm.env


@pytest.fixture
def nicobot_plugins():
    Declines.asked = 0
    # called last-registered first: Declines, Raises, Transcribes; NeverAsked is never reached
    return [
        (VoicePlugin(), "voice"),
        (NeverAsked(), "never-asked"),
        (Transcribes(), "transcribes"),
        (Raises(), "raiser"),
        (Declines(), "declines"),
    ]


async def test_hook_transcribe_audio(nicobot_client, nicobot_bot, fake_llm, caplog):
    response = await nicobot_client.post(
        "/api/webhooks/voice", json={"id": "v-1", "address": "5550001"}
    )
    assert response.status_code == 200
    channel = nicobot_bot.channels.get("voice")
    async with asyncio.timeout(20):
        [sent] = await channel.wait_for_sent(1)
    assert sent.text == f"Echo: {len(VOICE)} bytes of audio/ogg; codecs=opus"
    assert Declines.asked == 1
    assert "plugin 'raiser': transcribe_audio failed" in caplog.text
