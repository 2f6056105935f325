"""A small async client for the Evolution API (v2) REST calls nicobot needs."""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

import aiohttp
from aiohttp.helpers import get_env_proxy_for_url
from yarl import URL

#: The webhook events nicobot asks for.
WEBHOOK_EVENTS: tuple[str, ...] = ("MESSAGES_UPSERT", "CONNECTION_UPDATE", "QRCODE_UPDATED")
USER_AGENT = "nicobot-whatsapp-evolution"


class EvolutionError(Exception):
    """A failed gateway call. ``status`` is the HTTP status, 0 when the gateway was not
    reached; ``messages`` the gateway's reasons, always as plain strings."""

    def __init__(
        self,
        status: int,
        messages: Sequence[str],
        *,
        ambiguous: bool = False,
        retry_after: float | None = None,
    ) -> None:
        self.status = status
        self.messages = [m for m in messages if m] or [f"HTTP {status}"]
        #: The request may have reached the gateway (no answer in time, the connection
        #: broke after it was sent): a send may have gone out.
        self.ambiguous = ambiguous
        #: Seconds the gateway asked to wait (a ``Retry-After`` header), if any.
        self.retry_after = retry_after
        super().__init__(str(self))

    def __str__(self) -> str:
        text = "; ".join(self.messages)
        if self.status == 0:
            return text
        return f"Evolution API error {self.status}: {text}"

    @property
    def unreachable(self) -> bool:
        return self.status == 0

    @property
    def is_connection_closed(self) -> bool:
        """The gateway's WhatsApp socket died: reconnect the instance, then retry."""
        return any("connection closed" in m.lower() for m in self.messages)

    @property
    def is_not_on_whatsapp(self) -> bool:
        return any(m.endswith(" is not on WhatsApp") for m in self.messages)

    @property
    def is_invalid_request(self) -> bool:
        """The gateway's schema validation refused the body: resending cannot help."""
        return self.status == 400 and any(
            m.startswith("instance") and " requires property " in m for m in self.messages
        )

    @property
    def is_name_taken(self) -> bool:
        return self.status == 403 and any("already in use" in m for m in self.messages)

    @property
    def is_not_found(self) -> bool:
        return self.status == 404


def _flatten(value: Any, depth: int = 0) -> list[str]:
    if depth > 8 or value is None or value == "":
        return []
    if isinstance(value, str):
        return [value.strip()] if value.strip() else []
    if isinstance(value, bool | int | float):
        return [str(value)]
    if isinstance(value, list):
        return [text for item in value for text in _flatten(item, depth + 1)]
    if isinstance(value, dict):
        if value.get("exists") is False:
            who = value.get("number") or value.get("jid") or "the number"
            return [f"{who} is not on WhatsApp"]
        if "message" in value:
            return _flatten(value["message"], depth + 1)
        return [json.dumps(value, ensure_ascii=False, sort_keys=True, default=str)]
    return [str(value)]


def error_messages(body: Any) -> list[str]:
    """Every error envelope the gateway uses, as a list of strings.

    ``{"status", "error", "response": {"message": M}}`` with ``M`` a string, a list of
    strings, a list of lists or a list of objects; ``{"error": true, "message": M}``;
    a bare list or a plain string (older servers).
    """
    if isinstance(body, dict):
        response = body.get("response")
        if isinstance(response, dict) and "message" in response:
            found = _flatten(response["message"])
        elif "message" in body:
            found = _flatten(body["message"])
        elif response is not None:
            found = _flatten(response)
        else:
            found = []
        if not found and isinstance(body.get("error"), str):
            found = [body["error"]]
        return found
    return _flatten(body)


@dataclass(frozen=True, slots=True)
class QRCode:
    """A pairing QR as the gateway gives it; ``count`` 0 means not ready yet."""

    code: str | None = None
    base64: str | None = None
    pairing_code: str | None = None
    count: int = 0

    @property
    def ready(self) -> bool:
        return bool(self.code or self.base64)

    @property
    def data_url(self) -> str | None:
        """The PNG as a ``data:`` URL, when the gateway sent one."""
        if isinstance(self.base64, str) and self.base64.startswith("data:image/"):
            return self.base64
        return None

    @classmethod
    def from_json(cls, value: Any) -> QRCode | None:
        if not isinstance(value, dict):
            return None

        def text(key: str) -> str | None:
            item = value.get(key)
            return item if isinstance(item, str) and item else None

        count = value.get("count")
        return cls(
            code=text("code"),
            base64=text("base64"),
            pairing_code=text("pairingCode"),
            count=count if isinstance(count, int) and not isinstance(count, bool) else 0,
        )


@dataclass(frozen=True, slots=True)
class CreatedInstance:
    token: str | None
    qr: QRCode | None


@dataclass(frozen=True, slots=True)
class ConnectAnswer:
    """``state`` is ``"open"`` when already connected; otherwise ``qr`` (maybe not ready)."""

    state: str | None
    qr: QRCode | None


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _state_of(body: Any) -> str | None:
    if isinstance(body, dict):
        instance = body.get("instance")
        if isinstance(instance, dict) and isinstance(instance.get("state"), str):
            return str(instance["state"])
        if isinstance(body.get("state"), str):
            return str(body["state"])
    return None


def _never_sent(cause: BaseException) -> bool:
    """True when the request cannot have reached the gateway (no connection was made)."""
    return isinstance(
        cause,
        aiohttp.ClientConnectorError | aiohttp.ConnectionTimeoutError | aiohttp.InvalidURL,
    )


def _timeouts(seconds: float) -> aiohttp.ClientTimeout:
    """``seconds`` for each phase (a connection, then each read), as httpx counts them: a
    connection that never opens fails as a connection timeout, so the call is known not to
    have reached the gateway."""
    return aiohttp.ClientTimeout(
        total=None, connect=seconds, sock_connect=seconds, sock_read=seconds
    )


def _body(raw: bytes) -> Any:
    """A response's JSON, or its text when it is not JSON."""
    try:
        return json.loads(raw)
    except ValueError:
        return raw.decode("utf-8", errors="replace")


def _retry_after(value: str | None) -> float | None:
    if value is None or not value.strip().isdigit():
        return None
    return float(min(int(value.strip()), 86400))


def jid_of(address: str) -> str:
    """The JID the gateway stores for an address: a full JID as is, else the number's."""
    if "@" in address:
        return address
    return f"{''.join(c for c in address if c.isdigit())}@s.whatsapp.net"


@dataclass(frozen=True, slots=True)
class MessagePage:
    """One page of ``/chat/findMessages``, newest first."""

    records: list[dict[str, Any]]
    pages: int


def proxied(url: str) -> bool:
    """Whether the environment (``HTTP(S)_PROXY``, ``NO_PROXY``) sends ``url`` through a
    proxy."""
    try:
        get_env_proxy_for_url(URL(url))
    except LookupError:
        return False
    return True


def _session_factory(base_url: str) -> Callable[..., aiohttp.ClientSession]:
    """Sessions that honour the proxy settings, read once: a session that trusts the
    environment reads it (and ~/.netrc) again on every request."""
    trust_env = proxied(base_url)
    return functools.partial(aiohttp.ClientSession, trust_env=trust_env)


class EvolutionClient:
    """One connection pool to one gateway; every call has a timeout and raises
    :class:`EvolutionError` on any failure (network errors included)."""

    def __init__(self, base_url: str, api_key: str, *, timeout: float = 15.0) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self._headers = {"apikey": api_key, "user-agent": USER_AGENT}
        self._new_session = _session_factory(self.base_url)
        self._session: aiohttp.ClientSession | None = None

    def _http(self) -> aiohttp.ClientSession:
        """The connection pool, made on first use (inside the event loop it serves)."""
        if self._session is None or self._session.closed:
            self._session = self._new_session(headers=self._headers)
        return self._session

    async def aclose(self) -> None:
        session, self._session = self._session, None
        if session is not None:
            await session.close()

    async def __aenter__(self) -> EvolutionClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def _request(
        self,
        method: str,
        path: str,
        body: Mapping[str, Any] | None = None,
        *,
        extra_seconds: float = 0.0,
    ) -> Any:
        timeout = self.timeout + max(0.0, extra_seconds)
        try:
            async with self._http().request(
                method,
                self.base_url + path,
                json=body,
                timeout=_timeouts(timeout),
            ) as response:
                status, raw = response.status, await response.read()
                retry_after = response.headers.get("retry-after")
        except (aiohttp.ClientError, TimeoutError) as exc:
            if isinstance(exc, TimeoutError):
                reason = f"no answer within {timeout:g} s"
            else:
                reason = str(exc) or type(exc).__name__
            raise EvolutionError(
                0,
                [f"gateway unreachable: {reason} ({self.base_url})"],
                ambiguous=not _never_sent(exc),
            ) from None
        data = _body(raw)
        if status >= 400:
            raise EvolutionError(
                status, error_messages(data), retry_after=_retry_after(retry_after)
            )
        if isinstance(data, dict) and data.get("error") is True:
            raise EvolutionError(status, error_messages(data) or ["gateway error"])
        return data

    @staticmethod
    def _path(prefix: str, instance: str) -> str:
        return f"{prefix}/{quote(instance, safe='')}"

    async def create_instance(
        self,
        instance: str,
        *,
        webhook_url: str,
        webhook_headers: Mapping[str, str],
        events: Sequence[str] = WEBHOOK_EVENTS,
    ) -> CreatedInstance:
        body = {
            "instanceName": instance,
            "integration": "WHATSAPP-BAILEYS",
            "qrcode": True,
            "webhook": {
                "enabled": True,
                "url": webhook_url,
                "headers": dict(webhook_headers),
                "byEvents": False,
                "base64": False,
                "events": list(events),
            },
        }
        data = await self._request("POST", "/instance/create", body)
        token: str | None = None
        if isinstance(data, dict):
            raw = data.get("hash")
            if isinstance(raw, str):
                token = raw
            elif isinstance(raw, dict) and isinstance(raw.get("apikey"), str):
                token = raw["apikey"]  # v1 servers
            qr = QRCode.from_json(data.get("qrcode"))
        else:
            qr = None
        return CreatedInstance(token=token, qr=qr)

    async def connect(self, instance: str) -> ConnectAnswer:
        data = await self._request("GET", self._path("/instance/connect", instance))
        state = _state_of(data)
        if state is not None:
            return ConnectAnswer(state=state, qr=None)
        return ConnectAnswer(state=None, qr=QRCode.from_json(data) or QRCode())

    async def connection_state(self, instance: str) -> str:
        data = await self._request("GET", self._path("/instance/connectionState", instance))
        state = _state_of(data)
        if state is None:
            raise EvolutionError(200, ["unexpected connectionState answer"])
        return state

    async def logout(self, instance: str) -> None:
        await self._request("DELETE", self._path("/instance/logout", instance))

    async def send_text(
        self, instance: str, number: str, text: str, *, delay_ms: int = 0
    ) -> str | None:
        """Send ``text``; ``delay_ms`` shows "typing..." that long first (the call waits)."""
        body: dict[str, Any] = {"number": number, "text": text}
        if delay_ms > 0:
            body["delay"] = int(delay_ms)
        data = await self._request(
            "POST",
            self._path("/message/sendText", instance),
            body,
            extra_seconds=delay_ms / 1000,
        )
        if isinstance(data, dict):
            key = data.get("key")
            if isinstance(key, dict) and isinstance(key.get("id"), str):
                return str(key["id"])
        return None

    async def find_messages(
        self,
        instance: str,
        *,
        since: datetime,
        until: datetime,
        remote_jid: str | None = None,
        from_me: bool | None = None,
        page: int = 1,
        page_size: int = 50,
    ) -> MessagePage:
        """Stored messages between ``since`` and ``until`` (the gateway keeps them with
        ``DATABASE_SAVE_DATA_NEW_MESSAGE=true``), newest first. ``from_me=False`` is
        ignored by the gateway: filter in code."""
        key: dict[str, Any] = {}
        if remote_jid:
            key["remoteJid"] = remote_jid
        if from_me is not None:
            key["fromMe"] = from_me
        where: dict[str, Any] = {
            # ISO strings: the gateway reads numbers as milliseconds
            "messageTimestamp": {"gte": _iso(since), "lte": _iso(until)},
        }
        if key:
            where["key"] = key
        body = {"where": where, "page": page, "offset": page_size}
        data = await self._request("POST", self._path("/chat/findMessages", instance), body)
        found = data.get("messages") if isinstance(data, dict) else None
        if not isinstance(found, dict):
            raise EvolutionError(200, ["unexpected findMessages answer"])
        records = [r for r in found.get("records") or [] if isinstance(r, dict)]
        pages = found.get("pages")
        return MessagePage(records, pages if isinstance(pages, int) else 1)

    async def send_presence(
        self, instance: str, number: str, *, delay_ms: int, presence: str = "composing"
    ) -> None:
        """Show ``presence`` to ``number`` for ``delay_ms`` (the gateway holds the call)."""
        body = {"number": number, "presence": presence, "delay": int(delay_ms)}
        await self._request(
            "POST",
            self._path("/chat/sendPresence", instance),
            body,
            extra_seconds=delay_ms / 1000,
        )

    async def media_base64(
        self, instance: str, key: Mapping[str, Any], message: Mapping[str, Any]
    ) -> dict[str, Any] | None:
        """A received file, decrypted by the gateway: ``{"mimetype", "fileName",
        "base64", ...}``, or None when the message holds none. Given the message's key
        and content, the gateway needs no database to find it."""
        body = {"message": {"key": dict(key), "message": dict(message)}, "convertToMp4": False}
        data = await self._request(
            "POST", self._path("/chat/getBase64FromMediaMessage", instance), body
        )
        return data if isinstance(data, dict) and isinstance(data.get("base64"), str) else None

    async def set_webhook(
        self,
        instance: str,
        *,
        url: str,
        headers: Mapping[str, str],
        events: Sequence[str] = WEBHOOK_EVENTS,
        enabled: bool = True,
        by_events: bool = False,
        base64: bool = False,
    ) -> None:
        body = {
            "webhook": {
                "enabled": enabled,
                "url": url,
                "headers": dict(headers),
                "events": list(events),
                "byEvents": by_events,
                "base64": base64,
            }
        }
        await self._request("POST", self._path("/webhook/set", instance), body)
