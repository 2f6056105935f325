"""Voice notes: fetched from the WhatsApp gateway, transcribed through litellm (a fake
OpenAI-compatible server), stored with the message and answered like text."""

from __future__ import annotations

import asyncio
import base64
import copy
import json
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from nicobot_whatsapp_evolution.testing import FakeGateway

from nicobot import MediaFile, hookimpl
from nicobot.testing import FakeLLM

# ../shared beside the checkout (or beside a folder of checkouts)
FIXTURES = next(
    (
        folder / "shared" / "fixtures" / "evolution"
        for folder in Path(__file__).resolve().parents[1].parents
        if (folder / "shared" / "fixtures" / "evolution").is_dir()
    ),
    Path(__file__).resolve().parents[2] / "shared" / "fixtures" / "evolution",
)
SECRET = "media-webhook-secret"
INSTANCE = "my-instance"  # the recorded payloads' instance
AUDIO_FIXTURE = "media/v2_messages_upsert_audioMessage_ptt_base64.json"
NON_TEXT = "Sorry, I can only read text messages for now. Could you write it to me?"


def voice_note(message_id: str, *, with_base64: bool = True) -> dict[str, Any]:
    """The recorded ``audioMessage`` webhook, fresh, with its own id."""
    payload = json.loads((FIXTURES / AUDIO_FIXTURE).read_text(encoding="utf-8"))
    payload = copy.deepcopy(payload)
    payload["data"]["key"]["id"] = message_id
    payload["data"]["messageTimestamp"] = int(time.time())
    if not with_base64:
        payload["data"]["message"].pop("base64", None)
    return payload


def recorded_audio() -> bytes:
    payload = json.loads((FIXTURES / AUDIO_FIXTURE).read_text(encoding="utf-8"))
    return base64.b64decode(payload["data"]["message"]["base64"])


@pytest.fixture
def gateway() -> Iterator[FakeGateway]:
    with FakeGateway(api_key="global-key") as fake:
        fake.add_instance(INSTANCE, state="open")
        yield fake


def whatsapp_env(gateway: FakeGateway) -> dict[str, str]:
    return {
        "EVOLUTION_API_URL": gateway.url,
        "EVOLUTION_API_KEY": gateway.api_key,
        "EVOLUTION_INSTANCE_NAME": INSTANCE,
        "EVOLUTION_WEBHOOK_SECRET": SECRET,
        "NICOBOT_CHANNELS__WHATSAPP__MANAGE_WEBHOOK": "false",
        "NICOBOT_CHANNELS__WHATSAPP__DEBOUNCE_SECONDS": "0",
        "NICOBOT_CHANNELS__WHATSAPP__TYPING_MAX_SECONDS": "0",
    }


async def post(client, payload: dict[str, Any]) -> None:
    response = await client.post(
        "/api/webhooks/evolution",
        json=payload,
        headers={"Authorization": "", "x-nicobot-secret": SECRET},
    )
    assert response.status_code == 200, await response.get_data(as_text=True)
    assert (await response.get_json())["messages"] == 1


async def sent_texts(gateway: FakeGateway, count: int) -> list[str]:
    for _ in range(400):
        if len(gateway.sent) >= count:
            break
        await asyncio.sleep(0.05)
    return [s.text for s in gateway.sent]


def transcription_env(fake_llm: FakeLLM, gateway: FakeGateway) -> dict[str, str]:
    return {
        **fake_llm.env,
        **whatsapp_env(gateway),
        "NICOBOT_MEDIA__TRANSCRIPTION_MODEL": "openai/whisper-1",
        "NICOBOT_MEDIA__TRANSCRIPTION_API_BASE": fake_llm.api_base,
        "NICOBOT_MEDIA__TRANSCRIPTION_API_KEY": "fake-key",
    }


class TestWithATranscriptionModel:
    @pytest.fixture
    def nicobot_env(self, fake_llm, gateway):
        return transcription_env(fake_llm, gateway)

    async def test_a_voice_note_is_answered_from_its_transcript(
        self, nicobot_client, nicobot_bot, fake_llm, gateway
    ):
        await post(nicobot_client, voice_note("VOICE1"))
        await nicobot_bot.pipeline.wait_idle(30)
        assert await sent_texts(gateway, 1) == ["Echo: Hola, ¿a qué hora abren mañana?"]
        [upload] = fake_llm.transcriptions
        assert upload["model"] == "whisper-1"
        assert upload["data"] == recorded_audio()  # the webhook's own copy, decoded
        assert upload["filename"] == "VOICE1.oga"
        assert gateway.media_requests == []
        [session] = await nicobot_bot.store.list_sessions(channel="whatsapp")
        user = (await nicobot_bot.store.list_messages(session.id))[0]
        assert user.text == "Hola, ¿a qué hora abren mañana?"
        assert user.meta == {"message_id": "VOICE1", "kind": "audio", "transcribed": True}
        detail = await (await nicobot_client.get(f"/api/sessions/{session.id}")).get_json()
        assert detail["messages"][0]["text"] == "Hola, ¿a qué hora abren mañana?"
        page = await (await nicobot_client.get(f"/?session={session.id}")).get_data(as_text=True)
        assert '"transcribed": true' in page and "voice note, transcribed" in page

    async def test_without_the_webhooks_copy_the_file_is_fetched(
        self, nicobot_client, nicobot_bot, fake_llm, gateway
    ):
        gateway.add_media("VOICE2", b"OggS-fake-voice-note", "audio/ogg; codecs=opus")
        fake_llm.transcript = "¿Tienen envío a Córdoba?"
        await post(nicobot_client, voice_note("VOICE2", with_base64=False))
        await nicobot_bot.pipeline.wait_idle(30)
        assert await sent_texts(gateway, 1) == ["Echo: ¿Tienen envío a Córdoba?"]
        assert gateway.media_requests == ["VOICE2"]
        assert fake_llm.transcriptions[0]["data"] == b"OggS-fake-voice-note"

    async def test_a_file_that_is_gone_gets_the_canned_reply(
        self, nicobot_client, nicobot_bot, fake_llm, gateway
    ):
        await post(nicobot_client, voice_note("GONE", with_base64=False))
        await nicobot_bot.pipeline.wait_idle(30)
        assert await sent_texts(gateway, 1) == [NON_TEXT]
        assert fake_llm.transcriptions == []


class TestTranscriptionInTheLLMProcess:
    """``[llm] process = "separate"`` with an OpenAI-compatible chat model: the reply is
    POSTed from the server, the transcription (a litellm call) runs in the child."""

    @pytest.fixture
    def nicobot_env(self, fake_llm, gateway):
        return {
            **transcription_env(fake_llm, gateway),
            "NICOBOT_LLM__PROCESS": "separate",
        }

    async def test_the_transcription_runs_in_the_child(
        self, nicobot_client, nicobot_bot, fake_llm, gateway
    ):
        await post(nicobot_client, voice_note("VOICE-CHILD"))
        await nicobot_bot.pipeline.wait_idle(60)
        assert await sent_texts(gateway, 1) == ["Echo: Hola, ¿a qué hora abren mañana?"]
        assert len(fake_llm.transcriptions) == 1
        runner = nicobot_bot.agent.llm
        assert runner.pid == os.getpid()  # where the completion ran
        assert runner.child.pid not in (None, os.getpid())  # where the transcription ran


class TestWithoutATranscriptionModel:
    @pytest.fixture
    def nicobot_env(self, fake_llm, gateway):
        return {**fake_llm.env, **whatsapp_env(gateway)}

    async def test_the_canned_reply_once_per_hour(
        self, nicobot_client, nicobot_bot, fake_llm, gateway
    ):
        for n in range(3):
            await post(nicobot_client, voice_note(f"QUIET{n}"))
        await nicobot_bot.pipeline.wait_idle(30)
        assert await sent_texts(gateway, 1) == [NON_TEXT]
        assert fake_llm.transcriptions == [] and fake_llm.requests == []
        assert gateway.media_requests == []


class Transcriber:
    @hookimpl
    async def transcribe_audio(self, bot, session, audio: MediaFile) -> str | None:
        return f"{len(audio.data)} bytes of {audio.mimetype}"


class TestATranscriberPlugin:
    @pytest.fixture
    def nicobot_env(self, fake_llm, gateway):
        return {**fake_llm.env, **whatsapp_env(gateway)}

    async def test_the_hook_transcribes_without_a_model(
        self, nicobot_client, nicobot_bot, fake_llm, gateway
    ):
        nicobot_bot.pm.register(Transcriber())
        await post(nicobot_client, voice_note("HOOK1"))
        await nicobot_bot.pipeline.wait_idle(30)
        size = len(recorded_audio())
        assert await sent_texts(gateway, 1) == [f"Echo: {size} bytes of audio/ogg; codecs=opus"]
        assert fake_llm.transcriptions == []


async def test_a_transcription_call_crosses_the_llm_process_pipe_as_json(fake_llm):
    """What the LLM child process receives is one JSON line: the call must survive it."""
    from nicobot.llm_process import load_litellm, run_call

    kwargs = {
        "model": "openai/whisper-1",
        "file_base64": base64.b64encode(b"OggS-voice").decode("ascii"),
        "filename": "V.oga",
        "mimetype": "audio/ogg; codecs=opus",
        "language": "es",
        "timeout": 10,
        "api_base": fake_llm.api_base,
        "api_key": "fake-key",
    }
    text = await run_call(await load_litellm(), "atranscription", json.loads(json.dumps(kwargs)))
    assert text == "Hola, ¿a qué hora abren mañana?"
    [upload] = fake_llm.transcriptions
    assert upload["data"] == b"OggS-voice" and upload["language"] == "es"
    assert upload["content_type"] == "audio/ogg"


IMAGE_FIXTURE = "media/v2_messages_upsert_imageMessage_caption.json"
STICKER_FIXTURE = "media/v2_messages_upsert_stickerMessage.json"
JPEG = b"\xff\xd8\xff\xe0fake-jpeg"


def recorded(name: str, message_id: str) -> dict[str, Any]:
    payload = json.loads((FIXTURES / name).read_text(encoding="utf-8"))
    payload["data"]["key"]["id"] = message_id
    payload["data"]["messageTimestamp"] = int(time.time())
    return payload


def describe_images(messages: list[dict[str, Any]]) -> str:
    content = messages[-1]["content"]
    if isinstance(content, str):
        return f"text only: {content}"
    kinds = [part["type"] for part in content]
    caption = next((part["text"] for part in content if part["type"] == "text"), "")
    return f"{kinds} {caption}".strip()


class TestImagesWithVision:
    @pytest.fixture
    def nicobot_env(self, fake_llm, gateway):
        return {**fake_llm.env, **whatsapp_env(gateway), "NICOBOT_MEDIA__VISION": "on"}

    async def test_the_image_goes_to_the_model_with_its_caption(
        self, nicobot_client, nicobot_bot, fake_llm, gateway
    ):
        fake_llm.reply = describe_images
        gateway.add_media("IMG1", JPEG, "image/jpeg")
        gateway.add_media("STK1", b"RIFF-fake-webp", "image/webp")
        await post(nicobot_client, recorded(IMAGE_FIXTURE, "IMG1"))
        await nicobot_bot.pipeline.wait_idle(30)
        await post(nicobot_client, recorded(STICKER_FIXTURE, "STK1"))
        await nicobot_bot.pipeline.wait_idle(30)
        assert await sent_texts(gateway, 2) == [
            "['text', 'image_url'] ¿Tienen este modelo en negro?",
            "['image_url']",  # a sticker: no caption, still answered
        ]
        image_part = fake_llm.requests[0]["messages"][-1]["content"][1]
        assert image_part["image_url"]["url"] == (
            "data:image/jpeg;base64," + base64.b64encode(JPEG).decode()
        )
        assert gateway.media_requests == ["IMG1", "STK1"]


class TestImagesWithoutVision:
    @pytest.fixture
    def nicobot_env(self, fake_llm, gateway):
        return {**fake_llm.env, **whatsapp_env(gateway)}  # auto: litellm does not know the model

    async def test_a_caption_is_answered_and_a_sticker_gets_the_canned_reply(
        self, nicobot_client, nicobot_bot, fake_llm, gateway
    ):
        fake_llm.reply = describe_images
        await post(nicobot_client, recorded(IMAGE_FIXTURE, "IMG2"))
        await nicobot_bot.pipeline.wait_idle(30)
        await post(nicobot_client, recorded(STICKER_FIXTURE, "STK2"))
        await nicobot_bot.pipeline.wait_idle(30)
        assert await sent_texts(gateway, 2) == [
            "text only: ¿Tienen este modelo en negro?",
            NON_TEXT,
        ]
        assert gateway.media_requests == []


async def test_auto_vision_asks_litellm_about_the_model(nicobot_bot):
    from nicobot.media import MediaReader

    nicobot_bot.settings.llm.model = "openai/gpt-4o-mini"
    assert await MediaReader(nicobot_bot).vision()
    nicobot_bot.settings.llm.model = "openai/gpt-3.5-turbo"
    assert not await MediaReader(nicobot_bot).vision()
