"""Media messages: what parsing keeps to fetch the file later, and decoding the file."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from nicobot import MessageKind

from nicobot_whatsapp_evolution.media import decode_media
from nicobot_whatsapp_evolution.parsing import MessageEvent, parse_webhook

MEDIA = next(
    (
        folder / "shared" / "fixtures" / "evolution" / "media"
        for folder in Path(__file__).resolve().parents
        if (folder / "shared" / "fixtures" / "evolution" / "media").is_dir()
    ),
    Path(__file__).resolve().parents[3] / ".." / "shared" / "fixtures" / "evolution" / "media",
)


def parsed(name: str, **options: Any) -> MessageEvent:
    payload = json.loads((MEDIA / f"v2_messages_upsert_{name}.json").read_text("utf-8"))
    [event] = parse_webhook(payload, now=datetime.now(UTC), max_age_seconds=10**10, **options)
    assert isinstance(event, MessageEvent)
    return event


def test_a_voice_note_keeps_the_webhooks_copy_and_what_fetches_it():
    message = parsed("audioMessage_ptt_base64").message
    assert message.kind is MessageKind.AUDIO and message.text == ""
    media = message.media
    assert media is not None
    assert media["type"] == "audio" and media["voice_note"] is True
    assert media["mimetype"] == "audio/ogg; codecs=opus"
    assert media["file_length"] == 3001
    assert media["key"]["id"] == "0704D90CA2DFA8016A5865E0711E7557"
    assert "audioMessage" in media["message"] and "base64" not in media["message"]
    assert len(base64.b64decode(media["base64"])) > 0
    assert "base64" not in repr(message)  # the media never reaches a log line


def test_a_copy_over_the_limit_is_left_to_be_fetched():
    media = parsed("audioMessage_ptt_base64", max_media_bytes=1000).message.media
    assert media is not None and "base64" not in media


def test_images_and_stickers_carry_a_reference_too():
    image = parsed("imageMessage_caption").message
    assert image.kind is MessageKind.TEXT and image.text == "¿Tienen este modelo en negro?"
    assert image.media is not None and image.media["type"] == "image"
    assert image.media["file_length"] == 187342
    sticker = parsed("stickerMessage").message
    assert sticker.kind is MessageKind.OTHER
    assert sticker.media is not None and sticker.media["mimetype"] == "image/webp"
    assert parsed("documentMessage_caption").message.media is None


def test_decoding_bounds_and_names_the_file():
    reference = {"type": "audio", "mimetype": "audio/ogg; codecs=opus"}
    fetched = {"base64": base64.b64encode(b"x" * 100).decode(), "mimetype": "audio/ogg"}
    media = decode_media("ABC", reference, fetched, max_bytes=1000)
    assert media is not None and media.data == b"x" * 100 and media.filename == "ABC.oga"
    assert decode_media("ABC", reference, fetched, max_bytes=99) is None
    assert decode_media("ABC", reference, {"base64": "not base64!"}, max_bytes=1000) is None
    assert decode_media("ABC", {**reference, "base64": "eHl6"}, None, 1000).data == b"xyz"
    assert "xyz" not in repr(decode_media("ABC", {**reference, "base64": "eHl6"}, None, 1000))


@pytest.mark.parametrize("name", ["../x.oga", "", None])
def test_an_unsafe_file_name_is_replaced(name):
    fetched = {"base64": "eHl6", "mimetype": "image/jpeg", "fileName": name}
    media = decode_media("IMG1", {"type": "image"}, fetched, 1000)
    assert media is not None and media.filename == "IMG1.jpg"
