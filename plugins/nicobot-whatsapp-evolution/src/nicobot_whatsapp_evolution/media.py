"""Received files: from the gateway's base64 to a :class:`nicobot.MediaFile`. Pure."""

from __future__ import annotations

import binascii
from base64 import b64decode
from collections.abc import Mapping
from typing import Any

from nicobot import MediaFile

EXTENSIONS = {
    "audio/ogg": "oga",
    "audio/mpeg": "mp3",
    "audio/mp4": "m4a",
    "audio/aac": "aac",
    "audio/wav": "wav",
    "image/jpeg": "jpg",
    "image/png": "png",
    "image/webp": "webp",
}


def _base_type(mimetype: str) -> str:
    return mimetype.split(";", 1)[0].strip().lower()


def decode_media(
    message_id: str,
    reference: Mapping[str, Any],
    fetched: Mapping[str, Any] | None,
    max_bytes: int,
) -> MediaFile | None:
    """The file from the gateway's answer (``fetched``) or the webhook's own copy (in
    ``reference``); None when it is missing, not base64 or over ``max_bytes``."""
    source = fetched if fetched is not None else reference
    text = source.get("base64")
    if not isinstance(text, str) or len(text) > (max_bytes * 4) // 3 + 4:
        return None
    try:
        data = b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        return None
    if not data or len(data) > max_bytes:
        return None
    mimetype = str(source.get("mimetype") or reference.get("mimetype") or "")
    mimetype = mimetype or "application/octet-stream"
    name = source.get("fileName")
    if not isinstance(name, str) or not name.strip() or "/" in name:
        extension = EXTENSIONS.get(_base_type(mimetype), "bin")
        name = f"{message_id}.{extension}"
    return MediaFile(data=data, mimetype=mimetype, filename=name)
