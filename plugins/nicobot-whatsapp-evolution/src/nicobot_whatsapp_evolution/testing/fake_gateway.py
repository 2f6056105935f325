"""A fake Evolution API (v2.3.7) gateway: a real HTTP server on 127.0.0.1 for tests.

It speaks the gateway's shapes (see EVOLUTION_API.md and the recorded fixtures):
``apikey`` checked (401 envelope), 404 for an unknown instance before the key,
403 for a taken name, ``{"count": 0}`` from create and a QR from later connects,
bodies validated with the gateway's own JSON schemas when given (400 list of lists).
It records what nicobot sent and calls nicobot's webhook like the gateway would.

In-process::

    with FakeGateway(api_key="k", schemas_dir=path) as gw:
        ... gw.url, gw.scan("laformula"), gw.deliver_message("laformula", "Hola"), gw.sent

(control methods block while they call the webhook: from async code use
``asyncio.to_thread``). As a process::

    python -m nicobot_whatsapp_evolution.testing.fake_gateway --port 8081 --api-key k --schemas DIR

Control endpoints (no key needed): ``GET /_fake/state``, ``GET /_fake/sent``, and
``POST /_fake/{scan,rotate-qr,refuse,phone-logout,down,fail-connect,deliver,reset,
send-fault,store-message}`` with a JSON body (``{"instance": ..., ...}``, see
:meth:`FakeGateway.control`). ``send-fault`` (``{"mode": "slow"|"reset", "seconds",
"count"}``) makes the next sendText calls go out and then answer after the client's
timeout or reset the connection; ``store-message`` stores a customer message without
calling the webhook (the receiver was down through every retry); ``/chat/findMessages``
returns what was stored.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import json
import re
import secrets
import signal
import socket
import struct
import sys
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import unquote, urlsplit

import httpx

PNG_1X1 = (
    "data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk"
    "YPhfDwAChwGA60e6kgAAAABJRU5ErkJggg=="
)
SCHEMA_FILES = {
    "create": "instance-create.schema.json",
    "sendText": "message-sendText.schema.json",
    "sendPresence": "chat-sendPresence.schema.json",
    "webhookSet": "webhook-set.schema.json",
    "findMessages": "chat-findMessages.schema.json",
}
OWNER_NUMBER = "5491100000099"
INSTANCE_ROUTE = re.compile(
    r"^/(instance/connect|instance/connectionState|instance/logout|message/sendText|"
    r"chat/sendPresence|chat/findMessages|webhook/set|webhook/find|"
    r"chat/getBase64FromMediaMessage)/([^/]+)$"
)


def qr_png(code: str) -> str:
    """A scannable PNG data URL of ``code``, like the gateway's; a 1x1 PNG without segno."""
    try:
        import segno
    except ImportError:
        return PNG_1X1
    uri: str = segno.make(code, error="l").png_data_uri(scale=4, border=2)
    return uri


class SendFault(Exception):
    """Raised after a sendText was accepted (and recorded as sent) to answer it badly:
    ``"slow"`` answers only after ``seconds`` (past the client's timeout), ``"reset"``
    resets the connection without an answer."""

    def __init__(self, mode: str, seconds: float, status: int, body: Any) -> None:
        super().__init__(mode)
        self.mode = mode
        self.seconds = seconds
        self.status = status
        self.body = body


class HTTPAnswer(Exception):
    """Raised inside a handler to answer with ``status`` and ``body``."""

    def __init__(self, status: int, body: Any) -> None:
        super().__init__(status)
        self.status = status
        self.body = body


def envelope(status: int, message: Any) -> HTTPAnswer:
    """The gateway's error shape: ``{"status", "error", "response": {"message"}}``."""
    return HTTPAnswer(
        status,
        {"status": status, "error": HTTPStatus(status).phrase, "response": {"message": message}},
    )


@dataclass
class Instance:
    name: str
    token: str
    state: str = "close"
    webhook: dict[str, Any] = field(default_factory=dict)
    qr_count: int = 0
    qr_code: str | None = None
    instance_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    #: The webhook as ``/webhook/set`` and ``/webhook/find`` answer it (the stored row).
    webhook_row: dict[str, Any] = field(default_factory=dict)

    def public(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "token": self.token,
            "state": self.state,
            "webhook": self.webhook,
            "qr_count": self.qr_count,
            "qr_code": self.qr_code,
        }


@dataclass(frozen=True)
class SentText:
    instance: str
    number: str
    text: str
    delay: int | None
    id: str


@dataclass(frozen=True)
class Presence:
    instance: str
    number: str
    presence: str
    delay: int


@dataclass(frozen=True)
class Delivery:
    """One webhook call the fake made: ``status``/``answer`` from the receiver, or ``error``."""

    url: str
    event: str
    status: int | None
    error: str | None
    body: dict[str, Any]
    answer: Any = None


def _validator_for(path: Path) -> Any:
    try:
        jsonschema = importlib.import_module("jsonschema")
    except ImportError:  # optional: without it only the required keys are checked
        return None
    schema = json.loads(path.read_text(encoding="utf-8"))
    return jsonschema.Draft7Validator(schema)


def _schema_messages(validator: Any, body: Any) -> list[str]:
    messages = []
    for error in sorted(validator.iter_errors(body), key=lambda e: list(e.path)):
        where = "instance" + "".join(
            f"[{p!r}]" if isinstance(p, int) else f".{p}" for p in error.path
        )
        if error.validator == "required":
            missing = re.findall(r"'([^']+)' is a required property", error.message)
            name = missing[0] if missing else error.message
            messages.append(f'{where} requires property "{name}"')
        else:
            messages.append(f"{where} {error.message}")
    return messages


class FakeGateway:
    """The fake gateway; thread-safe; a context manager that starts and stops it."""

    def __init__(
        self,
        *,
        api_key: str = "fake-global-key",
        host: str = "127.0.0.1",
        port: int = 0,
        schemas_dir: str | Path | None = None,
        global_webhook_url: str | None = None,
        qr_ready_on_create: bool = False,
        not_ready_connects: int = 0,
        echo_sent: bool = False,
    ) -> None:
        self.api_key = api_key
        self.host = host
        self.port = port
        self.global_webhook_url = global_webhook_url
        self.qr_ready_on_create = qr_ready_on_create
        self.not_ready_connects = not_ready_connects
        self.echo_sent = echo_sent
        self.instances: dict[str, Instance] = {}
        self.sent: list[SentText] = []
        self.presences: list[Presence] = []
        self.deliveries: list[Delivery] = []
        self.requests: list[tuple[str, str]] = []
        self.not_on_whatsapp: set[str] = set()
        #: What the gateway's database holds (sent and received), as findMessages
        #: records, in the order they were stored.
        self.stored: list[dict[str, Any]] = []
        #: Faults for the next sendText calls: ``{"mode", "seconds", "count"}``.
        self.send_fault: dict[str, Any] | None = None
        #: Files of received messages, by message id: (bytes, mimetype), for
        #: ``getBase64FromMediaMessage``; ``media_requests`` counts its calls.
        self.media: dict[str, tuple[bytes, str]] = {}
        self.media_requests: list[str] = []
        self.down: str | None = None  # None, "closed" (sends fail) or "drop" (no answer)
        self.fail_connect: str | None = None
        self._connects_left: dict[str, int] = {}
        self._lock = threading.RLock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._validators: dict[str, Any] = {}
        if schemas_dir is not None:
            base = Path(schemas_dir)
            for key, name in SCHEMA_FILES.items():
                if not (base / name).is_file():
                    raise FileNotFoundError(f"schema {name} not found in {base}")
                self._validators[key] = _validator_for(base / name)

    # server lifecycle

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> FakeGateway:
        handler = type("Handler", (_Handler,), {"gateway": self})
        server = _Server((self.host, self.port), handler)
        self.port = server.server_address[1]
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, args=(0.02,), daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def refuse_connections(self) -> None:
        """Stop listening (calls now get "connection refused"); :meth:`start` again later."""
        self.stop()

    def __enter__(self) -> FakeGateway:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # setting up and inspecting

    def add_instance(
        self,
        name: str,
        *,
        state: str = "close",
        webhook_url: str | None = None,
        webhook_headers: dict[str, str] | None = None,
    ) -> Instance:
        with self._lock:
            instance = Instance(name=name, token=str(uuid.uuid4()).upper(), state=state)
            if webhook_url:
                instance.webhook = {
                    "enabled": True,
                    "url": webhook_url,
                    "headers": webhook_headers or {},
                    "byEvents": False,
                    "base64": False,
                    "events": ["MESSAGES_UPSERT"],
                }
            self.instances[name] = instance
            return instance

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            return {
                "instances": {n: i.public() for n, i in self.instances.items()},
                "down": self.down,
            }

    def sent_snapshot(self) -> dict[str, Any]:
        with self._lock:
            return {
                "sent": [asdict(s) for s in self.sent],
                "presences": [asdict(p) for p in self.presences],
                "deliveries": [asdict(d) for d in self.deliveries],
            }

    def reset(self) -> None:
        with self._lock:
            self.instances.clear()
            self.sent.clear()
            self.presences.clear()
            self.deliveries.clear()
            self.requests.clear()
            self.not_on_whatsapp.clear()
            self.stored.clear()
            self.send_fault = None
            self.media.clear()
            self.media_requests.clear()
            self.down = None
            self.fail_connect = None

    # simulations

    def _instance(self, name: str | None) -> Instance:
        with self._lock:
            if name is None and len(self.instances) == 1:
                return next(iter(self.instances.values()))
            if name is None or name not in self.instances:
                raise KeyError(f"no instance {name!r}")
            return self.instances[name]

    def _new_qr(self, instance: Instance) -> dict[str, Any]:
        instance.qr_count += 1
        instance.qr_code = f"2@fake-qr-{instance.qr_count}-{secrets.token_urlsafe(24)},ref=="
        return {
            "pairingCode": None,
            "code": instance.qr_code,
            "base64": qr_png(instance.qr_code),
            "count": instance.qr_count,
        }

    def scan(self, name: str | None = None) -> list[Delivery]:
        """The phone scanned the QR: the instance is open, and the webhook is told."""
        instance = self._instance(name)
        with self._lock:
            instance.state = "open"
            instance.qr_code = None
        data = {"instance": instance.name, "state": "open", "statusReason": 200}
        return self.deliver(instance.name, "connection.update", data)

    def rotate_qr(self, name: str | None = None) -> list[Delivery]:
        """A new QR while pairing: sent as ``qrcode.updated``."""
        instance = self._instance(name)
        with self._lock:
            instance.state = "connecting"
            qr = self._new_qr(instance)
        data = {"qrcode": {"instance": instance.name, **qr}}
        return self.deliver(instance.name, "qrcode.updated", data)

    def refuse(self, name: str | None = None) -> list[Delivery]:
        """The QR limit was reached without a scan."""
        instance = self._instance(name)
        with self._lock:
            instance.state = "close"
            instance.qr_code = None
        data = {"instance": instance.name, "state": "refused", "statusReason": 500}
        return self.deliver(instance.name, "connection.update", data)

    def phone_logout(self, name: str | None = None) -> list[Delivery]:
        """The device was unlinked on the phone (statusReason 401: a new QR is needed)."""
        instance = self._instance(name)
        with self._lock:
            instance.state = "close"
        data = {"instance": instance.name, "state": "close", "statusReason": 401}
        return self.deliver(instance.name, "connection.update", data)

    def message_data(
        self,
        instance: Instance,
        *,
        text: str | None = "Hola",
        number: str = "5491100000001",
        push_name: str | None = "Contact Name",
        message_id: str | None = None,
        lid: str | None = None,
        from_me: bool = False,
        message: dict[str, Any] | None = None,
        timestamp: int | None = None,
    ) -> dict[str, Any]:
        """A ``messages.upsert`` data object in the v2 shape of the recorded fixture."""
        key: dict[str, Any] = {
            "remoteJid": f"{number}@s.whatsapp.net",
            "fromMe": from_me,
            "id": message_id or secrets.token_hex(16).upper(),
        }
        if lid:
            key = {
                "remoteJid": lid,
                "remoteJidAlt": f"{number}@s.whatsapp.net",
                "fromMe": from_me,
                "id": key["id"],
            }
        content = (
            message
            if message is not None
            else {
                "conversation": text,
                "messageContextInfo": {
                    "deviceListMetadata": {
                        "senderKeyHash": "XKYKdjbqZ8zehQ==",
                        "senderTimestamp": str(int(time.time()) - 3600),
                    },
                    "deviceListMetadataVersion": 2,
                    "messageSecret": secrets.token_urlsafe(32),
                },
            }
        )
        data: dict[str, Any] = {"key": key}
        if push_name is not None:
            data["pushName"] = push_name
        data.update(
            {
                "status": "DELIVERY_ACK",
                "message": content,
                "messageType": next(iter(content), "conversation"),
                "messageTimestamp": int(time.time()) if timestamp is None else timestamp,
                "instanceId": instance.instance_id,
                "source": "android",
            }
        )
        return data

    def deliver_message(
        self, name: str | None = None, text: str | None = "Hola", *, copies: int = 1, **options: Any
    ) -> list[Delivery]:
        """A customer wrote: ``messages.upsert`` to the webhook(s), ``copies`` times at once."""
        instance = self._instance(name)
        data = self.message_data(instance, text=text, **options)
        self.store_message(data)
        return self.deliver(instance.name, "messages.upsert", data, copies=copies)

    def store_message(self, data: dict[str, Any]) -> dict[str, Any]:
        """Keep a message as the gateway's database would (findMessages returns it):
        a ``@lid`` chat is stored under its ``@lid`` JID, whatever the webhook showed."""
        record: dict[str, Any] = {
            "id": str(uuid.uuid4()),
            "key": dict(data["key"]),
            "pushName": data.get("pushName"),
            "messageType": data.get("messageType"),
            "message": data.get("message"),
            "messageTimestamp": data.get("messageTimestamp"),
            "instanceId": data.get("instanceId"),
            "source": data.get("source"),
            "contextInfo": None,
            "MessageUpdate": [],
        }
        with self._lock:
            self.stored.append(record)
        return record

    def customer_wrote_while_receiver_down(
        self, name: str | None = None, text: str | None = "Hola", **options: Any
    ) -> dict[str, Any]:
        """A customer wrote while nicobot could not take webhooks and every retry of
        the webhook failed: the gateway stored the message and delivered nothing."""
        instance = self._instance(name)
        return self.store_message(self.message_data(instance, text=text, **options))

    def deliver(self, name: str, event: str, data: Any, *, copies: int = 1) -> list[Delivery]:
        """POST one event to the instance webhook (with its headers) and the global one
        (without any), each ``copies`` times concurrently; returns what happened."""
        instance = self._instance(name)
        body = {
            "event": event,
            "instance": instance.name,
            "data": data,
            "destination": "",
            "date_time": datetime.now().isoformat(timespec="milliseconds") + "Z",
            "sender": f"{OWNER_NUMBER}@s.whatsapp.net",
            "server_url": self.url,
            "apikey": instance.token,
        }
        targets: list[tuple[str, dict[str, str]]] = []
        hook = instance.webhook
        wanted = event.upper().replace(".", "_")
        if hook.get("enabled") and hook.get("url") and wanted in (hook.get("events") or []):
            url = str(hook["url"])
            if hook.get("byEvents"):
                url = url.rstrip("/") + "/" + event.lower().replace(".", "-")
            targets.append((url, {str(k): str(v) for k, v in (hook.get("headers") or {}).items()}))
        if self.global_webhook_url:
            targets.append((self.global_webhook_url, {}))
        jobs = [(url, headers) for url, headers in targets for _ in range(max(1, copies))]
        if not jobs:
            return []

        def post(job: tuple[str, dict[str, str]]) -> Delivery:
            url, headers = job
            sent = dict(body, destination=url)
            try:
                response = httpx.post(
                    url,
                    json=sent,
                    headers={"user-agent": "axios/1.7.9", **headers},
                    timeout=10,
                    verify=False,  # a test double calling local servers; skips loading CAs
                )
                try:
                    answer = response.json()
                except ValueError:
                    answer = response.text
                result = Delivery(url, event, response.status_code, None, sent, answer)
            except httpx.HTTPError as exc:
                result = Delivery(url, event, None, str(exc) or type(exc).__name__, sent)
            with self._lock:
                self.deliveries.append(result)
            return result

        with ThreadPoolExecutor(max_workers=len(jobs)) as pool:
            return list(pool.map(post, jobs))

    # the REST API

    def _check_key(self, given: str | None, instance: Instance | None = None) -> None:
        if given is not None and (
            secrets.compare_digest(given, self.api_key)
            or (instance is not None and secrets.compare_digest(given, instance.token))
        ):
            return
        raise envelope(401, "Unauthorized")

    def _validate(self, key: str, body: Any) -> None:
        validator = self._validators.get(key)
        if validator is not None:
            problems = _schema_messages(validator, body)
            if problems:
                raise envelope(400, [problems])
        if not isinstance(body, dict):
            raise envelope(400, [["instance is not of a type(s) object"]])

    def handle(self, method: str, path: str, headers: dict[str, str], body: Any) -> tuple[int, Any]:
        """Answer one REST call; returns (status, JSON body)."""
        with self._lock:
            self.requests.append((method, path))
        try:
            return self._route(method, path, headers.get("apikey"), body)
        except HTTPAnswer as answer:
            return answer.status, answer.body

    def _route(self, method: str, path: str, key: str | None, body: Any) -> tuple[int, Any]:
        if method == "POST" and path == "/instance/create":
            self._check_key(key)
            return self._create(body)
        if method == "GET" and path == "/instance/fetchInstances":
            self._check_key(key)
            with self._lock:
                return 200, [
                    {"name": i.name, "connectionStatus": i.state} for i in self.instances.values()
                ]
        match = INSTANCE_ROUTE.match(path)
        if match is None:
            raise envelope(404, [f"Cannot {method} {path}"])
        route, name = match.group(1), unquote(match.group(2))
        with self._lock:
            instance = self.instances.get(name)
        if instance is None:
            raise envelope(404, [f'The "{name}" instance does not exist'])
        self._check_key(key, instance)
        handlers: dict[tuple[str, str], Callable[[Instance, Any], tuple[int, Any]]] = {
            ("GET", "instance/connect"): self._connect,
            ("GET", "instance/connectionState"): self._state,
            ("DELETE", "instance/logout"): self._logout,
            ("POST", "message/sendText"): self._send_text,
            ("POST", "chat/sendPresence"): self._send_presence,
            ("POST", "chat/findMessages"): self._find_messages,
            ("POST", "webhook/set"): self._set_webhook,
            ("GET", "webhook/find"): lambda i, _b: (200, dict(i.webhook_row) or None),
            ("POST", "chat/getBase64FromMediaMessage"): self._media_base64,
        }
        handler = handlers.get((method, route))
        if handler is None:
            raise envelope(404, [f"Cannot {method} {path}"])
        return handler(instance, body)

    def _create(self, body: Any) -> tuple[int, Any]:
        self._validate("create", body)
        name = body.get("instanceName")
        if not isinstance(name, str) or not name:
            raise envelope(400, ["instanceName is required"])
        if body.get("integration", "WHATSAPP-BAILEYS") != "WHATSAPP-BAILEYS":
            raise envelope(400, ["Invalid integration"])
        webhook = body.get("webhook")
        if webhook is not None and (not isinstance(webhook, dict) or "events" not in webhook):
            raise envelope(400, ["Webhook events are required"])
        with self._lock:
            if name in self.instances:
                raise envelope(403, [f'This name "{name}" is already in use.'])
            instance = Instance(name=name, token=str(uuid.uuid4()).upper(), state="connecting")
            if isinstance(webhook, dict) and webhook.get("url"):
                instance.webhook = {"enabled": True, **webhook}
                instance.webhook_row = _webhook_row(instance, instance.webhook, {})
            self.instances[name] = instance
            self._connects_left[name] = self.not_ready_connects
            qrcode = self._new_qr(instance) if self.qr_ready_on_create else {"count": 0}
        return 201, {
            "instance": {
                "instanceName": name,
                "instanceId": instance.instance_id,
                "integration": "WHATSAPP-BAILEYS",
                "webhookWaBusiness": None,
                "accessTokenWaBusiness": "",
                "status": "connecting",
            },
            "hash": instance.token,
            "webhook": (
                {
                    "webhookUrl": webhook.get("url"),
                    "webhookHeaders": webhook.get("headers") or {},
                    "webhookByEvents": bool(webhook.get("byEvents")),
                    "webhookBase64": bool(webhook.get("base64")),
                }
                if isinstance(webhook, dict) and webhook.get("url")
                else {}
            ),
            "websocket": {},
            "rabbitmq": {},
            "nats": {},
            "sqs": {},
            "settings": {
                "rejectCall": False,
                "msgCall": "",
                "groupsIgnore": False,
                "alwaysOnline": False,
                "readMessages": False,
                "readStatus": False,
                "syncFullHistory": False,
                "wavoipToken": "",
            },
            **({"qrcode": qrcode} if body.get("qrcode") else {}),
        }

    def _connect(self, instance: Instance, _body: Any) -> tuple[int, Any]:
        with self._lock:
            if self.fail_connect is not None:
                message, self.fail_connect = self.fail_connect, None
                return 200, {"error": True, "message": message}
            if instance.state == "open":
                return 200, {"instance": {"instanceName": instance.name, "state": "open"}}
            instance.state = "connecting"
            if self._connects_left.get(instance.name, 0) > 0:
                self._connects_left[instance.name] -= 1
                return 200, {"count": 0}
            if instance.qr_code is None:
                return 200, self._new_qr(instance)
            return 200, {
                "pairingCode": None,
                "code": instance.qr_code,
                "base64": PNG_1X1,
                "count": instance.qr_count,
            }

    def add_media(self, message_id: str, data: bytes, mimetype: str) -> None:
        """The file of a received message, as the gateway would decrypt it."""
        with self._lock:
            self.media[message_id] = (data, mimetype)

    def _media_base64(self, _instance: Instance, body: Any) -> tuple[int, Any]:
        import base64

        message = body.get("message") if isinstance(body, dict) else None
        key = message.get("key") if isinstance(message, dict) else None
        message_id = key.get("id") if isinstance(key, dict) else None
        if not isinstance(message_id, str):
            raise envelope(400, ["Message not found"])
        with self._lock:
            self.media_requests.append(message_id)
            found = self.media.get(message_id)
        if found is None:
            raise envelope(400, ["Message not found"])
        data, mimetype = found
        media_type = "audioMessage" if mimetype.startswith("audio/") else "imageMessage"
        extension = "oga" if mimetype.startswith("audio/ogg") else mimetype.split("/")[-1]
        return 201, {
            "mediaType": media_type,
            "fileName": f"{message_id}.{extension}",
            "size": {"fileLength": str(len(data))},
            "mimetype": mimetype,
            "base64": base64.b64encode(data).decode("ascii"),
            "buffer": None,
        }

    def _state(self, instance: Instance, _body: Any) -> tuple[int, Any]:
        return 200, {"instance": {"instanceName": instance.name, "state": instance.state}}

    def _logout(self, instance: Instance, _body: Any) -> tuple[int, Any]:
        with self._lock:
            if instance.state != "open":
                raise envelope(400, [f'The "{instance.name}" instance is not connected'])
            instance.state = "close"
        return 200, {
            "status": "SUCCESS",
            "error": False,
            "response": {"message": "Instance logged out"},
        }

    def _send_text(self, instance: Instance, body: Any) -> tuple[int, Any]:
        self._validate("sendText", body)
        number, text = body.get("number"), body.get("text")
        if not isinstance(number, str) or not isinstance(text, str):
            raise envelope(400, [['instance requires property "number" and "text"']])
        if not text.strip():
            raise envelope(400, ["Text is required"])
        if self.down == "closed" or instance.state != "open":
            # as 2.3.7 answers while its socket is down (captures/http-send-text-500-...)
            raise envelope(500, "Connection Closed")
        jid = number if "@" in number else f"{re.sub(r'[^0-9]', '', number)}@s.whatsapp.net"
        if number.split("@")[0] in self.not_on_whatsapp:
            raise envelope(400, [{"jid": jid, "exists": False, "number": number}])
        message_id = "BAE5" + secrets.token_hex(6).upper()
        delay = body.get("delay")
        with self._lock:
            self.sent.append(
                SentText(
                    instance.name,
                    number,
                    text,
                    delay if isinstance(delay, int) else None,
                    message_id,
                )
            )
        answer = {
            "key": {"remoteJid": jid, "fromMe": True, "id": message_id},
            "pushName": "",
            "status": "PENDING",
            "message": {"conversation": text},
            "messageType": "conversation",
            "messageTimestamp": int(time.time()),
            "instanceId": instance.instance_id,
            "source": "unknown",
        }
        self.store_message(answer)
        fault = self._take_send_fault()
        if self.echo_sent:
            data = self.message_data(
                instance,
                text=text,
                number=jid.split("@")[0],
                push_name="Business",
                message_id=message_id,
                from_me=True,
            )
            threading.Thread(
                target=self.deliver, args=(instance.name, "messages.upsert", data), daemon=True
            ).start()
        if fault is not None:
            raise SendFault(str(fault["mode"]), float(fault.get("seconds") or 0), 201, answer)
        return 201, answer

    def _take_send_fault(self) -> dict[str, Any] | None:
        with self._lock:
            fault = self.send_fault
            if fault is None:
                return None
            fault["count"] = int(fault.get("count", 1)) - 1
            if fault["count"] <= 0:
                self.send_fault = None
            return dict(fault)

    def _find_messages(self, instance: Instance, body: Any) -> tuple[int, Any]:
        """``/chat/findMessages`` as 2.3.7 answers it: ``where.key`` ``remoteJid``, ``id``
        and a true ``fromMe`` filter (false is ignored); ``messageTimestamp`` needs both
        ``gte`` and ``lte`` (ISO strings or epoch milliseconds); newest first, ``offset``
        per ``page``."""
        self._validate("findMessages", body)
        where: dict[str, Any] = body["where"] if isinstance(body.get("where"), dict) else {}
        key: dict[str, Any] = where["key"] if isinstance(where.get("key"), dict) else {}
        window = where.get("messageTimestamp")
        low = high = None
        if isinstance(window, dict) and "gte" in window and "lte" in window:
            low, high = _epoch_seconds(window["gte"]), _epoch_seconds(window["lte"])
        with self._lock:
            records = [r for r in self.stored if r.get("instanceId") == instance.instance_id]
        matches = []
        for record in records:
            record_key = record["key"]
            if key.get("remoteJid") and record_key.get("remoteJid") != key["remoteJid"]:
                continue
            if key.get("id") and record_key.get("id") != key["id"]:
                continue
            if key.get("fromMe") is True and record_key.get("fromMe") is not True:
                continue
            stamp = record.get("messageTimestamp")
            if (
                low is not None
                and high is not None
                and not (isinstance(stamp, int) and low <= stamp <= high)
            ):
                continue
            matches.append(record)
        matches.sort(key=lambda r: r.get("messageTimestamp") or 0, reverse=True)
        size = body.get("offset") if isinstance(body.get("offset"), int) else 50
        page = body.get("page") if isinstance(body.get("page"), int) else 1
        size, page = max(1, size), max(1, page)
        chunk = matches[(page - 1) * size : page * size]
        pages = max(1, -(-len(matches) // size))
        return 200, {
            "messages": {
                "total": len(matches),
                "pages": pages,
                "currentPage": page,
                "records": chunk,
            }
        }

    def _send_presence(self, instance: Instance, body: Any) -> tuple[int, Any]:
        self._validate("sendPresence", body)
        if self.down == "closed" or instance.state != "open":
            raise envelope(400, ["Error: Connection Closed"])
        number, presence, delay = body.get("number"), body.get("presence"), body.get("delay")
        if not isinstance(number, str) or not isinstance(presence, str):
            raise envelope(400, [['instance requires property "number"']])
        with self._lock:
            delay_ms = int(delay) if isinstance(delay, int | float) else 0
            self.presences.append(Presence(instance.name, number, presence, delay_ms))
        return 201, {"presence": presence}

    def _set_webhook(self, instance: Instance, body: Any) -> tuple[int, Any]:
        self._validate("webhookSet", body)
        webhook = body.get("webhook")
        if not isinstance(webhook, dict) or not isinstance(webhook.get("url"), str):
            raise envelope(400, [['instance requires property "webhook"']])
        if webhook.get("enabled") is True and not webhook.get("events"):
            raise envelope(500, ["Cannot read properties of undefined (reading 'length')"])
        with self._lock:
            instance.webhook = dict(webhook)
            instance.webhook_row = _webhook_row(instance, webhook, instance.webhook_row)
            return 201, dict(instance.webhook_row)

    # control endpoints

    def control(self, action: str, body: dict[str, Any]) -> Any:
        """What ``POST /_fake/{action}`` does; ``body`` may name the ``instance``."""
        name = body.get("instance")
        if action == "scan":
            return [asdict(d) for d in self.scan(name)]
        if action == "rotate-qr":
            return [asdict(d) for d in self.rotate_qr(name)]
        if action == "refuse":
            return [asdict(d) for d in self.refuse(name)]
        if action == "phone-logout":
            return [asdict(d) for d in self.phone_logout(name)]
        if action == "down":
            mode = body.get("mode")
            if mode not in (None, "closed", "drop"):
                raise HTTPAnswer(400, {"error": "mode is closed, drop or null"})
            with self._lock:
                self.down = mode
            return {"down": mode}
        if action == "fail-connect":
            with self._lock:
                self.fail_connect = str(body.get("message") or "Internal error")
            return {"ok": True}
        if action == "send-fault":
            mode = body.get("mode")
            if mode not in (None, "slow", "reset"):
                raise HTTPAnswer(400, {"error": "mode is slow, reset or null"})
            with self._lock:
                self.send_fault = (
                    None
                    if mode is None
                    else {
                        "mode": mode,
                        "seconds": float(body.get("seconds") or 0),
                        "count": int(body.get("count") or 1),
                    }
                )
            return {"send_fault": self.send_fault}
        if action == "store-message":
            stored_options: dict[str, Any] = {
                k: body[k]
                for k in ("number", "push_name", "message_id", "lid", "timestamp")
                if k in body
            }
            return self.customer_wrote_while_receiver_down(
                name, body.get("text", "Hola"), **stored_options
            )
        if action == "not-on-whatsapp":
            with self._lock:
                self.not_on_whatsapp.add(str(body.get("number")))
            return {"ok": True}
        if action == "deliver":
            options = {
                k: body[k]
                for k in (
                    "number",
                    "push_name",
                    "message_id",
                    "lid",
                    "from_me",
                    "message",
                    "timestamp",
                )
                if k in body
            }
            deliveries = self.deliver_message(
                name, body.get("text", "Hola"), copies=int(body.get("copies", 1)), **options
            )
            return [asdict(d) for d in deliveries]
        if action == "reset":
            self.reset()
            return {"ok": True}
        raise HTTPAnswer(404, {"error": f"no control action {action!r}"})


def _webhook_row(
    instance: Instance, webhook: dict[str, Any], previous: dict[str, Any]
) -> dict[str, Any]:
    now = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    return {
        "id": previous.get("id") or "c" + secrets.token_hex(12),
        "url": webhook.get("url"),
        "headers": webhook.get("headers") or {},
        "enabled": bool(webhook.get("enabled")),
        "events": list(webhook.get("events") or []),
        "webhookByEvents": bool(webhook.get("byEvents")),
        "webhookBase64": bool(webhook.get("base64")),
        "createdAt": previous.get("createdAt") or now,
        "updatedAt": now,
        "instanceId": instance.instance_id,
    }


def _epoch_seconds(value: Any) -> int | None:
    """A findMessages bound as the gateway reads it: an ISO string, or epoch
    milliseconds (so unix seconds match nothing, as on the real gateway)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return int(value // 1000)
    if isinstance(value, str):
        try:
            return int(datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp())
        except ValueError:
            return None
    return None


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    # the stdlib default backlog (5) drops connections under a burst of concurrent calls
    request_queue_size = 256


class _Handler(BaseHTTPRequestHandler):
    gateway: FakeGateway
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _answer(self, status: int, body: Any) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json; charset=utf-8")
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _reset(self) -> None:
        """Close with a TCP reset (SO_LINGER 0), no answer: "connection reset by peer"."""
        self.close_connection = True
        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.connection.close()

    def _dispatch(self, method: str) -> None:
        length = int(self.headers.get("content-length") or 0)
        raw = self.rfile.read(length) if length else b""
        path = urlsplit(self.path).path
        gateway = self.gateway
        if gateway.down == "drop" and not path.startswith("/_fake/"):
            self.close_connection = True
            self.connection.close()
            return
        try:
            body: Any = json.loads(raw) if raw else None
        except ValueError:
            self._answer(
                400,
                {
                    "status": 400,
                    "error": "Bad Request",
                    "response": {"message": ["Unexpected token in JSON"]},
                },
            )
            return
        if path.startswith("/_fake/"):
            action = path.removeprefix("/_fake/")
            try:
                if method == "GET" and action == "state":
                    self._answer(200, gateway.snapshot())
                elif method == "GET" and action == "sent":
                    self._answer(200, gateway.sent_snapshot())
                elif method == "POST":
                    self._answer(
                        200, gateway.control(action, body if isinstance(body, dict) else {})
                    )
                else:
                    self._answer(405, {"error": "method not allowed"})
            except HTTPAnswer as refused:
                self._answer(refused.status, refused.body)
            except KeyError as exc:
                self._answer(404, {"error": str(exc)})
            return
        headers = {k.lower(): v for k, v in self.headers.items()}
        try:
            status, answer = gateway.handle(method, path, headers, body)
        except SendFault as fault:
            if fault.mode == "reset":
                self._reset()
                return
            time.sleep(fault.seconds)
            with contextlib.suppress(OSError):  # the client gave up meanwhile
                self._answer(fault.status, fault.body)
            return
        except Exception as exc:  # a bug in the fake: answer like the gateway would
            status, answer = (
                500,
                {
                    "status": 500,
                    "error": "Internal Server Error",
                    "response": {"message": [repr(exc)]},
                },
            )
        self._answer(status, answer)

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def do_DELETE(self) -> None:
        self._dispatch("DELETE")

    def do_PUT(self) -> None:
        self._dispatch("PUT")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="A fake Evolution API gateway for tests.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--api-key", default="fake-global-key")
    parser.add_argument("--schemas", type=Path, default=None, help="dir of *.schema.json")
    parser.add_argument("--global-webhook", default=None, help="WEBHOOK_GLOBAL_URL (no auth)")
    parser.add_argument("--qr-ready-on-create", action="store_true")
    parser.add_argument(
        "--echo-sent",
        action="store_true",
        help="echo sent texts back as fromMe messages.upsert webhooks",
    )
    args = parser.parse_args(argv)
    gateway = FakeGateway(
        api_key=args.api_key,
        host=args.host,
        port=args.port,
        schemas_dir=args.schemas,
        global_webhook_url=args.global_webhook,
        qr_ready_on_create=args.qr_ready_on_create,
        echo_sent=args.echo_sent,
    )
    stopped = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopped.set())
    signal.signal(signal.SIGINT, lambda *_: stopped.set())
    with gateway:
        print(f"fake evolution gateway listening on {gateway.url}", flush=True)
        stopped.wait()
    return 0


if __name__ == "__main__":
    sys.exit(main())
