"""Voice notes and images: what a turn's media become before the agent answers.

A voice note is fetched from its channel, transcribed (by a plugin's ``transcribe_audio``
hook, else through litellm with ``[media] transcription_model``), stored as its message's
text and answered like text. An image goes to a vision-capable model with its caption.
"""

from __future__ import annotations

import base64
import logging
from typing import TYPE_CHECKING, Any

from .models import InboxEntry, MediaFile, MessageKind

if TYPE_CHECKING:
    from .bot import Bot
    from .models import ChatSession, ClaimedTurn

log = logging.getLogger("nicobot.media")

#: How much longer than its own timeout a transcription is waited for.
TRANSCRIBE_MARGIN_SECONDS = 5.0
VISION_CHECK_SECONDS = 60.0


def attach_images(llm_messages: list[dict[str, Any]], images: list[MediaFile]) -> None:
    """Turn the last user message into OpenAI-style content parts: its text (the caption)
    and each image as an ``image_url`` holding a data URI."""
    if not images or not llm_messages or llm_messages[-1].get("role") != "user":
        return
    last = llm_messages[-1]
    text = last.get("content")
    parts: list[dict[str, Any]] = []
    if isinstance(text, str) and text.strip():
        parts.append({"type": "text", "text": text})
    parts += [{"type": "image_url", "image_url": {"url": image.data_uri()}} for image in images]
    last["content"] = parts


class MediaReader:
    """Turns a claimed turn's messages into the texts (and images) the agent answers."""

    def __init__(self, bot: Bot) -> None:
        self.bot = bot
        self.settings = bot.settings.media
        self._vision: bool | None = None

    def _transcribers(self) -> bool:
        hook = self.bot.pm.hook.transcribe_audio
        return bool(self.settings.transcription_model) or bool(hook.get_hookimpls())

    async def texts(self, turn: ClaimedTurn) -> list[str]:
        """Each message's text, voice notes transcribed; messages without text left out."""
        texts = []
        for entry in turn.entries:
            message = entry.message
            text = message.text.strip()
            if message.kind is MessageKind.AUDIO and not text and self._transcribers():
                text = await self._transcript(turn.session, entry) or ""
            elif message.kind is not MessageKind.TEXT:
                text = ""
            if text:
                texts.append(text)
        return texts

    async def fetch(self, entry: InboxEntry) -> MediaFile | None:
        message = entry.message
        channel = self.bot.channels.get(message.channel)
        if channel is None or not message.media:
            return None
        try:
            return await channel.fetch_media(message, self.settings.max_bytes)
        except Exception as exc:  # a lost file is answered like any other non-text message
            log.warning("could not fetch the media of message %s: %s", message.message_id, exc)
            return None

    async def _transcript(self, session: ChatSession, entry: InboxEntry) -> str | None:
        audio = await self.fetch(entry)
        if audio is None:
            return None
        text = await self._transcribe(session, audio)
        if text and entry.message_row_id is not None:
            await self.bot.store.set_transcript(entry.message_row_id, text)
        return text

    async def _transcribe(self, session: ChatSession, audio: MediaFile) -> str | None:
        text = await self.bot.hooks.first(
            "transcribe_audio", bot=self.bot, session=session, audio=audio
        )
        if text is not None:
            return text
        if not self.settings.transcription_model:
            return None
        try:
            text = await self.bot.agent.llm.call(
                "atranscription",
                self.bot.settings.llm.timeout_seconds + TRANSCRIBE_MARGIN_SECONDS,
                **self._transcription_kwargs(audio),
            )
        except Exception as exc:
            log.warning("could not transcribe a voice note in session %s: %s", session.id, exc)
            return None
        return str(text).strip() or None

    async def images(self, turn: ClaimedTurn) -> list[MediaFile]:
        """The turn's images (and stickers), when the model can see them."""
        entries = [e for e in turn.entries if (e.message.media or {}).get("type") == "image"]
        if not entries or not await self.vision():
            return []
        fetched = [await self.fetch(entry) for entry in entries]
        return [image for image in fetched if image is not None]

    async def vision(self) -> bool:
        """``[media] vision``: on, off, or (auto) what litellm knows of ``[llm] model``."""
        if self.settings.vision != "auto":
            return self.settings.vision == "on"
        model = self.bot.settings.llm.model
        if not model:
            return False
        if self._vision is None:
            try:
                self._vision = bool(
                    await self.bot.agent.llm.call(
                        "supports_vision", VISION_CHECK_SECONDS, model=model
                    )
                )
            except Exception as exc:
                log.warning("could not ask litellm whether %s supports vision: %s", model, exc)
                return False
        return self._vision

    def _transcription_kwargs(self, audio: MediaFile) -> dict[str, Any]:
        kwargs: dict[str, Any] = {
            "model": self.settings.transcription_model,
            "file_base64": base64.b64encode(audio.data).decode("ascii"),
            "filename": audio.filename,
            "mimetype": audio.mimetype,
            "language": self.bot.settings.bot.language,
            "timeout": self.bot.settings.llm.timeout_seconds,
        }
        if self.settings.transcription_api_base:
            kwargs["api_base"] = self.settings.transcription_api_base
        if self.settings.transcription_api_key:
            kwargs["api_key"] = self.settings.transcription_api_key
        return kwargs
