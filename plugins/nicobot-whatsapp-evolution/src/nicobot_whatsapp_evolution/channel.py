"""The WhatsApp channel: an Evolution API instance, its QR pairing and its webhooks."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import hashlib
import hmac
import logging
import time
from collections import deque
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar

from nicobot import (
    Channel,
    ChannelConfig,
    ChannelContext,
    ChannelStatus,
    IncomingMessage,
    MediaFile,
    OutgoingMessage,
    PermanentSendError,
    RetryLater,
    SendOutcomeUnknown,
    SentCheck,
    WebhookRejected,
    WebhookRequest,
    WebhookResult,
)

from .auth import authenticate
from .client import (
    WEBHOOK_EVENTS,
    ConnectAnswer,
    EvolutionClient,
    EvolutionError,
    QRCode,
    jid_of,
)
from .config import WhatsAppConfig, merge_config
from .history import ConnectionHistory
from .media import decode_media
from .parsing import (
    ConnectionUpdate,
    Freshness,
    Ignored,
    MessageEvent,
    QRUpdate,
    message_text,
    parse_stored_message,
    parse_webhook,
    split_jid,
)

log = logging.getLogger("nicobot.whatsapp")

SENT_IDS_KEPT = 5000
TYPING_HARD_CAP_SECONDS = 20.0
RECONNECT_EVERY_SECONDS = 30.0
#: Logging out of a gateway that may be redialing (see _logout_every_loop).
LOGOUT_EVERY_SECONDS = 0.15
LOGOUT_QUIET_SECONDS = 1.5
LOGOUT_WITHIN_SECONDS = 20.0
#: A "connecting" webhook this recent means the gateway is still dialing.
DIAL_GRACE_SECONDS = 10.0
#: While no QR has come yet, the status asks the gateway for one at most this often at
#: first (pairing's own ask included), then twice as long after each of its answers without
#: one, up to the maximum.
QR_WAIT_REFRESH_SECONDS = 10.0
QR_WAIT_REFRESH_MAX_SECONDS = 60.0
#: Reconciling a send: how far past now to look (clocks differ), and at most how many
#: pages of 50 of the chat's sent messages to read.
FIND_SENT_AHEAD = timedelta(minutes=5)
FIND_SENT_PAGES = 4
#: Catching up after downtime: read back this much before the newest message seen, at
#: most this many pages of 50; if the gateway cannot be asked, try again this often.
CATCH_UP_SLACK = timedelta(seconds=30)
CATCH_UP_PAGES = 20
CATCH_UP_RETRY_SECONDS = 30.0
CATCH_UP_TRIES = 10

DETAILS = {
    "connected": "Connected to WhatsApp.",
    "scanning": "Scan the QR code with WhatsApp on the business phone (Linked devices).",
    "waiting_qr": "Waiting for the gateway to produce a QR code; ask again in a moment.",
    "connecting": "The gateway is connecting to WhatsApp.",
    "disconnected": "Not connected: connect and scan the QR code.",
    "logged_out": "Logged out from the phone: connect again and scan a new QR code.",
    "qr_limit": "The QR code was not scanned in time (limit reached): connect again.",
    "no_instance": "No WhatsApp instance on the gateway yet: connect to create it.",
    "not_configured": "Not configured: set EVOLUTION_API_URL and EVOLUTION_API_KEY.",
    "no_secret": (
        "No webhook secret: set EVOLUTION_WEBHOOK_SECRET (or NICOBOT_WEBHOOK_SECRET) so "
        "that nicobot can tell the gateway's calls from anyone else's."
    ),
}


def candidate_jids(address: str) -> list[str]:
    """JIDs under which the gateway may have stored a message sent to ``address``.

    WhatsApp's own JID for an Argentine mobile drops the 9 after the country code
    (``549...`` becomes ``54...``): both are tried."""
    jid = jid_of(address)
    user, _, domain = jid.partition("@")
    jids = [jid]
    if domain == "s.whatsapp.net" and user.startswith("549") and len(user) == 13:
        jids.append(f"54{user[3:]}@{domain}")
    return jids


def sent_record_id(record: Mapping[str, Any], text: str) -> str | None:
    """The id of a ``findMessages`` record that is a message we sent with ``text``."""
    key = record.get("key")
    if not isinstance(key, dict) or key.get("fromMe") is not True:
        return None
    content = record.get("message")
    if not isinstance(content, dict) or message_text(content) != text:
        return None
    record_id = key.get("id")
    return record_id if isinstance(record_id, str) and record_id else None


class WhatsAppChannel(Channel):
    """WhatsApp through a self-hosted Evolution API (v2) gateway."""

    name = "whatsapp"
    label = "WhatsApp"
    webhook_slug = "evolution"
    config_model: ClassVar[type[ChannelConfig]] = WhatsAppConfig
    supports_qr = True
    supports_disconnect = True
    supports_typing = True

    config: WhatsAppConfig

    def __init__(self, config: ChannelConfig, context: ChannelContext) -> None:
        super().__init__(config, context)
        # a call that timed out may still complete on the gateway: wait that long first
        self.reconcile_after_seconds = self.config.timeout_seconds
        self._client: EvolutionClient | None = None
        self._qr: QRCode | None = None
        self._reason: str | None = None  # "logged_out" / "qr_limit", from webhooks
        self._account: str | None = None
        self._last_reported: dict[str, Any] | None = None
        self._sent_ids: deque[str] = deque(maxlen=SENT_IDS_KEPT)
        self._sent_set: set[str] = set()
        self._last_reconnect = 0.0
        self._background: set[asyncio.Task[None]] = set()
        self._history = ConnectionHistory(context.load_state, context.save_state)
        self._catching_up: asyncio.Task[None] | None = None
        self._webhook_state: tuple[str | None, float] = (None, 0.0)
        self._qr_asked_at = -QR_WAIT_REFRESH_MAX_SECONDS
        self._qr_wait = QR_WAIT_REFRESH_SECONDS
        #: The start-up webhook update, while it runs (awaitable, e.g. in tests).
        self.webhook_sync: asyncio.Task[None] | None = None

    # configuration

    @classmethod
    def load_config(cls, table: Mapping[str, Any], env: Mapping[str, str]) -> WhatsAppConfig:
        return merge_config(table, env)

    @classmethod
    def instances(cls, config: ChannelConfig) -> list[tuple[type[Channel], ChannelConfig]]:
        """One channel per ``[channels.whatsapp.instances.NAME]``: ``whatsapp-NAME``, its
        webhooks at ``/api/webhooks/evolution-NAME``, the Evolution instance ``NAME``
        unless its table says otherwise, and every other key from ``[channels.whatsapp]``."""
        if not isinstance(config, WhatsAppConfig):
            return []
        base = config.model_dump(exclude={"instances", "instance"})
        found: list[tuple[type[Channel], ChannelConfig]] = []
        for key, table in sorted(config.instances.items()):
            merged = {**base, "instance": key, **table}
            label = str(merged.pop("label", "") or f"WhatsApp {key}")
            subclass = type(
                f"WhatsAppChannel_{key}",
                (cls,),
                {"name": f"{cls.name}-{key}", "label": label, "webhook_slug": f"evolution-{key}"},
            )
            found.append((subclass, WhatsAppConfig.model_validate(merged)))
        return found

    @property
    def configured(self) -> bool:
        return bool(self.config.url and self.config.api_key)

    @property
    def webhook_secret(self) -> str | None:
        """The configured secret, else one derived from ``NICOBOT_SECRET_KEY``."""
        if self.config.webhook_secret:
            return self.config.webhook_secret
        key = getattr(self.context.settings, "secret_key", None)
        if isinstance(key, str) and key:
            digest = hmac.new(key.encode(), b"nicobot-whatsapp-webhook", hashlib.sha256)
            return digest.hexdigest()
        return None

    @property
    def public_url(self) -> str:
        if self.config.public_url:
            return self.config.public_url
        server = self.context.settings.server
        if server.public_url:
            return str(server.public_url).rstrip("/")
        host = "127.0.0.1" if server.host in ("0.0.0.0", "::", "") else server.host
        return f"http://{host}:{server.port}"

    @property
    def webhook_url(self) -> str:
        return f"{self.public_url}/api/webhooks/{self.webhook_slug}"

    def _webhook_headers(self, secret: str) -> dict[str, str]:
        return {self.config.webhook_header: secret}

    @property
    def client(self) -> EvolutionClient:
        if self._client is None:
            self._client = EvolutionClient(
                self.config.url, self.config.api_key, timeout=self.config.timeout_seconds
            )
        return self._client

    # lifecycle

    async def start(self) -> None:
        """Point an existing instance's webhook here, in the background (the gateway
        may be slow or down; the server starts anyway)."""
        if not self.configured:
            return
        await self._history.load()
        if self.config.manage_webhook and self.webhook_secret:
            self.webhook_sync = self._spawn(self._sync_webhook())
        self._start_catch_up("start")

    async def stop(self) -> None:
        for task in list(self._background):
            task.cancel()
        for task in list(self._background):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    def _spawn(self, coro: Any) -> asyncio.Task[None]:
        task: asyncio.Task[None] = asyncio.create_task(coro)
        self._background.add(task)
        task.add_done_callback(self._background.discard)
        return task

    async def _sync_webhook(self) -> None:
        """On start: point an existing instance's webhook at this server (URL or secret
        may have changed since it was created)."""
        secret = self.webhook_secret
        if secret is None:
            return
        try:
            await self.client.connection_state(self.config.instance)
            await self._set_webhook(secret)
        except EvolutionError as exc:
            if not exc.is_not_found:
                log.warning("could not update the WhatsApp webhook on start: %s", exc)

    async def _set_webhook(self, secret: str) -> None:
        await self.client.set_webhook(
            self.config.instance,
            url=self.webhook_url,
            headers=self._webhook_headers(secret),
            events=WEBHOOK_EVENTS,
        )

    # status

    def _status(
        self, key: str, *, connected: bool = False, state: str | None = None
    ) -> ChannelStatus:
        qr = self._qr if key == "scanning" and self._qr is not None else None
        extra: dict[str, Any] = {"instance": self.config.instance}
        if qr is not None and qr.count:
            extra["qr_count"] = qr.count
        if key in ("logged_out", "qr_limit", "no_instance"):
            extra["reason"] = key
            state = "disconnected"
        elif key == "waiting_qr":
            state = "scanning"
        return ChannelStatus(
            connected=connected,
            state=state or key,
            details=DETAILS[key],
            qr=qr.data_url if qr else None,
            qr_code=qr.code if qr else None,
            account=self._account,
            extra=extra,
        )

    def _error_status(self, exc: EvolutionError) -> ChannelStatus:
        if exc.unreachable:
            return ChannelStatus(False, "unreachable", str(exc), account=self._account)
        if exc.status == 401:
            details = "The gateway refused the API key (check EVOLUTION_API_KEY)."
        else:
            details = str(exc)
        return ChannelStatus(False, "error", details, account=self._account)

    def _status_for_state(self, state: str) -> ChannelStatus:
        if state == "open":
            self._qr = None
            self._reason = None
            return self._status("connected", connected=True)
        if state == "connecting":
            key = "scanning" if self._qr is not None else "waiting_qr"
            return self._status(key)
        if state in ("close", "refused"):
            self._qr = None
            return self._status(self._reason or "disconnected")
        return ChannelStatus(False, state, f"Gateway state: {state}.", account=self._account)

    async def _report(self, status: ChannelStatus) -> None:
        snapshot = status.to_dict()
        if snapshot == self._last_reported:
            return
        self._last_reported = snapshot
        try:
            await self.context.report_status(status)
        except Exception:
            log.exception("reporting the WhatsApp status failed")

    async def get_status(self) -> ChannelStatus:
        if not self.configured:
            return self._status("not_configured")
        try:
            state = await self.client.connection_state(self.config.instance)
            if state == "close" and self._dialing():
                state = "connecting"  # between two dial attempts: not a change
            if state == "connecting" and self._may_refresh_qr():
                state = await self._refresh_qr()
        except EvolutionError as exc:
            status = self._status("no_instance") if exc.is_not_found else self._error_status(exc)
        else:
            status = self._status_for_state(state)
        await self._report(status)
        return status

    def _dialing(self) -> bool:
        """The gateway's webhooks said "connecting" lately (and nothing since): it is
        redialing, and its state API flips between connecting and close meanwhile."""
        state, at = self._webhook_state
        return state == "connecting" and time.monotonic() - at < DIAL_GRACE_SECONDS

    def _may_refresh_qr(self) -> bool:
        """With a QR shown, follow its rotation on every look. Without one yet, ask only
        once the wait since the last ask is over (pairing asks too): a gateway that cannot
        reach WhatsApp never makes one, takes seconds to say so, and may start one more
        dialing loop per ``GET /instance/connect``."""
        return self._qr is not None or time.monotonic() - self._qr_asked_at >= self._qr_wait

    async def _ask_for_qr(self, instance: str, *, pairing: bool = False) -> ConnectAnswer:
        """``GET /instance/connect``, remembered. Pairing's ask (usually answered before the
        QR exists) starts the wait; each later answer without a QR doubles it."""
        self._qr_asked_at = time.monotonic()
        answer = await self.client.connect(instance)
        if pairing or (answer.qr is not None and answer.qr.ready):
            self._qr_wait = QR_WAIT_REFRESH_SECONDS
        else:
            self._qr_wait = min(2 * self._qr_wait, QR_WAIT_REFRESH_MAX_SECONDS)
        return answer

    async def _refresh_qr(self) -> str:
        """While pairing, the gateway rotates the QR every few tens of seconds: take the
        current one (``GET /instance/connect`` only reads it while connecting)."""
        answer = await self._ask_for_qr(self.config.instance)
        if answer.state is not None:
            return answer.state
        current = self._qr.code if self._qr is not None else None
        if answer.qr is not None and answer.qr.ready and answer.qr.code != current:
            self._qr = answer.qr
        return "connecting"

    # pairing

    async def connect(self) -> ChannelStatus:
        """Create the instance if missing, point its webhook here, and fetch the QR."""
        if not self.configured:
            return self._status("not_configured")
        secret = self.webhook_secret
        if secret is None:
            return ChannelStatus(False, "error", DETAILS["no_secret"])
        instance = self.config.instance
        try:
            state: str | None
            try:
                state = await self.client.connection_state(instance)
            except EvolutionError as exc:
                if not exc.is_not_found:
                    raise
                state = None
            qr: QRCode | None = None
            if state is None:
                try:
                    created = await self.client.create_instance(
                        instance,
                        webhook_url=self.webhook_url,
                        webhook_headers=self._webhook_headers(secret),
                    )
                    qr = created.qr
                except EvolutionError as exc:
                    if not exc.is_name_taken:
                        raise
            if self.config.manage_webhook:
                await self._set_webhook(secret)
            if state == "open":
                status = self._status_for_state("open")
            else:
                self._qr_wait = QR_WAIT_REFRESH_SECONDS  # a new pairing: the first wait
                if qr is None or not qr.ready:
                    answer = await self._ask_for_qr(instance, pairing=True)
                    if answer.state == "open":
                        qr = None
                        state = "open"
                    else:
                        qr = answer.qr
                if state == "open":
                    status = self._status_for_state("open")
                else:
                    self._reason = None
                    if qr is not None and qr.ready:
                        self._qr = qr
                    status = self._status_for_state("connecting")
        except EvolutionError as exc:
            log.warning("connecting WhatsApp failed: %s", exc)
            status = self._error_status(exc)
        await self._report(status)
        return status

    async def disconnect(self) -> ChannelStatus:
        if not self.configured:
            return self._status("not_configured")
        try:
            await self._logout_every_loop()
        except EvolutionError as exc:
            status = self._error_status(exc)
            await self._report(status)
            return status
        self._qr = None
        self._reason = None
        status = self._status("disconnected")
        await self._report(status)
        return status

    async def _logout_every_loop(self) -> None:
        """Log out, and again while the gateway is still dialing.

        A gateway that cannot reach WhatsApp redials forever, accepts a logout only
        mid-dial (400 "not connected" otherwise) and needs one per dialing loop. So a
        400 ends this only once no "connecting" webhook came lately and the last
        success is LOGOUT_QUIET_SECONDS old; at most LOGOUT_WITHIN_SECONDS in all."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + LOGOUT_WITHIN_SECONDS
        last_success: float | None = None
        while loop.time() < deadline:
            try:
                await self.client.logout(self.config.instance)
            except EvolutionError as exc:
                if exc.status == 404:
                    return
                if exc.status != 400:
                    raise
                settled = last_success is None or loop.time() - last_success >= LOGOUT_QUIET_SECONDS
                if settled and not self._dialing():
                    return
            else:
                last_success = loop.time()
            await asyncio.sleep(LOGOUT_EVERY_SECONDS)
        log.warning("the gateway was still dialing after %g s of logouts", LOGOUT_WITHIN_SECONDS)

    # sending

    def _remember_sent(self, message_id: str) -> None:
        if len(self._sent_ids) == self._sent_ids.maxlen:
            self._sent_set.discard(self._sent_ids[0])
        self._sent_ids.append(message_id)
        self._sent_set.add(message_id)

    async def send_message(self, message: OutgoingMessage) -> str | None:
        """Send a reply. The core retries what this raises: :class:`EvolutionError` for
        a failure (a closed connection asks the gateway to reconnect), and
        ``SendOutcomeUnknown`` when the gateway may have sent it (no answer in time, the
        connection broke after the request); a number not on WhatsApp or a body the
        gateway rejects raise ``PermanentSendError``. The typing pause before it is
        :meth:`send_typing`'s, called by the core."""
        if not message.text.strip():
            log.warning("not sending an empty WhatsApp message to %s", message.address)
            return None
        try:
            message_id = await self.client.send_text(
                self.config.instance, message.address, message.text
            )
        except EvolutionError as exc:
            if exc.is_connection_closed:
                await self._reconnect()
            if exc.ambiguous:
                raise SendOutcomeUnknown(str(exc)) from exc
            if exc.is_not_on_whatsapp or exc.is_invalid_request:
                raise PermanentSendError(str(exc)) from exc
            if exc.retry_after is not None:
                raise RetryLater(str(exc), exc.retry_after) from exc
            raise
        if message_id:
            self._remember_sent(message_id)
        return message_id

    async def find_sent(self, message: OutgoingMessage, since: datetime) -> SentCheck:
        """Look for ``message`` among what the gateway stored as sent to that chat since
        ``since`` (same text; ids this process knows it sent for other replies are
        skipped). Needs ``DATABASE_SAVE_DATA_NEW_MESSAGE=true`` on the gateway; raises
        :class:`EvolutionError` when the gateway cannot be asked."""
        until = datetime.now(UTC) + FIND_SENT_AHEAD
        for jid in candidate_jids(message.address):
            for page in range(1, FIND_SENT_PAGES + 1):
                found = await self.client.find_messages(
                    self.config.instance,
                    since=since,
                    until=until,
                    remote_jid=jid,
                    from_me=True,
                    page=page,
                )
                for record in found.records:
                    record_id = sent_record_id(record, message.text)
                    if record_id is not None and record_id not in self._sent_set:
                        self._remember_sent(record_id)
                        return SentCheck.sent(record_id)
                if page >= found.pages:
                    break
        return SentCheck.not_sent()

    async def fetch_media(self, message: IncomingMessage, max_bytes: int) -> MediaFile | None:
        """The webhook's own copy of the file, else ``getBase64FromMediaMessage``."""
        reference = message.media or {}
        if not reference.get("type"):
            return None
        length = reference.get("file_length")
        if isinstance(length, int) and length > max_bytes:
            log.info("not fetching a %d-byte file (over [media] max_bytes)", length)
            return None
        fetched: dict[str, Any] | None = None
        if not reference.get("base64"):
            fetched = await self.client.media_base64(
                self.config.instance, reference.get("key") or {}, reference.get("message") or {}
            )
            if fetched is None:
                return None
        return decode_media(message.message_id, reference, fetched, max_bytes)

    async def _reconnect(self) -> None:
        """The socket died while the state still says open: ask for a reconnect. While
        the gateway is dialing already (or logged out) a connect would only start one
        more dialing loop: then the reply just waits."""
        if time.monotonic() - self._last_reconnect < RECONNECT_EVERY_SECONDS:
            return
        self._last_reconnect = time.monotonic()
        try:
            if await self.client.connection_state(self.config.instance) != "open":
                return
            log.warning("WhatsApp connection closed; asking the gateway to reconnect")
            await self.client.connect(self.config.instance)
        except EvolutionError as exc:
            log.warning("reconnecting WhatsApp failed: %s", exc)

    async def send_typing(self, address: str, seconds: float) -> None:
        """ "typing..." for ``seconds`` (capped by ``typing_max_seconds``); the gateway
        holds the call that long. A failure is logged, never raised."""
        cap = getattr(self.config, "typing_max_seconds", 4.0)
        delay = min(seconds, float(cap), TYPING_HARD_CAP_SECONDS)
        if delay <= 0 or not self.configured:
            return
        try:
            await self.client.send_presence(
                self.config.instance, address, delay_ms=int(delay * 1000)
            )
        except EvolutionError as exc:
            log.debug("typing indicator failed: %s", exc)

    # catching up after downtime

    def _start_catch_up(self, reason: str) -> None:
        if not self.config.catch_up or self.context.submit is None:
            return
        if self._catching_up is None or self._catching_up.done():
            self._catching_up = self._spawn(self._catch_up_with_retries(reason))

    async def _catch_up_with_retries(self, reason: str) -> None:
        for attempt in range(1, CATCH_UP_TRIES + 1):
            try:
                await self.catch_up(reason)
                return
            except EvolutionError as exc:
                if exc.is_not_found:
                    return  # no instance yet: nothing was missed
                log.warning(
                    "could not fetch the messages missed meanwhile (%s, try %d): %s",
                    reason,
                    attempt,
                    exc,
                )
            await asyncio.sleep(CATCH_UP_RETRY_SECONDS)

    async def catch_up(self, reason: str = "start") -> int:
        """Queue what customers wrote since the newest message seen (the gateway's
        webhooks failed meanwhile: nicobot was down), by the same rules as webhooks;
        duplicates are dropped by the core. Returns how many were new."""
        submit = self.context.submit
        now = datetime.now(UTC)
        since = self._history.last_seen
        if submit is None or since is None:
            await self._history.note_seen([now])  # the start of what a later run reads
            return 0
        earliest = now - timedelta(seconds=self.config.max_late_reply_seconds)
        since = max(since - CATCH_UP_SLACK, earliest)
        freshness = self._freshness()
        queued, newest = 0, [since]
        for page in range(1, CATCH_UP_PAGES + 1):
            found = await self.client.find_messages(
                self.config.instance, since=since, until=now + FIND_SENT_AHEAD, page=page
            )
            for record in found.records:
                event = parse_stored_message(
                    record,
                    now=now,
                    freshness=freshness,
                    max_media_bytes=self.context.settings.media.max_bytes,
                )
                if isinstance(event, MessageEvent) and not event.message.from_business:
                    newest.append(event.message.timestamp)
                    queued += int(await submit(event.message))
            if page >= found.pages:
                break
        await self._history.note_seen(newest)
        if queued:
            log.info(
                "queued %d WhatsApp messages that customers wrote while nicobot could not "
                "receive them (%s)",
                queued,
                reason,
            )
        return queued

    def _freshness(self) -> Freshness:
        return self._history.freshness(
            self.config.max_message_age_seconds, self.config.max_late_reply_seconds
        )

    # webhooks

    async def handle_webhook(self, request: WebhookRequest) -> WebhookResult:
        if not self.configured:
            raise WebhookRejected("WhatsApp is not configured", status=404)
        secret = self.webhook_secret
        method = (
            authenticate(
                request.headers, request.subpath, secret, header_name=self.config.webhook_header
            )
            if secret
            else None
        )
        if method is None:
            raise WebhookRejected("missing or wrong webhook secret")
        payload = request.json
        now = datetime.now(UTC)
        try:
            events = parse_webhook(
                payload,
                now=now,
                max_age_seconds=self.config.max_message_age_seconds,
                own_instance=self.config.instance,
                max_media_bytes=self.context.settings.media.max_bytes,
                freshness=self._freshness(),
            )
        except Exception:  # parse_webhook does not raise; a bug must still not cost a 5xx
            log.exception("could not parse a WhatsApp webhook")
            return WebhookResult(body={"ok": True, "messages": 0})
        self._note_account(payload)
        messages: list[IncomingMessage] = []
        ignored = 0
        for event in events:
            if isinstance(event, MessageEvent):
                incoming = dataclasses.replace(event.message, channel=self.name)
                if incoming.from_business and incoming.message_id in self._sent_set:
                    ignored += 1  # our own reply, echoed back
                    continue
                messages.append(incoming)
            elif isinstance(event, ConnectionUpdate):
                if event.logged_out:
                    self._reason = "logged_out"
                elif event.state == "refused":
                    self._reason = "qr_limit"
                elif event.state == "open":
                    self._reason = None
                self._webhook_state = (event.state, time.monotonic())
                if await self._history.note_state(event.state, now):
                    self._start_catch_up("reconnected")
                await self._report(self._status_for_state(event.state))
            elif isinstance(event, QRUpdate):
                self._qr = QRCode(code=event.code, base64=event.base64)
                self._reason = None
                await self._report(self._status_for_state("connecting"))
            elif isinstance(event, Ignored):
                ignored += 1
                log.debug("WhatsApp webhook ignored: %s", event.reason)
        await self._history.note_seen(m.timestamp for m in messages if not m.from_business)
        return WebhookResult(
            messages=messages, body={"ok": True, "messages": len(messages), "ignored": ignored}
        )

    def _note_account(self, payload: object) -> None:
        """The envelope's ``sender`` is the business's own number: shown as the account."""
        if not isinstance(payload, dict) or payload.get("instance") != self.config.instance:
            return
        parts = split_jid(payload.get("sender"))
        if (
            parts is not None
            and parts[1] == "s.whatsapp.net"
            and parts[0].isascii()
            and parts[0].isdigit()
        ):
            self._account = parts[0]
