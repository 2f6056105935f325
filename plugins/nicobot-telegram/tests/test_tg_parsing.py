"""Parsing Telegram updates: a pure function, tested on Bot API payloads."""

from __future__ import annotations

import copy
import json
import random
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from nicobot import IncomingMessage, MessageKind

from nicobot_telegram import Ignored, parse_update, split_text
from nicobot_telegram.parsing import utf16_length

PAYLOADS = Path(__file__).parent / "payloads"


def load(name: str) -> Any:
    return json.loads((PAYLOADS / f"{name}.json").read_text(encoding="utf-8"))


def parsed(name: str, **options: Any) -> IncomingMessage:
    result = parse_update(load(name), **options)
    assert isinstance(result, IncomingMessage), result
    return result


def ignored(payload: Any, **options: Any) -> str:
    result = parse_update(payload, **options)
    assert isinstance(result, Ignored), result
    return result.reason


def test_a_private_text_message() -> None:
    payload = load("private_text")
    message = parse_update(payload)
    assert message == IncomingMessage(
        channel="telegram",
        address="987654321",
        text="Hola, ¿a qué hora abren?",
        message_id="987654321:42",
        sender_name="Ana García",
        kind=MessageKind.TEXT,
        timestamp=datetime(2025, 1, 1, 12, 0, tzinfo=UTC),
        raw=payload,
    )
    assert message.phone_number is None
    assert message.from_business is False


def test_a_caption_is_the_text() -> None:
    message = parsed("private_photo_caption")
    assert message.kind is MessageKind.TEXT
    assert message.text == "¿Tienen este modelo en azul?"
    assert message.message_id == "987654321:43"


@pytest.mark.parametrize(
    ("name", "kind", "sender"),
    [
        ("private_photo", MessageKind.IMAGE, "Ana"),
        ("private_voice", MessageKind.AUDIO, "Ana"),
        ("private_sticker", MessageKind.OTHER, "@only_username"),
    ],
)
def test_content_without_text_has_a_kind_and_no_text(
    name: str, kind: MessageKind, sender: str
) -> None:
    message = parsed(name)
    assert (message.kind, message.text, message.sender_name) == (kind, "", sender)


def test_an_edit_is_a_new_message_at_the_edit_time() -> None:
    original = parsed("private_text")
    edited = parsed("edited_message")
    assert edited.text == "Hola, ¿a qué hora abren el sábado?"
    assert edited.address == original.address
    assert edited.message_id == "987654321:42:edited:1735732830"
    assert edited.message_id != original.message_id  # not dropped as a duplicate
    assert edited.timestamp == datetime(2025, 1, 1, 12, 0, 30, tzinfo=UTC)


def test_groups_are_ignored_unless_allowed() -> None:
    assert ignored(load("group_text")) == "supergroup chat"
    message = parsed("group_text", allow_groups=True)
    assert message.address == "-1001234567890"
    assert message.sender_name == "Ana"
    assert message.message_id == "-1001234567890:7"


def test_service_messages_are_ignored() -> None:
    assert ignored(load("private_service")) == "service message"
    assert ignored(load("group_service"), allow_groups=True) == "service message"
    assert ignored(load("group_service")) == "group chat"


def test_channels_bots_and_other_updates_are_ignored() -> None:
    assert ignored(load("channel_post")) == "channel_post updates are not handled"
    assert ignored(load("channel_post"), allow_groups=True).startswith("channel_post")
    assert ignored(load("callback_query")) == "callback_query updates are not handled"
    assert ignored(load("bot_message")) == "message from a bot"


def test_a_channel_chat_is_ignored_even_with_groups_allowed() -> None:
    payload = load("private_text")
    payload["message"]["chat"] = {"id": -100555, "title": "News", "type": "channel"}
    assert ignored(payload, allow_groups=True) == "channel chat"


def test_a_message_without_message_id_falls_back_on_the_update_id() -> None:
    payload = load("private_text")
    del payload["message"]["message_id"]
    assert parse_update(payload).message_id == "update:721630152"  # type: ignore[union-attr]


@pytest.mark.parametrize(
    "payload",
    [
        None,
        0,
        1.5,
        True,
        "update",
        [],
        [{"update_id": 1}],
        {},
        {"update_id": "1", "message": {}},
        {"update_id": True, "message": {}},
        {"update_id": 1},
        {"update_id": 1, "message": None},
        {"update_id": 1, "message": []},
        {"update_id": 1, "message": {"chat": None}},
        {"update_id": 1, "message": {"chat": {"id": "12", "type": "private"}}},
        {"update_id": 1, "message": {"chat": {"id": True, "type": "private"}}},
        {"update_id": 1, "message": {"chat": {"id": 12}}},
        {"update_id": 1, "message": {"chat": {"id": 12, "type": ["private"]}}},
        {"update_id": 1, "message": {"chat": {"id": 12, "type": "private"}}},
    ],
)
def test_garbage_is_ignored(payload: Any) -> None:
    assert ignored(payload)


@pytest.mark.parametrize("date", [None, "yesterday", -5, 1e300, float("nan"), True, 10**30])
def test_a_bad_date_means_now(date: Any) -> None:
    payload = load("private_text")
    payload["message"]["date"] = date
    before = datetime.now(UTC)
    message = parse_update(payload)
    assert isinstance(message, IncomingMessage)
    assert message.timestamp >= before


def test_odd_field_types_never_break_parsing() -> None:
    payload = load("private_text")
    payload["message"]["text"] = 12
    payload["message"]["from"] = "Ana"
    payload["message"]["chat"]["first_name"] = ["Ana"]
    result = parse_update(payload)
    assert isinstance(result, Ignored)  # no text and no content it knows
    payload["message"]["caption"] = "a caption"
    message = parse_update(payload)
    assert isinstance(message, IncomingMessage)
    assert message.sender_name == "García"  # from the chat, skipping the odd first name


JSON_VALUES: list[Any] = [None, True, False, 0, -1, 2**63, 1.5, "", "x", [], {}, [1, "a"], {"a": 1}]


def _mutate(value: Any, rng: random.Random) -> Any:
    if isinstance(value, dict) and value and rng.random() < 0.8:
        key = rng.choice(sorted(value))
        choice = rng.random()
        if choice < 0.2:
            del value[key]
        elif choice < 0.5:
            value[key] = rng.choice(JSON_VALUES)
        else:
            value[key] = _mutate(value[key], rng)
        return value
    if isinstance(value, list) and value and rng.random() < 0.8:
        index = rng.randrange(len(value))
        value[index] = _mutate(value[index], rng)
        return value
    return rng.choice(JSON_VALUES)


def test_mutated_payloads_never_raise() -> None:
    rng = random.Random(20250101)
    originals = [load(path.stem) for path in sorted(PAYLOADS.glob("*.json"))]
    for _ in range(3000):
        payload = copy.deepcopy(rng.choice(originals))
        for _ in range(rng.randint(1, 4)):
            payload = _mutate(payload, rng)
        for allow_groups in (False, True):
            result = parse_update(payload, allow_groups=allow_groups)
            assert isinstance(result, IncomingMessage | Ignored)


# splitting long replies


def test_short_text_is_one_part() -> None:
    assert split_text("hello") == ["hello"]
    assert split_text("x" * 4096) == ["x" * 4096]
    assert split_text("") == [""]


def test_long_text_splits_at_paragraphs_then_lines_then_words() -> None:
    paragraph = "word " * 600  # 3000 characters
    parts = split_text(paragraph.strip() + "\n\n" + paragraph.strip())
    assert parts == [paragraph.strip(), paragraph.strip()]
    lines = "\n".join(["line of text"] * 800)
    parts = split_text(lines)
    assert all(utf16_length(p) <= 4096 for p in parts)
    assert all(p.startswith("line") and p.endswith("text") for p in parts)
    assert "\n".join(parts) == lines
    words = " ".join(["word"] * 2000)
    parts = split_text(words)
    assert all(utf16_length(p) <= 4096 for p in parts)
    assert " ".join(parts) == words


def test_text_without_breaks_is_cut_hard_and_emoji_count_double() -> None:
    assert split_text("a" * 10000) == ["a" * 4096, "a" * 4096, "a" * 1808]
    emoji = "😀" * 3000  # two UTF-16 units each, as Telegram counts them
    parts = split_text(emoji)
    assert [len(p) for p in parts] == [2048, 952]
    assert "".join(parts) == emoji
    assert split_text("abcdef", limit=4) == ["abcd", "ef"]
