"""parse_webhook on every recorded payload, on each rule of EVOLUTION_API.md, and on junk."""

from __future__ import annotations

import copy
import json
import random
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from nicobot import IncomingMessage, MessageKind

from evo_support import FIXTURES, load_fixture
from nicobot_whatsapp_evolution.parsing import (
    ConnectionUpdate,
    Event,
    Ignored,
    MessageEvent,
    QRUpdate,
    message_timestamp,
    parse_webhook,
)

NOW = datetime(2025, 6, 25, 15, 27, 0, tzinfo=UTC)
TS = int(NOW.timestamp()) - 10
MAX_AGE = 300.0


def parse(payload: object, **kw: Any) -> list[Event]:
    kw.setdefault("now", NOW)
    kw.setdefault("max_age_seconds", MAX_AGE)
    return parse_webhook(payload, **kw)


def one(payload: object, **kw: Any) -> Event:
    events = parse(payload, **kw)
    assert len(events) == 1, events
    return events[0]


def message_of(payload: object, **kw: Any) -> IncomingMessage:
    event = one(payload, **kw)
    assert isinstance(event, MessageEvent), event
    return event.message


def upsert(
    key: dict[str, Any] | None = None,
    message: Any = None,
    *,
    event: str = "messages.upsert",
    ts: Any = TS,
    **data: Any,
) -> dict[str, Any]:
    """A messages.upsert body in the v2 shape of the recorded fixture."""
    body_data: dict[str, Any] = {
        "key": key
        if key is not None
        else {"remoteJid": "5491100000001@s.whatsapp.net", "fromMe": False, "id": "ABC123"},
        "pushName": "Contact Name",
        "status": "DELIVERY_ACK",
        "message": message if message is not None else {"conversation": "Hola"},
        "messageType": "conversation",
        "messageTimestamp": ts,
        "instanceId": "00000000-0000-0000-0000-000000000001",
        "source": "android",
    }
    body_data.update(data)
    return {
        "event": event,
        "instance": "laformula",
        "data": body_data,
        "destination": "https://nicobot.example.com/api/webhooks/evolution",
        "date_time": "2025-06-25T15:26:47.781Z",
        "sender": "5491100000099@s.whatsapp.net",
        "server_url": "https://evolution.example.com",
        "apikey": "00000000-INSTANCE-TOKEN-0001",
    }


def key(remote: str, msg_id: str = "K1", from_me: bool = False, **extra: Any) -> dict[str, Any]:
    return {"remoteJid": remote, "fromMe": from_me, "id": msg_id, **extra}


# every recorded fixture ------------------------------------------------------------------


def _at(payload: dict[str, Any]) -> datetime:
    """`now` a few seconds after the recorded message (fixtures are old)."""
    stamp = message_timestamp(payload.get("data", {}).get("messageTimestamp"))
    return (stamp or NOW) + timedelta(seconds=5)


def check_v2_conversation(events: list[Event], raw: dict[str, Any]) -> None:
    # the captured request carries no auth header at all
    assert not {"apikey", "authorization", "x-nicobot-secret"} & set(raw["headers"])
    (event,) = events
    assert isinstance(event, MessageEvent)
    msg = event.message
    body = raw["body"]
    assert msg.text == body["data"]["message"]["conversation"] == "Oii"
    assert msg.channel == "whatsapp"
    assert msg.address == msg.phone_number == "5491100000001"
    assert msg.sender_name == "Contact Name"
    assert msg.message_id == "782647C0073AA0039110EB72593C4AC5"
    assert msg.kind is MessageKind.TEXT
    assert msg.timestamp == datetime.fromtimestamp(1750876007, UTC)
    assert msg.from_business is False
    assert msg.raw == body["data"]
    assert event.lid is None
    # never the envelope's sender (the business's own number)
    assert "5491100000099" not in (msg.address, msg.phone_number)


def check_v1_extended(events: list[Event], raw: dict[str, Any]) -> None:
    (event,) = events
    assert isinstance(event, MessageEvent)
    assert event.message.text == "Teste"
    assert event.message.phone_number == "5491100000006"
    assert event.message.sender_name == "Contact Name"
    assert event.message.message_id == "1AECB65CE8AC2CB38486D898090B5C87"
    assert not event.message.from_business


def check_from_me(events: list[Event], raw: dict[str, Any]) -> None:
    (event,) = events
    assert isinstance(event, MessageEvent)
    assert event.message.from_business is True
    assert event.message.text == "Teste"
    assert event.message.address == "5491100000005"
    # pushName is the business's own name on its own messages: not the customer's
    assert event.message.sender_name is None


def check_open(events: list[Event], raw: dict[str, Any]) -> None:
    assert events == [ConnectionUpdate("open", 200)]
    assert not events[0].logged_out  # type: ignore[union-attr]


def check_close_401(events: list[Event], raw: dict[str, Any]) -> None:
    assert events == [ConnectionUpdate("close", 401)]
    assert events[0].logged_out  # type: ignore[union-attr]


def check_qr(events: list[Event], raw: dict[str, Any]) -> None:
    (event,) = events
    assert isinstance(event, QRUpdate)
    assert event.code == raw["data"]["qrcode"]["code"]
    assert event.code is not None and event.code.startswith("2@")
    assert event.base64 == "qrcode"


def check_ignored(events: list[Event], raw: Any) -> None:
    assert events and all(isinstance(e, Ignored) for e in events), events


EXPECTED = {
    "v2_messages_upsert_conversation_with_http_headers.json": check_v2_conversation,
    "v1_messages_upsert_extendedTextMessage.json": check_v1_extended,
    "v1_messages_upsert_conversation_fromMe.json": check_from_me,
    "v1_connection_update_open.json": check_open,
    "v1_connection_update_close_401.json": check_close_401,
    "v1_qrcode_updated.json": check_qr,
    # REST answers, not webhooks: a receiver that gets one drops it
    "v1_connectionState_open_response.json": check_ignored,
    "v1_error_401_unauthorized.json": check_ignored,
    "v1_error_404_instance_not_found.json": check_ignored,
    "v1_instance_create_response.json": check_ignored,
    "v1_instance_delete_response.json": check_ignored,
    "v1_sendText_400_number_not_on_whatsapp.json": check_ignored,
    "v1_sendText_response.json": check_ignored,
    "v2_error_400_connection_closed.json": check_ignored,
    "v2_error_400_validation_missing_text.json": check_ignored,
    "v2_instance_create_response_qrcode_count0.json": check_ignored,
}
FIXTURE_FILES = sorted(p.name for p in FIXTURES.glob("*.json"))


def test_every_fixture_has_an_expectation() -> None:
    assert FIXTURE_FILES, f"no fixtures in {FIXTURES}"
    assert set(FIXTURE_FILES) == set(EXPECTED), "a fixture was added or removed: cover it"


@pytest.mark.parametrize("name", FIXTURE_FILES)
def test_recorded_fixture(name: str) -> None:
    raw = load_fixture(name)
    payload = raw["body"] if "body" in raw and "headers" in raw else raw
    events = parse(payload, now=_at(payload) if isinstance(payload, dict) else NOW)
    EXPECTED[name](events, raw)


@pytest.mark.parametrize(
    "name",
    [
        "v2_messages_upsert_conversation_with_http_headers.json",
        "v1_messages_upsert_extendedTextMessage.json",
    ],
)
def test_recorded_messages_are_stale_today(name: str) -> None:
    raw = load_fixture(name)
    payload = raw.get("body", raw)
    event = one(payload, now=datetime.now(UTC))
    assert isinstance(event, Ignored) and "stale" in event.reason


# who wrote it -----------------------------------------------------------------------------


@pytest.mark.parametrize("field", ["remoteJidAlt", "senderPn", "previousRemoteJid"])
def test_lid_with_phone_elsewhere(field: str) -> None:
    payload = upsert(key("123456789012345@lid", **{field: "5491100000007@s.whatsapp.net"}))
    event = one(payload)
    assert isinstance(event, MessageEvent)
    assert event.message.address == event.message.phone_number == "5491100000007"
    assert event.lid == "123456789012345@lid"


def test_lid_without_phone_replies_to_the_lid() -> None:
    event = one(upsert(key("123456789012345@lid")))
    assert isinstance(event, MessageEvent)
    assert event.message.address == "123456789012345@lid"
    assert event.message.phone_number is None
    assert event.lid == "123456789012345@lid"


def test_first_phone_jid_wins_in_field_order() -> None:
    payload = upsert(
        key(
            "5491100000001@s.whatsapp.net",
            remoteJidAlt="5491100000002@s.whatsapp.net",
            senderPn="5491100000003@s.whatsapp.net",
        )
    )
    assert message_of(payload).phone_number == "5491100000001"
    payload = upsert(
        key(
            "99@lid",
            senderPn="5491100000003@s.whatsapp.net",
            previousRemoteJid="5491100000004@s.whatsapp.net",
        )
    )
    assert message_of(payload).phone_number == "5491100000003"


def test_device_suffix_is_stripped() -> None:
    msg = message_of(upsert(key("5491100000001:23@s.whatsapp.net")))
    assert msg.phone_number == msg.address == "5491100000001"
    event = one(upsert(key("777:4@lid")))
    assert isinstance(event, MessageEvent) and event.message.address == "777@lid"


def test_envelope_sender_is_never_used() -> None:
    payload = upsert(key("no-domain-here"))
    payload["sender"] = "5491100000099@s.whatsapp.net"
    event = one(payload)
    assert isinstance(event, Ignored) and "address" in event.reason


def test_from_me_is_a_business_message() -> None:
    msg = message_of(upsert(key("5491100000001@s.whatsapp.net", from_me=True)))
    assert msg.from_business and msg.sender_name is None and msg.text == "Hola"


def test_non_phone_jid_is_not_a_phone() -> None:
    event = one(upsert(key("abc@s.whatsapp.net")))
    assert isinstance(event, Ignored)


# skipped ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("remote", "reason"),
    [
        ("120363025246125486@g.us", "group"),
        ("status@broadcast", "broadcast"),
        ("1699999999@broadcast", "broadcast"),
        ("120363144444444444@newsletter", "newsletter"),
    ],
)
def test_skipped_chats(remote: str, reason: str) -> None:
    payload = upsert(key(remote, participant="5491100000001@s.whatsapp.net"))
    event = one(payload)
    assert isinstance(event, Ignored) and reason in event.reason


def test_group_with_lid_participant_is_skipped() -> None:
    payload = upsert(key("120363025246125486@g.us", participant="1234@lid"))
    assert isinstance(one(payload), Ignored)


@pytest.mark.parametrize(
    "message",
    [
        {"reactionMessage": {"key": {"id": "X"}, "text": "👍"}},
        {"ephemeralMessage": {"message": {"reactionMessage": {"text": "❤"}}}},
        {"protocolMessage": {"type": "REVOKE", "key": {"id": "X"}}},
        {"editedMessage": {"message": {"protocolMessage": {"type": 14}}}},
        {"pollUpdateMessage": {}},
        {"messageContextInfo": {"deviceListMetadataVersion": 2}},
        {},
    ],
)
def test_not_a_question(message: dict[str, Any]) -> None:
    assert isinstance(one(upsert(message=message)), Ignored)


def test_reaction_by_message_type_only() -> None:
    payload = upsert(message={"conversation": "x"}, messageType="reactionMessage")
    assert isinstance(one(payload), Ignored)


def test_stale_replay_is_skipped_and_fresh_is_kept() -> None:
    stale = one(upsert(ts=TS - 400))
    assert isinstance(stale, Ignored) and "stale" in stale.reason
    assert isinstance(one(upsert(ts=int(NOW.timestamp()) - 299)), MessageEvent)
    assert isinstance(one(upsert(ts=int(NOW.timestamp()) + 30)), MessageEvent)  # clock skew
    assert isinstance(one(upsert(ts=TS - 400), max_age_seconds=3600), MessageEvent)


def test_message_without_timestamp_is_dated_now() -> None:
    payload = upsert()
    del payload["data"]["messageTimestamp"]
    assert message_of(payload).timestamp == NOW


def test_naive_now_is_taken_as_utc() -> None:
    assert isinstance(one(upsert(), now=NOW.replace(tzinfo=None)), MessageEvent)


@pytest.mark.parametrize(
    "payload",
    [
        upsert(event="messages.update"),
        upsert(event="send.message"),
        upsert(event="APPLICATION_STARTUP"),
    ],
)
def test_unknown_events_are_ignored(payload: dict[str, Any]) -> None:
    event = one(payload)
    assert isinstance(event, Ignored) and "unhandled" in event.reason


def test_other_instance_is_ignored() -> None:
    assert isinstance(one(upsert(), own_instance="laformula"), MessageEvent)
    event = one(upsert(), own_instance="another")
    assert isinstance(event, Ignored) and "instance" in event.reason


# text and kinds ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("message", "text", "kind"),
    [
        ({"conversation": "Hola"}, "Hola", MessageKind.TEXT),
        ({"extendedTextMessage": {"text": "Hi there"}}, "Hi there", MessageKind.TEXT),
        ({"conversation": "a", "extendedTextMessage": {"text": "b"}}, "a", MessageKind.TEXT),
        ({"imageMessage": {"caption": "price?", "mimetype": "image/jpeg"}}, "price?", "text"),
        ({"videoMessage": {"caption": "look"}}, "look", MessageKind.TEXT),
        ({"documentMessage": {"caption": "my CV", "fileName": "cv.pdf"}}, "my CV", "text"),
        ({"imageMessage": {"mimetype": "image/jpeg"}}, "", MessageKind.IMAGE),
        ({"audioMessage": {"ptt": True, "seconds": 4}}, "", MessageKind.AUDIO),
        ({"audioMessage": {"ptt": False}}, "", MessageKind.AUDIO),
        ({"stickerMessage": {"isAnimated": False}}, "", MessageKind.OTHER),
        ({"locationMessage": {"degreesLatitude": 1.0}}, "", MessageKind.OTHER),
        ({"documentMessage": {"fileName": "a.pdf"}}, "", MessageKind.OTHER),
        ({"conversation": "   ", "imageMessage": {}}, "", MessageKind.IMAGE),
        ({"conversation": {"0": 72}}, "", MessageKind.OTHER),
        ({"extendedTextMessage": {"text": ["x"]}}, "", MessageKind.OTHER),
    ],
)
def test_text_and_kind(message: dict[str, Any], text: str, kind: str) -> None:
    msg = message_of(upsert(message=message))
    assert msg.text == text
    assert msg.kind == kind


@pytest.mark.parametrize(
    "wrapper",
    [
        "ephemeralMessage",
        "viewOnceMessage",
        "viewOnceMessageV2",
        "viewOnceMessageV2Extension",
        "documentWithCaptionMessage",
    ],
)
def test_wrappers_are_unwrapped(wrapper: str) -> None:
    inner = {"imageMessage": {"caption": "inside"}}
    msg = message_of(upsert(message={wrapper: {"message": inner}}))
    assert (msg.text, msg.kind) == ("inside", MessageKind.TEXT)
    msg = message_of(upsert(message={wrapper: {"message": {"audioMessage": {"ptt": True}}}}))
    assert msg.kind is MessageKind.AUDIO


def test_nested_wrappers() -> None:
    message = {
        "ephemeralMessage": {
            "message": {
                "viewOnceMessageV2": {
                    "message": {"extendedTextMessage": {"text": "deep", "contextInfo": {}}}
                }
            }
        },
        "messageContextInfo": {},
    }
    assert message_of(upsert(message=message)).text == "deep"


def test_document_with_caption() -> None:
    message = {
        "documentWithCaptionMessage": {
            "message": {"documentMessage": {"caption": "invoice", "fileName": "f.pdf"}}
        }
    }
    assert message_of(upsert(message=message)).text == "invoice"


# shapes -----------------------------------------------------------------------------------


@pytest.mark.parametrize("spelling", ["messages.upsert", "MESSAGES_UPSERT", "messages-upsert"])
def test_event_spellings(spelling: str) -> None:
    assert message_of(upsert(event=spelling)).text == "Hola"


def test_connection_and_qr_spellings() -> None:
    conn = {"event": "CONNECTION_UPDATE", "data": {"state": "refused", "statusReason": "500"}}
    assert one(conn) == ConnectionUpdate("refused", 500)
    conn = {"event": "connection.update", "data": {"state": "connecting"}}
    assert one(conn) == ConnectionUpdate("connecting", None)
    qr = {"event": "QRCODE_UPDATED", "data": {"qrcode": {"code": "2@x", "base64": None}}}
    assert one(qr) == QRUpdate("2@x", None)


def test_data_as_list() -> None:
    payload = upsert()
    first = payload["data"]
    second = copy.deepcopy(first)
    second["key"]["id"] = "SECOND"
    second["message"] = {"conversation": "otra"}
    payload["data"] = [first, second, "junk", {"key": {"id": "G", "remoteJid": "1@g.us"}}]
    events = parse(payload)
    assert [type(e) for e in events] == [MessageEvent, MessageEvent, Ignored, Ignored]
    texts = [e.message.text for e in events if isinstance(e, MessageEvent)]
    assert texts == ["Hola", "otra"]
    assert isinstance(one({"event": "messages.upsert", "data": []}), Ignored)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (1750876007, 1750876007),
        ("1750876007", 1750876007),
        (1750876007.9, 1750876007),
        ({"low": 1750876007, "high": 0, "unsigned": True}, 1750876007),
        ({"low": -1, "high": 0, "unsigned": True}, 2**32 - 1),
        (1750876007123, 1750876007),
        (None, None),
        (True, None),
        ("", None),
        ("17508x", None),
        ("\u0661\u0667\u0665\u0660", None),
        (-5, None),
        (10**30, None),
        (float("nan"), None),
        ({"low": "x"}, None),
        ([1750876007], None),
    ],
)
def test_timestamps(value: object, expected: int | None) -> None:
    stamp = message_timestamp(value)
    assert (None if stamp is None else int(stamp.timestamp())) == expected


def test_binary_fields_as_objects() -> None:
    message = {
        "conversation": "Hola",
        "messageContextInfo": {
            "messageSecret": {"0": 194, "1": 76, "2": 13},
            "deviceListMetadata": {"senderKeyHash": {"0": 1}, "senderTimestamp": {"low": 5}},
        },
    }
    payload = upsert(
        message=message,
        ts={"low": TS, "high": 0, "unsigned": True},
        pushName={"0": 65},
        status=3,
    )
    msg = message_of(payload)
    assert msg.text == "Hola"
    assert msg.sender_name is None
    assert msg.timestamp == datetime.fromtimestamp(TS, UTC)


@pytest.mark.parametrize(
    "payload",
    [
        None,
        [],
        "messages.upsert",
        42,
        {},
        {"event": 5},
        {"event": "messages.upsert"},
        {"event": "messages.upsert", "data": None},
        {"event": "messages.upsert", "data": {"key": "x"}},
        {"event": "messages.upsert", "data": {"key": {"id": 5, "remoteJid": "1@s.whatsapp.net"}}},
        {"event": "messages.upsert", "data": {"key": {"id": "A", "remoteJid": ["x"]}}},
        {"event": "messages.upsert", "data": {"key": {"id": "A", "remoteJid": "1@s.whatsapp.net"}}},
        {"event": "connection.update", "data": "open"},
        {"event": "connection.update", "data": {"state": 1}},
        {"event": "qrcode.updated", "data": {"qrcode": "x"}},
        {"event": "qrcode.updated", "data": {"qrcode": {}}},
    ],
)
def test_malformed_payloads_are_ignored(payload: object) -> None:
    events = parse(payload)
    assert events and all(isinstance(e, Ignored) for e in events)


# fuzz -------------------------------------------------------------------------------------

JUNK: list[Any] = [
    None,
    True,
    False,
    0,
    -1,
    1.5,
    1e308,
    float("inf"),
    2**70,
    "",
    " ",
    "x",
    "@",
    "1@g.us",
    "1@lid",
    ":@s.whatsapp.net",
    "\u0661@s.whatsapp.net",
    "5491100000001@s.whatsapp.net",
    "\x00",
    [],
    [None],
    {},
    {"0": 1},
    {"low": 1, "high": 2},
    {"message": {}},
    {"message": {"message": None}},
]


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [prefix]
    if isinstance(value, dict):
        for k, v in value.items():
            found += _paths(v, (*prefix, k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            found += _paths(v, (*prefix, i))
    return found


def _mutate(payload: Any, rng: random.Random) -> Any:
    payload = copy.deepcopy(payload)
    for _ in range(rng.randint(1, 4)):
        paths = _paths(payload)
        path = rng.choice(paths)
        junk = copy.deepcopy(rng.choice(JUNK))
        if not path:
            payload = junk
            continue
        parent = payload
        for part in path[:-1]:
            parent = parent[part]
        action = rng.random()
        if action < 0.7:
            parent[path[-1]] = junk
        elif action < 0.85 and isinstance(parent, dict):
            del parent[path[-1]]
        elif isinstance(parent, dict):
            parent[rng.choice(["message", "key", "ephemeralMessage", "conversation", "x"])] = junk
    return payload


def _seeds() -> list[Any]:
    seeds: list[Any] = []
    for name in FIXTURE_FILES:
        raw = load_fixture(name)
        seeds.append(raw.get("body", raw) if isinstance(raw, dict) else raw)
    seeds += [
        upsert(),
        upsert(key("1@lid", senderPn="2@s.whatsapp.net")),
        upsert(message={"ephemeralMessage": {"message": {"imageMessage": {"caption": "c"}}}}),
        {"event": "messages.upsert", "data": [upsert()["data"], upsert()["data"]]},
    ]
    return seeds


def test_fuzz_never_raises() -> None:
    rng = random.Random(20250625)
    seeds = _seeds()
    kinds: set[type] = set()
    for _ in range(4000):
        payload = _mutate(rng.choice(seeds), rng)
        # what a JSON body can be: round-trip through json (NaN/inf kept as Python allows)
        payload = json.loads(json.dumps(payload))
        events = parse(payload, own_instance=rng.choice([None, "laformula"]))
        assert events
        for event in events:
            assert isinstance(event, MessageEvent | ConnectionUpdate | QRUpdate | Ignored)
            kinds.add(type(event))
            if isinstance(event, MessageEvent):
                assert isinstance(event.message.text, str)
                assert isinstance(event.message.address, str) and event.message.address
                assert isinstance(event.message.message_id, str)
    assert kinds == {MessageEvent, ConnectionUpdate, QRUpdate, Ignored}


def test_freshness_tells_late_messages_from_replays() -> None:
    from nicobot_whatsapp_evolution.parsing import REPLAY, Freshness

    now = datetime.fromtimestamp(TS, UTC)
    hour = timedelta(hours=1)
    window = (now - 3 * hour, now - 2 * hour)
    rules = Freshness(300, 86400, window)
    assert rules.skip_reason(now - timedelta(minutes=4), now) is None  # recent
    assert rules.skip_reason(now - 2.5 * hour, now) == REPLAY  # written while offline
    assert rules.skip_reason(now - hour, now) is None  # delivered late, written online
    assert "too old" in (rules.skip_reason(now - 25 * hour, now) or "")
    assert rules.skip_reason(now - 10 * hour, now) is None  # before the window: online then
    since_ever = Freshness(300, 86400, (None, now - 2 * hour))
    assert since_ever.skip_reason(now - 10 * hour, now) == REPLAY
    assert Freshness(300, 86400).skip_reason(now - hour, now) is None  # no window known
    assert Freshness(300).skip_reason(now - hour, now) == REPLAY  # the plain age rule
    late = one(upsert(ts=TS - 3600), freshness=rules)
    assert isinstance(late, MessageEvent)


def test_a_message_of_the_second_the_instance_came_online_in_was_written_online() -> None:
    """WhatsApp stamps whole seconds: written 0.3 s after pairing, stamped 0.6 s before."""
    from nicobot_whatsapp_evolution.parsing import REPLAY, Freshness

    paired = datetime.fromtimestamp(TS, UTC) + timedelta(milliseconds=600)
    rules = Freshness(1, 86400, (None, paired))
    later = paired + timedelta(minutes=1)
    assert rules.skip_reason(datetime.fromtimestamp(TS, UTC), later) is None
    assert rules.skip_reason(datetime.fromtimestamp(TS - 1, UTC), later) == REPLAY
